// Hostile input for the AT read path, seeded so that a failure can be replayed: what a broken, noisy or
// foreign module could send, cut into reads of any size, through the framer and the event decoder, and
// through whole AtPorts. Used by the fast fuzz test (npm test) and by scripts/fuzz.ts (a million inputs and
// the heap per port under garbage, `npm run fuzz`).
import { EventEmitter } from 'node:events';
import { parseModuleEvent } from '../../quecthing/events.ts';
import { isRigError } from '../../errors.ts';
import { AtFramer, type Frame } from '../framer.ts';
import { AtPort, type SerialStream } from '../port.ts';
import { entryBytes } from '../transcript.ts';
import { seededRandom } from './peer.ts';

/** Lines a module sends, well formed; the fuzzer mutates them. */
const CORPUS = [
  '+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954',
  '+QIOTEVT: 7,10700,"STM32","1_0_0","2_0_0",0,0,1767',
  '+QIOTEVT: 7,10701,"STM32",27954,"a1b2c3d4e5f60718293a4b5c6d7e8f90",412294283',
  '+QIOTEVT: 7,10702',
  '+QIOTEVT: 7,10703,"STM32",27954,0,27954',
  '+QIOTEVT: 7,10704',
  '+QIOTEVT: 7,10705',
  '+QIOTEVT: 7,10706',
  '+QIOTEVT: 7,10707,0',
  '+QIOTEVT: 1,10067',
  '+QIOTEVT: 2,10200',
  '+QIOTEVT: 3,10200',
  '+QIOTEVT: 5,10200,6',
  '+QIOTOTARD: 0,1024',
  '+QIOTOTARD: 27648,306',
  '+QIOTCFG: "productinfo","pk","ps","1.0"',
  '+QIOTMCUVER: "STM32","1_0_0"',
  '+CSQ: 24,99',
  '+QIOTSTATE: 8',
  '+CME ERROR: 3',
  '+QIND: "FOTA","END",0',
  'AT+QIOTOTARD=0,1024',
  'RDY',
  'OK',
  'ERROR',
];

export interface FuzzStats {
  seed: number;
  /** Inputs generated (a mutated line, a run of binary, an overlong line …). */
  inputs: number;
  /** Reads the inputs were cut into. */
  chunks: number;
  bytes: number;
  /** Frames the framer produced, by kind. */
  frames: Record<string, number>;
  /** Events the decoder produced, by kind. */
  events: Record<string, number>;
  /** Anything thrown that is not one of the rig's typed errors, with the input that caused it. */
  untyped: { error: string; input: string }[];
  /** Typed errors thrown (none are expected from the framer or the decoder). */
  typed: number;
}

/** One hostile input: a mutated corpus line, binary noise, an overlong line or a lying header with data. */
export function fuzzInput(random: () => number): Buffer {
  const r = random();
  const pick = CORPUS[Math.floor(random() * CORPUS.length)]!;
  if (r < 0.05) {
    // Binary noise, terminators included.
    const n = 1 + Math.floor(random() * 300);
    return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  }
  if (r < 0.07) return Buffer.from(`${'Z'.repeat(4000 + Math.floor(random() * 2000))}\r\n`, 'latin1');
  if (r < 0.12) {
    // A header whose announced length is anything, followed by some of that many bytes (or more).
    const announced = [0, 1, 16, 1024, 65536, 65537, 999999, 2 ** 31][Math.floor(random() * 8)]!;
    const sent = Math.min(2048, Math.floor(random() * (Math.min(announced, 2048) + 64)));
    const header = random() < 0.5 ? `+QIOTOTARD: ${Math.floor(random() * 30000)},${announced}` : `+QIOTEVT: 5,10200,${announced}`;
    return Buffer.concat([Buffer.from(`\r\n${header}\r\n`), Buffer.from(Array.from({ length: sent }, () => Math.floor(random() * 256))), Buffer.from('\r\n\r\nOK\r\n')]);
  }
  const bytes = Buffer.from(`\r\n${pick}\r\n`, 'latin1');
  const edits = Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * bytes.length);
    const what = random();
    // Flip a byte, make it a terminator or a quote or a comma, or a digit: the decoder's edge cases.
    bytes[at] = what < 0.4 ? Math.floor(random() * 256) : what < 0.55 ? 0x0d : what < 0.7 ? 0x22 : what < 0.85 ? 0x2c : 0x30 + Math.floor(random() * 10);
  }
  if (random() < 0.1) return Buffer.concat([bytes, Buffer.from(`,${'9'.repeat(1 + Math.floor(random() * 40))}`)]);
  if (random() < 0.1) return bytes.subarray(0, Math.floor(random() * bytes.length));
  return bytes;
}

/** Cuts `bytes` into reads of 1 to 64 bytes, now and then a big one, as a USB or pty read hands them over. */
function* reads(bytes: Buffer, random: () => number): Generator<Buffer> {
  for (let pos = 0; pos < bytes.length; ) {
    const n = random() < 0.05 ? 4096 : 1 + Math.floor(random() * 64);
    yield bytes.subarray(pos, pos + n);
    pos += n;
  }
}

function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

/** `count` hostile inputs through one framer and the event decoder. Never throws: it counts what did. */
export function fuzzFramerAndDecoder(opts: { count: number; seed: number }): FuzzStats {
  const random = seededRandom(opts.seed);
  const stats: FuzzStats = { seed: opts.seed, inputs: 0, chunks: 0, bytes: 0, frames: {}, events: {}, untyped: [], typed: 0 };
  let input: Buffer = Buffer.alloc(0);
  const onFrame = (f: Frame): void => {
    count(stats.frames, f.kind);
    if (f.kind === 'line') count(stats.events, parseModuleEvent(f.text).kind);
    else if (f.kind === 'block') count(stats.events, parseModuleEvent(f.header, f.data).kind);
  };
  const framer = new AtFramer(onFrame, { maxBinaryLength: 64 * 1024 });
  for (let i = 0; i < opts.count; i++) {
    input = fuzzInput(random);
    stats.inputs++;
    stats.bytes += input.length;
    for (const chunk of reads(input, random)) {
      stats.chunks++;
      try {
        framer.push(chunk);
      } catch (err) {
        if (isRigError(err)) stats.typed++;
        else if (stats.untyped.length < 20) stats.untyped.push({ error: err instanceof Error ? (err.stack ?? err.message) : String(err), input: input.toString('latin1').slice(0, 200) });
        framer.reset();
      }
    }
    // Now and then the port gives up on a block, as a timeout does; a skip that goes on (a lying header)
    // ends as an unanswered probe ends it.
    if (random() < 0.01) framer.discardRestOfBlock();
    if (framer.skipping && random() < 0.2) framer.endDiscard();
  }
  return stats;
}

/** A serial stream that only delivers what it is handed: an AtPort on no device at all. */
export class FakeSerial extends EventEmitter implements SerialStream {
  readonly path: string;
  isOpen = true;
  constructor(path: string) {
    super();
    this.path = path;
  }
  open(callback?: (err: Error | null) => void): void {
    this.isOpen = true;
    callback?.(null);
  }
  close(callback?: (err?: Error | null) => void): void {
    this.isOpen = false;
    this.emit('close');
    callback?.(null);
  }
  write(_data: Buffer, callback?: (err: Error | null | undefined) => void): boolean {
    callback?.(null);
    return true;
  }
  /** What the module sends: one read. */
  receive(chunk: Buffer): void {
    this.emit('data', chunk);
  }
}

/**
 * `ports` AtPorts each fed `lines` lines of 4 KiB garbage (invalid UTF-8: the worst case for a string's
 * size). Returns the heap each port holds once all of it went through (transcript included), from
 * `heapUsed` after a collection when `gc` is given (node --expose-gc), and whether anything was thrown.
 */
export function garbageThroughPorts(opts: { ports: number; lines: number; seed: number; gc?: () => void; transcriptMaxBytes?: number }): { perPortBytes: number; heldEntries: number; heldBytes: number; dropped: number; thrown: number } {
  const random = seededRandom(opts.seed);
  const gc = opts.gc ?? (() => {});
  gc();
  const before = process.memoryUsage().heapUsed;
  const ports: AtPort[] = [];
  const serials: FakeSerial[] = [];
  for (let i = 0; i < opts.ports; i++) {
    const serial = new FakeSerial(`/dev/fuzz-${i}`);
    serials.push(serial);
    ports.push(new AtPort({ station: `fuzz-${i}`, serial, ...(opts.transcriptMaxBytes !== undefined ? { transcriptMaxBytes: opts.transcriptMaxBytes } : {}) }));
  }
  let thrown = 0;
  const line = Buffer.alloc(4096);
  for (let n = 0; n < opts.lines; n++) {
    for (let i = 0; i < line.length - 2; i++) line[i] = 0x80 + Math.floor(random() * 0x7f);
    line[line.length - 2] = 0x0d;
    line[line.length - 1] = 0x0a;
    for (const s of serials) {
      try {
        s.receive(Buffer.from(line));
      } catch {
        thrown++;
      }
    }
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const held = ports[0]!.transcript();
  const dropped = ports[0]!.transcriptDropped?.entries ?? 0;
  // Keep the ports alive until measured.
  const perPortBytes = Math.max(0, (after - before) / ports.length);
  for (const p of ports) void p.close();
  return { perPortBytes, heldEntries: held.length, heldBytes: held.reduce((n, e) => n + entryBytes(e), 0), dropped, thrown };
}
