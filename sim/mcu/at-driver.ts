// The application's AT driver on the UART to the module: received bytes land in a DMA-style buffer (they
// keep arriving while the core is halted), lines are split at LF, the echo of the command in flight is
// skipped, `+QIOTOTARD: <s>,<n>` switches to reading n raw bytes, and URCs (+QIOTEVT, +QIND, RDY) go to
// their own queue whatever else is going on. One command at a time, as firmware sends them.
import type { Firmware } from './firmware.ts';

export interface AtReply {
  /** OK, ERROR or +CME ERROR: <n>. */
  final: string;
  lines: string[];
  /** The raw bytes of a +QIOTOTARD answer. */
  data?: Buffer;
}

/** A counted read in progress: bytes still to come, bytes so far. */
interface Binary {
  need: number;
  parts: Buffer[];
}

interface Pending {
  command: string;
  lines: string[];
  data: Buffer | undefined;
  final: string | undefined;
}

/** Received bytes not yet split into lines: a UART DMA ring this size overruns beyond it. */
const RX_LIMIT = 16 * 1024;
const URC_LIMIT = 64;
/** A command's own answer time, protocol ms (the module promises 300 ms; firmware allows more). */
export const ANSWER_MS = 10_000;

export class AtDriver {
  private rx = Buffer.alloc(0);
  private binary: Binary | undefined;
  private pending: Pending | undefined;
  readonly urcs: string[] = [];
  readonly stats = { overrunBytes: 0, droppedUrcs: 0, timeouts: 0, cutBlocks: 0 };

  constructor(private readonly fw: Firmware) {
    fw.uartReceive((bytes) => this.receive(bytes));
  }

  /** Protocol ms the answer's bytes need on the UART (the line is paced in wall time, the clock is scaled). */
  private wireMs(bytes: number): number {
    const { uartBaud, timeScale } = this.fw.options;
    return uartBaud > 0 ? (bytes * 10_000) / uartBaud / timeScale : 0;
  }

  /**
   * Sends `line` and waits for its final result; undefined when none came within `answerMs` plus the answer's
   * time on the wire (module off or rebooting).
   */
  async command(line: string, answerBytes = 64, answerMs = ANSWER_MS): Promise<AtReply | undefined> {
    const p: Pending = { command: line, lines: [], data: undefined, final: undefined };
    this.pending = p;
    this.binary = undefined;
    this.fw.uartSend(Buffer.from(`${line}\r`, 'latin1'));
    const done = await this.fw.rt.until(() => p.final !== undefined, answerMs + this.wireMs(2 * line.length + answerBytes + 16));
    if (this.pending === p) this.pending = undefined;
    if (!done) {
      this.stats.timeouts++;
      // An answer cut short (the module lost power in the middle of its data) left the driver counting raw
      // bytes: what it counted may hold the module's next lines (its RDY), so they are parsed as lines again.
      // (parse() may have set it while this waited: the narrowing above does not see that.)
      const cut = this.binary as Binary | undefined;
      if (cut) {
        this.rx = Buffer.concat([...cut.parts, this.rx]);
        this.binary = undefined;
        this.parse();
      }
      return undefined;
    }
    return { final: p.final!, lines: p.lines, ...(p.data ? { data: p.data } : {}) };
  }

  /** The next URC, waiting up to `timeoutMs` of MCU time. */
  async nextUrc(timeoutMs: number): Promise<string | undefined> {
    if (!(await this.fw.rt.until(() => this.urcs.length > 0, timeoutMs))) return undefined;
    return this.urcs.shift();
  }

  /** Removes and returns the first queued URC that `pred` accepts. */
  takeUrc(pred: (urc: string) => boolean): string | undefined {
    const i = this.urcs.findIndex(pred);
    return i < 0 ? undefined : this.urcs.splice(i, 1)[0];
  }

  private receive(bytes: Buffer): void {
    const room = RX_LIMIT - this.rx.length;
    if (bytes.length > room) this.stats.overrunBytes += bytes.length - Math.max(0, room);
    this.rx = Buffer.concat([this.rx, bytes.subarray(0, Math.max(0, room))]);
    this.parse();
    this.fw.rt.notify();
  }

  private parse(): void {
    for (;;) {
      if (this.binary && this.binary.need > 0) {
        const n = Math.min(this.binary.need, this.rx.length);
        if (n === 0) return;
        this.binary.parts.push(this.rx.subarray(0, n));
        this.binary.need -= n;
        this.rx = this.rx.subarray(n);
        continue;
      }
      if (this.binary) {
        // The module ends a block's data with CR LF. Anything else: the header was not one — the module lost
        // power in the middle of it ("+QIOTOTARD: 2048,1" of "…,1024"), and what was counted as data is the
        // start of what it sent after its restart ("\r\nRDY\r\n" makes the header a line and its R the data).
        if (this.rx.length < 2) return;
        const parts = this.binary.parts;
        this.binary = undefined;
        if (this.rx[0] === 0x0d && this.rx[1] === 0x0a) {
          if (this.pending) this.pending.data = Buffer.concat(parts);
        } else {
          this.stats.cutBlocks++;
          this.rx = Buffer.concat([...parts, this.rx]);
        }
        continue;
      }
      const nl = this.rx.indexOf(0x0a);
      if (nl < 0) return;
      const line = this.rx.subarray(0, nl).toString('latin1').replace(/^[\r\n]+|[\r\n]+$/g, '').replace(/^.*\r/s, '');
      this.rx = this.rx.subarray(nl + 1);
      if (line !== '') this.line(line);
    }
  }

  private line(line: string): void {
    if (line === 'RDY' || line.startsWith('+QIOTEVT:') || line.startsWith('+QIND:')) {
      if (this.urcs.length >= URC_LIMIT) {
        this.urcs.shift();
        this.stats.droppedUrcs++;
      }
      this.urcs.push(line);
      return;
    }
    const p = this.pending;
    if (!p || p.final !== undefined) return;
    if (line === p.command) return; // the echo, while echo is still on
    if (line === 'OK' || line === 'ERROR' || line.startsWith('+CME ERROR')) {
      p.final = line;
      return;
    }
    p.lines.push(line);
    const read = /^\+QIOTOTARD: (\d+),(\d+)$/.exec(line);
    if (read && p.command.startsWith('AT+QIOTOTARD=')) {
      const need = Number(read[2]);
      this.binary = { need, parts: [] };
      if (need === 0) {
        p.data = Buffer.alloc(0);
        this.binary = undefined;
      }
    }
  }
}
