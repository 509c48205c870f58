// The peer: a straightforward MCU-side reader written the way the module documentation suggests — serialport
// 13 with its stock ReadlineParser, and a per-block loop: send AT+QIOTOTARD=<offset>,<len>, wait for the
// `+QIOTOTARD: <start>,<n>` line, take the n counted bytes, wait for OK (docs/protocol.md §2.7, the
// porting guide's at_client_obj_recv loop). ReadlineParser hands everything over as lines, so the counted
// bytes arrive split at every CR LF inside the data. The parser keeps the delimiters (includeDelimiter):
// without them it drops empty lines, and the data's own CR LF pairs could not be told apart; with them the
// lines after the header, concatenated, are the data followed by the trailer's first CR LF. latin1: one
// character is one byte. It is what a careful engineer writes in an afternoon, and the yardstick the rig
// must not be slower than.
import { ReadlineParser, SerialPort } from 'serialport';

export interface PeerResult {
  wallMs: number;
  cpuMicros: number;
  /** From each block's OK line to the next command written, ms. */
  turnarounds: number[];
  /** From each command written to its OK line, ms. */
  answers: number[];
  data: Buffer;
  blocks: number;
}

export interface PeerOptions {
  path: string;
  baudRate: number;
  start: number;
  length: number;
  blockSize: number;
  /** Bound on each block's answer. */
  blockTimeoutMs: number;
  /** Station name for messages. */
  station: string;
}

class PeerError extends Error {
  constructor(station: string, what: string, expected: string, seen: string) {
    super(`${station}: peer: ${what} (expected ${expected}; seen ${seen})`);
    this.name = 'PeerError';
  }
}

/** Lines from the parser, awaited one at a time with a bound. */
class LineQueue {
  private readonly lines: string[] = [];
  private waiter: { resolve: (l: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private failure: Error | undefined;

  push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  fail(err: Error): void {
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  next(timeoutMs: number, onTimeout: () => Error): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(onTimeout());
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }
}

export async function peerReadPhase(o: PeerOptions): Promise<PeerResult> {
  const port = new SerialPort({ path: o.path, baudRate: o.baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const parser = port.pipe(new ReadlineParser({ delimiter: '\r\n', includeDelimiter: true, encoding: 'latin1' }));
  const queue = new LineQueue();
  parser.on('data', (line: string) => queue.push(line));
  port.on('close', () => queue.fail(new PeerError(o.station, `${o.path} closed`, 'the port to stay open', 'close')));
  port.on('error', (err: Error) => queue.fail(new PeerError(o.station, `${o.path} failed`, 'no port error', err.message)));

  const data = Buffer.alloc(o.length);
  let blocks = 0;
  const turnarounds: number[] = [];
  const answers: number[] = [];
  let okAt: number | undefined;
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let offset = o.start; offset < o.start + o.length; ) {
      const len = Math.min(o.blockSize, o.start + o.length - offset);
      const command = `AT+QIOTOTARD=${offset},${len}`;
      const deadline = performance.now() + o.blockTimeoutMs;
      const line = () =>
        queue.next(Math.max(1, deadline - performance.now()), () => new PeerError(o.station, `no complete answer to ${command} within ${o.blockTimeoutMs} ms`, '+QIOTOTARD: header, data, OK', 'silence'));
      // Stamped once the command is handed over, as the rig's transcript stamps its own after the write.
      port.write(`${command}\r`);
      const sentAt = performance.now();
      if (okAt !== undefined) turnarounds.push(sentAt - okAt);
      // The echo (if the module echoes) and blank lines come first; ERROR ends the read.
      let header: RegExpExecArray | null = null;
      while (!header) {
        const l = (await line()).slice(0, -2);
        if (l === 'ERROR' || l.startsWith('+CME ERROR')) throw new PeerError(o.station, `${command} refused`, '+QIOTOTARD: …', l);
        header = /^\+QIOTOTARD: (\d+),(\d+)$/.exec(l);
      }
      const start = Number(header[1]);
      const n = Number(header[2]);
      if (start !== offset || n === 0 || n > len) throw new PeerError(o.station, `unexpected header for ${command}`, `+QIOTOTARD: ${offset},<1..${len}>`, header[0]);
      // The counted bytes and the trailer's first CR LF, in as many lines as the data holds CR LFs.
      let text = '';
      while (text.length < n + 2) text += await line();
      if (text.length !== n + 2 || !text.endsWith('\r\n')) {
        throw new PeerError(o.station, `block at ${offset} is not ${n} bytes long`, `${n} bytes then CR LF`, `${text.length} bytes up to a CR LF`);
      }
      data.write(text.slice(0, n), offset - o.start, 'latin1');
      for (;;) {
        const l = (await line()).slice(0, -2);
        if (l === 'OK') {
          okAt = performance.now();
          answers.push(okAt - sentAt);
          break;
        }
        if (l !== '') throw new PeerError(o.station, `no OK after the block at ${offset}`, 'OK', JSON.stringify(l.slice(0, 40)));
      }
      offset += n;
      blocks++;
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    return { wallMs, cpuMicros: cpu.user + cpu.system, turnarounds, answers, data, blocks };
  } finally {
    port.removeAllListeners('close');
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
