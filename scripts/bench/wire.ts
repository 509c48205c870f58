// The benchmark's arithmetic (issue 9), kept apart from the measuring so that `npm test` checks it: what a
// block read puts on the wire, the protocol minimum of a read phase, and the statistics the table reports.
//
// The protocol minimum is the definition: every byte that crosses the UART in either direction
// during the block reads (commands out; echo, header, data and trailer back), at 10 bits a byte (start, 8
// data, stop), as if the line never idled. A read phase can only approach it: the module answers after the
// command's final byte, and the next command follows the answer's final byte. A module that echoes sends
// each character back as it takes it, so the echo crosses while the command does: of its bytes only the
// last (the CR's echo) adds to the line time (`lineBytes`).

/** One AT+QIOTOTARD exchange: what was asked and how many data bytes came back. */
export interface BlockRead {
  start: number;
  requested: number;
  returned: number;
}

export interface WireFormat {
  /** Whether the module echoes commands (the rig learns it when it opens the port; the sim echoes by default). */
  echo: boolean;
  /** What follows the data bytes; docs/protocol.md §2.7: `\r\n\r\nOK\r\n`. */
  trailer?: string;
}

export const DEFAULT_READ_TRAILER = '\r\n\r\nOK\r\n';
/** Bits a UART spends on one byte: start, 8 data, stop (8N1). */
export const BITS_PER_BYTE = 10;

/** The command the MCU (or the rig) sends, terminated by CR as V.250 commands are. */
export function otaReadCommand(start: number, length: number): string {
  return `AT+QIOTOTARD=${start},${length}\r`;
}

/** Bytes out (command) and back (echo, `\r\n+QIOTOTARD: s,n\r\n`, n data bytes, trailer) for one block. */
export function blockWireBytes(b: BlockRead, format: WireFormat): { out: number; back: number } {
  checkCount('start', b.start);
  checkCount('requested', b.requested);
  checkCount('returned', b.returned);
  if (b.returned > b.requested) throw new RangeError(`a block returns at most what was asked: ${b.returned} > ${b.requested}`);
  const out = otaReadCommand(b.start, b.requested).length;
  const header = `\r\n+QIOTOTARD: ${b.start},${b.returned}\r\n`.length;
  const trailer = (format.trailer ?? DEFAULT_READ_TRAILER).length;
  return { out, back: (format.echo ? out : 0) + header + b.returned + trailer };
}

/** The blocks a reader makes over [start, end) with requests of `blockSize`, the last one short. */
export function readPhaseBlocks(start: number, end: number, blockSize: number): BlockRead[] {
  checkCount('start', start);
  checkCount('end', end);
  if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`block size must be a whole number > 0, got ${blockSize}`);
  if (end < start) throw new RangeError(`a read phase ends after it starts: [${start}, ${end})`);
  const blocks: BlockRead[] = [];
  for (let at = start; at < end; at += blockSize) {
    const n = Math.min(blockSize, end - at);
    blocks.push({ start: at, requested: n, returned: n });
  }
  return blocks;
}

export interface WireTotals {
  blocks: number;
  dataBytes: number;
  out: number;
  back: number;
  /** out + back: every byte on the line, both directions. */
  total: number;
  /**
   * What the protocol minimum is computed from: out + back, less the echo that overlaps its command (all of
   * it but the final byte each block). Equal to `total` without echo.
   */
  lineBytes: number;
}

export function wireTotals(blocks: readonly BlockRead[], format: WireFormat): WireTotals {
  let out = 0;
  let back = 0;
  let dataBytes = 0;
  let overlapped = 0;
  for (const b of blocks) {
    const w = blockWireBytes(b, format);
    out += w.out;
    back += w.back;
    dataBytes += b.returned;
    if (format.echo) overlapped += w.out - 1;
  }
  return { blocks: blocks.length, dataBytes, out, back, total: out + back, lineBytes: out + back - overlapped };
}

/** Time the line needs for `bytes` at `baud`, in ms: bytes ÷ (baud / 10). */
export function protocolMinimumMs(bytes: number, baud: number): number {
  checkCount('bytes', bytes);
  if (!(baud > 0) || !Number.isFinite(baud)) throw new RangeError(`the protocol minimum needs a baud rate > 0, got ${baud}`);
  return (bytes * BITS_PER_BYTE * 1000) / baud;
}

/** Share of the line's bytes that are payload: data ÷ everything on the wire (the ceiling of any reader). */
export function payloadShare(t: WireTotals): number {
  return t.total === 0 ? 0 : t.dataBytes / t.total;
}

/** CPU milliseconds per MiB of data (process.cpuUsage gives microseconds). */
export function cpuMsPerMiB(cpuMicros: number, bytes: number): number {
  if (!(bytes > 0)) throw new RangeError(`CPU per MiB needs bytes > 0, got ${bytes}`);
  if (!(cpuMicros >= 0)) throw new RangeError(`CPU time must be >= 0, got ${cpuMicros}`);
  return cpuMicros / 1000 / (bytes / (1024 * 1024));
}

// ---- statistics ----------------------------------------------------------------------------------------

/** Median; for an even count the mean of the two middle values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values');
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`median of a non-finite value: ${x}`);
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-quantile (0..1) by nearest rank, for latency distributions. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new RangeError('quantile of no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile p must be in [0, 1], got ${p}`);
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** a ÷ b for two measurements; a zero or negative denominator is a broken measurement, not Infinity. */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0 || a < 0) throw new RangeError(`cannot divide ${a} by ${b}`);
  return a / b;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** What the table and latest.json report for a figure measured several times. */
export function summarize(xs: readonly number[], digits = 3): Summary {
  const r = (x: number) => Number(x.toFixed(digits));
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)), runs: xs.map(r) };
}

export interface Target {
  /** '<=': the figure must not exceed `value`; '>=': it must reach it. */
  op: '<=' | '>=';
  value: number;
}

export function meets(value: number, target: Target): boolean {
  return target.op === '<=' ? value <= target.value : value >= target.value;
}

export function formatTarget(t: Target): string {
  return `${t.op === '<=' ? '≤' : '≥'} ${t.value}`;
}

function checkCount(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a whole number >= 0, got ${v}`);
}
