// How the virtual MCU's firmware runs: as async code whose every wait goes through this runtime, so the core
// can be frozen and thrown away as silicon is. The MCU's clock advances only while the core runs (powered,
// out of reset, not halted by the debugger); a halt freezes every timer where it stands, including the
// watchdog (OpenOCD's cfg sets DBGMCU's IWDG_STOP) and flash operations. A reset or power loss starts a new
// program: every wait of the old one is dropped unresolved, so none of its code runs again — the way RAM
// and the program counter are lost on silicon.
import type { FlashClock } from '../target/flash-writer.ts';

export interface WallClock {
  /** Protocol milliseconds. */
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

interface Timer {
  due: number;
  fn: () => void;
  handle: { cancel(): void } | undefined;
}

interface Waiter {
  check: () => boolean;
  wake: () => void;
}

export class McuRuntime implements FlashClock {
  private isRunning = false;
  /** MCU time accumulated up to `since`. */
  private base = 0;
  private since = 0;
  private program = 0;
  private readonly timers = new Set<Timer>();
  private readonly waiters = new Set<Waiter>();
  /** Something happened while the core was frozen: the waiters look again when it runs. */
  private dirty = false;

  constructor(private readonly clock: WallClock) {}

  get running(): boolean {
    return this.isRunning;
  }

  /** Identifies the program now running; bumped by every restart. */
  get epoch(): number {
    return this.program;
  }

  /** MCU milliseconds: protocol time counted only while the core runs. */
  now(): number {
    return this.isRunning ? this.base + (this.clock.now() - this.since) : this.base;
  }

  /** The core starts or stops executing (halt, resume, reset hold, power). */
  setRunning(on: boolean): void {
    if (on === this.isRunning) return;
    if (on) {
      this.since = this.clock.now();
      this.isRunning = true;
      for (const t of this.timers) this.schedule(t);
      if (this.dirty) this.notify();
    } else {
      this.base = this.now();
      this.isRunning = false;
      for (const t of this.timers) {
        t.handle?.cancel();
        t.handle = undefined;
      }
    }
  }

  /** A new program: the old one's timers and waits are dropped, never resolved. */
  restart(): void {
    this.program++;
    for (const t of this.timers) t.handle?.cancel();
    this.timers.clear();
    this.waiters.clear();
    this.dirty = false;
  }

  /** Runs `fn` after `ms` of MCU time (frozen while halted). */
  after(ms: number, fn: () => void): { cancel(): void } {
    const t: Timer = { due: this.now() + Math.max(0, ms), fn, handle: undefined };
    this.timers.add(t);
    if (this.isRunning) this.schedule(t);
    return {
      cancel: () => {
        t.handle?.cancel();
        this.timers.delete(t);
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /**
   * Resolves with true once `check()` holds (looked at now and at every notify() while running), or with false
   * after `timeoutMs` of MCU time. Dropped unresolved by a restart.
   */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (this.isRunning && check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.after(timeoutMs, () => {
        this.waiters.delete(w);
        resolve(false);
      });
      const w: Waiter = {
        check,
        wake: () => {
          this.waiters.delete(w);
          timer.cancel();
          resolve(true);
        },
      };
      this.waiters.add(w);
    });
  }

  /** Input arrived (a UART byte into the DMA buffer): waiters look again, at once or when the core runs. */
  notify(): void {
    if (!this.isRunning) {
      this.dirty = true;
      return;
    }
    this.dirty = false;
    for (const w of [...this.waiters]) if (this.waiters.has(w) && w.check()) w.wake();
  }

  private schedule(t: Timer): void {
    t.handle = this.clock.after(Math.max(0, t.due - this.now()), () => {
      t.handle = undefined;
      this.timers.delete(t);
      t.fn();
    });
  }
}
