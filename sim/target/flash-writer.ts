// The MCU's own flash writes: erase a unit, program bytes, each taking the profile's datasheet time on a
// clock the MCU model gives (the sim clock, frozen while the core is halted), through the same array and
// the same programming rules as the debugger's writes (flash.ts). A power cut or a reset in the middle
// leaves what silicon leaves (docs/virtual-mcu.md §5): an erase covers the part of the unit its elapsed
// time reached with 0xFF and the rest keeps its bytes; a program leaves the cells written so far programmed
// and the rest untouched. The operation's promise then never settles: the code that waited on it is gone.
import { unitIndexAt } from './flash.ts';
import type { FlashTiming } from './profiles.ts';
import type { CoreStateName, Stm32Target } from './stm32.ts';

export interface FlashClock {
  /** Milliseconds on the clock the operation's time runs on. */
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

export type FlashOpFailure = 'not-erased' | 'protected' | 'busy' | 'range' | 'alignment';

export class FlashOpError extends Error {
  constructor(
    readonly failure: FlashOpFailure,
    message: string,
  ) {
    super(message);
  }
}

/** What the last interrupted operation left, for the admin API and tests. */
export interface TornOp {
  kind: 'erase' | 'program';
  /** Offset from the flash base of the unit (erase) or of the first byte (program). */
  offset: number;
  length: number;
  /** Bytes that took effect: the erased prefix, or the cells programmed. */
  done: number;
}

interface Op {
  kind: 'erase' | 'program';
  offset: number;
  length: number;
  started: number;
  durationMs: number;
  timer: { cancel(): void };
  /** Applies the part of the operation `elapsedMs` covers; returns the bytes that took effect. */
  applyUpTo(elapsedMs: number): number;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

export class FlashWriter {
  private op: Op | undefined;
  private readonly timing: FlashTiming;
  private readonly detach: () => void;
  readonly stats = { erases: 0, programs: 0, bytesProgrammed: 0, cut: 0 };
  lastTorn: TornOp | undefined;

  constructor(
    private readonly target: Stm32Target,
    private readonly clock: FlashClock,
  ) {
    this.timing = target.profile.flashTiming;
    const onReset = (): void => this.cut();
    const onCore = (state: CoreStateName): void => {
      if (state === 'reset' || state === 'off') this.cut();
    };
    target.on('reset', onReset);
    target.on('core', onCore);
    this.detach = () => {
      target.off('reset', onReset);
      target.off('core', onCore);
    };
  }

  get busy(): boolean {
    return this.op !== undefined;
  }

  get cellSize(): number {
    return this.timing.cellSize;
  }

  /** Index of the erase unit holding `offset` (from the flash base), or -1. */
  unitAt(offset: number): number {
    return unitIndexAt(this.target.profile.units, offset);
  }

  eraseMs(unitIndex: number): number {
    const u = this.target.profile.units[unitIndex];
    if (!u) throw new FlashOpError('range', `no erase unit ${unitIndex} on the ${this.target.profile.part}`);
    const ms = this.timing.eraseMs[u.size];
    if (ms === undefined) throw new FlashOpError('range', `no erase time for a ${u.size}-byte unit on the ${this.target.profile.part}`);
    return ms;
  }

  /** Erases one unit (page or sector) in the profile's erase time. */
  erase(unitIndex: number): Promise<void> {
    const durationMs = this.eraseMs(unitIndex);
    const u = this.target.profile.units[unitIndex]!;
    if (this.target.flashInterface.unitProtected(unitIndex)) {
      return Promise.reject(new FlashOpError('protected', `erase of unit ${unitIndex} (${hex(this.target.profile.flashBase + u.offset)}) refused: write-protected`));
    }
    return this.start('erase', u.offset, u.size, durationMs, (elapsed) => {
      const n = Math.min(u.size, Math.floor((u.size * Math.max(0, elapsed)) / durationMs) & ~3);
      this.target.flash.eraseRange(u.offset, n);
      return n;
    });
  }

  /**
   * Programs `data` at `offset` (from the flash base), one cell (F1 half-word, F4 word) after the other in
   * the profile's cell time. Rejects at the first cell the array refuses (F1: not erased; protected), with
   * the cells before it programmed.
   */
  program(offset: number, data: Uint8Array): Promise<void> {
    const cell = this.timing.cellSize;
    if (offset % cell !== 0 || data.length % cell !== 0) {
      return Promise.reject(new FlashOpError('alignment', `program of ${data.length} bytes at ${hex(offset)} is not in whole ${cell}-byte cells`));
    }
    if (offset < 0 || offset + data.length > this.target.flash.size) {
      return Promise.reject(new FlashOpError('range', `program of ${data.length} bytes at ${hex(offset)} is outside the flash`));
    }
    const cells = data.length / cell;
    let applied = 0;
    let refused: FlashOpError | undefined;
    const fi = this.target.flashInterface;
    return this.start('program', offset, data.length, cells * this.timing.programCellMs, (elapsed) => {
      const upTo = Math.min(cells, Math.floor(Math.max(0, elapsed) / this.timing.programCellMs + 1e-9));
      for (; applied < upTo && !refused; applied++) {
        const at = offset + applied * cell;
        let value = 0;
        for (let k = 0; k < cell; k++) value |= data[applied * cell + k]! << (8 * k);
        const r = fi.programCell(at, cell, value >>> 0);
        if (r !== 'ok') {
          const was = Array.from(this.target.flash.bytes.subarray(at, at + cell), (b) => b.toString(16).padStart(2, '0')).join('');
          refused = new FlashOpError(
            r,
            r === 'not-erased'
              ? `program at ${hex(this.target.profile.flashBase + at)} refused (PGERR): the cell holds ${was}, not erased`
              : `program at ${hex(this.target.profile.flashBase + at)} refused: write-protected`,
          );
        }
      }
      // `applied` counts a refused cell too: it was tried, not programmed.
      const programmed = (refused ? applied - 1 : applied) * cell;
      this.stats.bytesProgrammed += programmed;
      return programmed;
    }).then(() => {
      if (refused) throw refused;
    });
  }

  /** A power cut or reset: the operation in flight stops where its time got to. */
  cut(): void {
    const op = this.op;
    if (!op) return;
    this.op = undefined;
    op.timer.cancel();
    const done = op.applyUpTo(this.clock.now() - op.started);
    this.stats.cut++;
    this.lastTorn = { kind: op.kind, offset: op.offset, length: op.length, done };
  }

  close(): void {
    this.cut();
    this.detach();
  }

  private start(kind: Op['kind'], offset: number, length: number, durationMs: number, applyUpTo: (elapsedMs: number) => number): Promise<void> {
    if (this.op) return Promise.reject(new FlashOpError('busy', `flash busy with an ${this.op.kind} at ${hex(this.op.offset)}`));
    if (kind === 'erase') this.stats.erases++;
    else this.stats.programs++;
    return new Promise<void>((resolve) => {
      const op: Op = {
        kind,
        offset,
        length,
        started: this.clock.now(),
        durationMs,
        applyUpTo,
        timer: this.clock.after(durationMs, () => {
          if (this.op !== op) return;
          this.op = undefined;
          op.applyUpTo(durationMs);
          resolve();
        }),
      };
      this.op = op;
    });
  }
}
