// Turns the bytes a module sends into lines and counted binary blocks. It works on the Buffers as they
// arrive (Buffer.indexOf finds terminators natively) and never builds strings byte by byte, so it keeps up
// with a UART at line rate. Everything it holds is bounded: a line longer than `maxLineLength` is dropped
// and reported, and a block is only collected when its announced length is within `maxBinaryLength` (the
// bytes of a bigger one are skipped, not read as lines). A read's block counts only when the CR or LF that
// ends every answer follows it; bytes of a block given up on are skipped when they come late.
import { createHash, type Hash } from 'node:crypto';

const CR = 0x0d;
const LF = 0x0a;
/** How far into a late rest the boot banner still means a restart: power-on noise plus `\nRDY\r`. */
const BANNER_HEAD = 24;

export type Frame =
  /** A text line, terminator stripped; empty lines are not reported. */
  | { kind: 'line'; text: string }
  /** A header line announcing counted binary data, and exactly that many raw bytes that followed it. */
  | { kind: 'block'; header: string; data: Buffer; /** With `FramerOptions.sha256`: the data's SHA-256, hex. */ sha256?: string }
  /** A line exceeded the limit; its bytes up to the next terminator were dropped. */
  | { kind: 'overflow'; head: string; limit: number }
  /** A header announced more binary data than allowed: the announced bytes are skipped (see `discarded`). */
  | { kind: 'oversize-block'; header: string; length: number; limit: number }
  /**
   * A `+QIOTOTARD:` block whose bytes were not followed by CR or LF, as every answer's are (protocol §2.7):
   * bytes were lost, or bytes of another answer were spliced in. Its data is never delivered as a block;
   * `data` holds the bytes it counted, for a listener that frames them again as lines (a passive tap: a
   * header cut short by a power loss counted the module's RDY).
   */
  | { kind: 'misframed-block'; header: string; length: number; next: string; data: Buffer }
  /**
   * Bytes skipped without being read as lines: the rest of a block given up on (`late`, after
   * `discardRestOfBlock`) or the bytes of an oversize block. `ended`: all `announced` bytes passed
   * (`complete`), the module's boot banner ended a late rest that was never coming (`banner`), or
   * `endDiscard()` stopped it (`stopped`).
   */
  | { kind: 'discarded'; header: string; reason: 'late' | 'oversize'; length: number; announced: number; ended: 'complete' | 'banner' | 'stopped' };

export interface FramerOptions {
  /** Bytes per line, terminator excluded. */
  maxLineLength?: number;
  /** Bytes per counted binary block. */
  maxBinaryLength?: number;
  /**
   * Says whether a line is a header followed by counted binary data, and how many bytes; undefined for
   * ordinary lines. Called synchronously for each line, so binary mode starts at the very next byte.
   */
  binaryLength?: (line: string) => number | undefined;
  /**
   * Whether the block a header announces must be followed by CR or LF before it counts: true for the
   * answers to a command (`+QIOTOTARD:`, followed by CR LF CR LF OK), false for URC payloads, which the next
   * line may follow at any time.
   */
  terminatedBlock?: (header: string) => boolean;
  /** The module's boot banner (`RDY`): a late rest that is still being skipped ends where it appears. */
  bootBanner?: string;
  /**
   * Hash every block's data as its bytes arrive, and deliver the SHA-256 with it: at a paced baud the last
   * few bytes come with the answer's OK, and hashing a kilobyte there (a transcript entry names every block by
   * its hash) delays the next command by the time it takes, which a cold CPU makes ~0.1 ms (issue 18).
   */
  sha256?: boolean;
}

export const DEFAULT_MAX_LINE_LENGTH = 4096;
export const DEFAULT_MAX_BINARY_LENGTH = 64 * 1024;

/** `+QIOTOTARD: <start>,<len>` and `+QIOTEVT: 5,<code>,<len>` (unbuffered downlink data) carry raw bytes. */
export function quecthingBinaryLength(line: string): number | undefined {
  let m: RegExpExecArray | null;
  if (line.startsWith('+QIOTOTARD:')) {
    m = /^\+QIOTOTARD: ?\d+,(\d+)$/.exec(line);
    return m ? Number(m[1]) : undefined;
  }
  if (line.startsWith('+QIOTEVT:')) {
    m = /^\+QIOTEVT: ?5,(?:10200|10210),(\d+)$/.exec(line);
    return m ? Number(m[1]) : undefined;
  }
  return undefined;
}

/** Answers to a read command are followed by CR LF CR LF OK; URC payloads are not. */
export function quecthingTerminatedBlock(header: string): boolean {
  return header.startsWith('+QIOTOTARD:');
}

function printableHead(bytes: Buffer): string {
  return bytes.subarray(0, 40).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
}

export class AtFramer {
  private readonly maxLine: number;
  private readonly maxBinary: number;
  private readonly binaryLength: (line: string) => number | undefined;

  /** Pieces of the line being assembled (only when a line spans chunks). */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Dropping an overlong line until its terminator. */
  private discarding = false;
  /** The previous line ended in CR: a LF right after it belongs to that terminator. */
  private afterCr = false;
  /** Binary block being filled. */
  private block: { header: string; data: Buffer; filled: number; hash: Hash | undefined } | undefined;
  /** A full block that waits for the CR or LF after it before it is delivered. */
  private blockEnd: { header: string; data: Buffer; sha256: string | undefined } | undefined;
  /** Bytes being skipped: a late rest, or an oversize block; `head`: a late rest's first bytes, searched for the banner. */
  private skip: { header: string; reason: 'late' | 'oversize'; remaining: number; skipped: number; announced: number; head: Buffer | undefined } | undefined;
  private readonly terminatedBlock: (header: string) => boolean;
  /** `\n<banner>\r`, `\n<banner>\n`: the banner as a line of its own. */
  private readonly banners: Buffer[];
  private readonly hashBlocks: boolean;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    options: FramerOptions = {},
  ) {
    this.maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.maxBinary = options.maxBinaryLength ?? DEFAULT_MAX_BINARY_LENGTH;
    this.binaryLength = options.binaryLength ?? quecthingBinaryLength;
    this.terminatedBlock = options.terminatedBlock ?? quecthingTerminatedBlock;
    this.hashBlocks = options.sha256 ?? false;
    const banner = options.bootBanner ?? 'RDY';
    this.banners = [Buffer.from(`\n${banner}\r`, 'latin1'), Buffer.from(`\n${banner}\n`, 'latin1')];
  }

  /** True while a counted binary block is incomplete. */
  get inBlock(): boolean {
    return this.block !== undefined;
  }

  /** Bytes the incomplete counted block still waits for; 0 when none is open. */
  get blockRemaining(): number {
    return this.block ? this.block.data.length - this.block.filled : 0;
  }

  /**
   * Ends the incomplete counted block without reporting it and returns its header and the bytes that came;
   * framing goes on with the next byte as the start of a line (a passive tap gives the bytes back as lines).
   */
  takeBlock(): { header: string; data: Buffer } | undefined {
    const b = this.block;
    if (!b) return undefined;
    this.block = undefined;
    return { header: b.header, data: b.data.subarray(0, b.filled) };
  }

  /**
   * When the bytes an incomplete block has taken hold the module's boot banner on a line of its own, the
   * module restarted while sending it (its RDY came where data was counted): the block ends there and the
   * bytes from the banner on are handed back to be framed as lines (`push` them). Undefined, and nothing
   * changed, otherwise. Called when the block is given up on (a timeout): before that, a banner-like run of
   * bytes inside a block that goes on to complete is data.
   */
  cutBlockAtBanner(): { header: string; before: number; rest: Buffer } | undefined {
    const b = this.block;
    if (!b) return undefined;
    const came = b.data.subarray(0, b.filled);
    let at = -1;
    for (const banner of this.banners) {
      const i = came.indexOf(banner);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at < 0) return undefined;
    this.block = undefined;
    return { header: b.header, before: at, rest: Buffer.from(came.subarray(at)) };
  }

  /** True while bytes are being skipped (a late rest, an oversize block). */
  get skipping(): boolean {
    return this.skip !== undefined;
  }

  /**
   * Gives up the incomplete block: the bytes it still waits for are skipped as they come, never read as
   * lines (a `RDY` or `OK` inside them means nothing), and reported as `discarded` when the last has passed.
   * Should the module restart instead (the rest never comes), its boot banner on a line of its own among
   * the first bytes that come ends the skipping. Returns false when no block was open.
   */
  discardRestOfBlock(): boolean {
    const b = this.block;
    if (!b) return false;
    this.block = undefined;
    this.skip = { header: b.header, reason: 'late', remaining: b.data.length - b.filled, skipped: 0, announced: b.data.length - b.filled, head: Buffer.alloc(0) };
    return true;
  }

  /** Stops skipping (the bytes are not coming); reports what was skipped. Returns false when nothing was. */
  endDiscard(): boolean {
    if (!this.skip) return false;
    this.finishSkip('stopped');
    return true;
  }

  /** Forgets any partial line or block (after a timeout, or when the port is reopened). */
  reset(): void {
    this.pending = [];
    this.pendingLength = 0;
    this.discarding = false;
    this.afterCr = false;
    this.block = undefined;
    this.blockEnd = undefined;
    this.skip = undefined;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    // Positions of the next CR and LF at or after `pos`; -1 once none is left in this chunk. Kept across
    // lines so each byte of the chunk is scanned by indexOf at most once per terminator kind.
    let nextCr = -2;
    let nextLf = -2;
    while (pos < end) {
      if (this.afterCr) {
        this.afterCr = false;
        if (chunk[pos] === LF) {
          pos++;
          continue;
        }
      }
      if (this.skip) {
        pos = this.skipBytes(chunk, pos, end);
        nextCr = nextLf = -2;
        continue;
      }
      if (this.blockEnd) {
        const b = this.blockEnd;
        this.blockEnd = undefined;
        // The byte itself is framed as usual below: it starts the CR LF CR LF OK that follows the data.
        if (chunk[pos] === CR || chunk[pos] === LF) this.onFrame(blockFrame(b.header, b.data, b.sha256));
        else this.onFrame({ kind: 'misframed-block', header: b.header, length: b.data.length, next: printableHead(chunk.subarray(pos, pos + 16)), data: b.data });
        continue;
      }
      if (this.block) {
        const b = this.block;
        const n = Math.min(end - pos, b.data.length - b.filled);
        chunk.copy(b.data, b.filled, pos, pos + n);
        b.hash?.update(chunk.subarray(pos, pos + n));
        b.filled += n;
        pos += n;
        if (b.filled === b.data.length) {
          this.block = undefined;
          const sha256 = b.hash?.digest('hex');
          if (this.terminatedBlock(b.header)) this.blockEnd = { header: b.header, data: b.data, sha256 };
          else this.onFrame(blockFrame(b.header, b.data, sha256));
        }
        nextCr = nextLf = -2;
        continue;
      }
      if (nextCr !== -1 && nextCr < pos) nextCr = chunk.indexOf(CR, pos);
      if (nextLf !== -1 && nextLf < pos) nextLf = chunk.indexOf(LF, pos);
      const stop = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (stop === -1) {
        this.accumulate(chunk.subarray(pos, end));
        return;
      }
      const piece = chunk.subarray(pos, stop);
      pos = stop + 1;
      if (chunk[stop] === CR) this.afterCr = true;
      this.endLine(piece);
    }
  }

  /**
   * Skips bytes from `pos`; returns where framing goes on. A late rest ends early at the boot banner when
   * the banner is among the first bytes that come after the block was given up on: a module that lost power
   * mid-block sends nothing more of it, then (after a little power-on noise) `RDY`; a `RDY` further into
   * late data is data.
   */
  private skipBytes(chunk: Buffer, pos: number, end: number): number {
    const k = this.skip!;
    const n = Math.min(end - pos, k.remaining);
    if (k.head) {
      const before = k.skipped;
      const head = Buffer.concat([k.head, chunk.subarray(pos, pos + Math.min(n, BANNER_HEAD - before))]);
      let at = -1;
      for (const b of this.banners) {
        const i = head.indexOf(b);
        if (i >= 0 && (at < 0 || i < at)) at = i;
      }
      if (at >= 0) {
        // Skipped up to and including the LF before the banner; the banner is framed as a line (its first
        // bytes may have come in an earlier chunk: they are framed again).
        const resume = at + 1 - before;
        k.skipped = at + 1;
        this.finishSkip('banner');
        if (resume < 0) this.accumulate(head.subarray(at + 1, before));
        return pos + Math.max(0, resume);
      }
      k.head = head.length >= BANNER_HEAD ? undefined : head;
    }
    k.remaining -= n;
    k.skipped += n;
    if (k.remaining === 0) this.finishSkip('complete');
    return pos + n;
  }

  private finishSkip(ended: 'complete' | 'banner' | 'stopped'): void {
    const k = this.skip!;
    this.skip = undefined;
    this.onFrame({ kind: 'discarded', header: k.header, reason: k.reason, length: k.skipped, announced: k.announced, ended });
  }

  private accumulate(piece: Buffer): void {
    if (this.discarding || piece.length === 0) return;
    if (this.pendingLength + piece.length > this.maxLine) {
      this.overflow(piece);
      return;
    }
    // The chunk is owned by the stream; copying keeps a partial line from pinning large read buffers.
    this.pending.push(Buffer.from(piece));
    this.pendingLength += piece.length;
  }

  private overflow(lastPiece: Buffer): void {
    const head = this.pending.length > 0 ? Buffer.concat([...this.pending, lastPiece.subarray(0, 40)]) : lastPiece;
    this.pending = [];
    this.pendingLength = 0;
    this.discarding = true;
    this.onFrame({ kind: 'overflow', head: printableHead(head), limit: this.maxLine });
  }

  private endLine(piece: Buffer): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let bytes = piece;
    if (this.pendingLength > 0) {
      if (this.pendingLength + piece.length > this.maxLine) {
        this.overflow(piece);
        this.discarding = false;
        return;
      }
      this.pending.push(piece);
      bytes = Buffer.concat(this.pending, this.pendingLength + piece.length);
      this.pending = [];
      this.pendingLength = 0;
    } else if (piece.length > this.maxLine) {
      this.overflow(piece);
      this.discarding = false;
      return;
    }
    if (bytes.length === 0) return;
    // Invalid UTF-8 (noise at power-on) decodes to U+FFFD: never an exception, never a lost terminator.
    const text = bytes.toString('utf8');
    const length = this.binaryLength(text);
    if (length === undefined) {
      this.onFrame({ kind: 'line', text });
      return;
    }
    if (length > this.maxBinary) {
      // Read as lines, the announced bytes could say anything (a RDY, a +QIOTEVT): they are skipped.
      this.onFrame({ kind: 'oversize-block', header: text, length, limit: this.maxBinary });
      this.skip = { header: text, reason: 'oversize', remaining: length, skipped: 0, announced: length, head: undefined };
      return;
    }
    if (length === 0) {
      this.onFrame(blockFrame(text, Buffer.alloc(0), this.hashBlocks ? createHash('sha256').digest('hex') : undefined));
      return;
    }
    this.block = { header: text, data: Buffer.allocUnsafe(length), filled: 0, hash: this.hashBlocks ? createHash('sha256') : undefined };
  }
}

function blockFrame(header: string, data: Buffer, sha256: string | undefined): Frame {
  return sha256 === undefined ? { kind: 'block', header, data } : { kind: 'block', header, data, sha256 };
}
