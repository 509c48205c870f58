// How the virtual MCU's firmware runs: as async code whose every wait goes through this runtime, so the core
// can be frozen and thrown away as silicon is. The MCU's clock advances only while the core runs (powered,
// out of reset, not halted by the debugger); a halt freezes every timer where it stands, including the
// watchdog (OpenOCD's cfg sets DBGMCU's IWDG_STOP) and flash operations. A reset or power loss starts a new
// program: every wait of the old one is dropped unresolved, so none of its code runs again — the way RAM
// and the program counter are lost on silicon.
//
// The MCU's events run one at a time in the order of their MCU time, whatever the host's load: the clock
// never moves past an event not yet run, and the code an event wakes runs (and schedules what follows)
// before the next event. So a busy host delays the MCU as a whole but never reorders it — a watchdog can
// not fire before the feed that was due earlier, however late the timers come.
import type { FlashClock } from '../target/flash-writer.ts';

export interface WallClock {
  /** Protocol milliseconds. */
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
}

interface Waiter {
  check: () => boolean;
  wake: () => void;
}

export class McuRuntime implements FlashClock {
  private isRunning = false;
  /** MCU time when the core last started running, and the wall clock's time then. */
  private base = 0;
  private since = 0;
  /** MCU time of the last event run: the clock never goes back. */
  private floor = 0;
  private program = 0;
  private seq = 0;
  private readonly queue: Timer[] = [];
  /** The one wall timer, for the earliest event. */
  private wake: { cancel(): void } | undefined;
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

  private head(): Timer | undefined {
    let h: Timer | undefined;
    for (const t of this.queue) if (!h || t.due < h.due || (t.due === h.due && t.seq < h.seq)) h = t;
    return h;
  }

  private wallNow(): number {
    return this.isRunning ? this.base + (this.clock.now() - this.since) : this.base;
  }

  /**
   * MCU milliseconds: protocol time counted only while the core runs. It follows the wall clock while no event
   * is overdue; with one overdue (a late host) it stands at the last event run until that one runs.
   */
  now(): number {
    const w = this.wallNow();
    const h = this.head();
    if (!h || w < h.due) this.floor = Math.max(this.floor, w);
    return this.floor;
  }

  /** The core starts or stops executing (halt, resume, reset hold, power). */
  setRunning(on: boolean): void {
    if (on === this.isRunning) return;
    if (on) {
      this.since = this.clock.now();
      this.isRunning = true;
      this.arm();
      if (this.dirty) this.notify();
    } else {
      this.base = this.now();
      this.isRunning = false;
      this.wake?.cancel();
      this.wake = undefined;
    }
  }

  /** A new program: the old one's timers and waits are dropped, never resolved. */
  restart(): void {
    this.program++;
    this.queue.length = 0;
    this.wake?.cancel();
    this.wake = undefined;
    this.waiters.clear();
    this.dirty = false;
  }

  /** Runs `fn` after `ms` of MCU time (frozen while halted). */
  after(ms: number, fn: () => void): { cancel(): void } {
    const t: Timer = { due: this.now() + Math.max(0, ms), seq: this.seq++, fn };
    this.queue.push(t);
    this.arm();
    return {
      cancel: () => {
        const i = this.queue.indexOf(t);
        if (i < 0) return;
        this.queue.splice(i, 1);
        this.arm();
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

  private arm(): void {
    this.wake?.cancel();
    this.wake = undefined;
    const h = this.head();
    if (!this.isRunning || !h) return;
    this.wake = this.clock.after(Math.max(0, h.due - this.wallNow()), () => this.fire());
  }

  /** Runs the earliest event only; what it wakes runs before the next event is looked at. */
  private fire(): void {
    this.wake = undefined;
    const h = this.head();
    if (!this.isRunning || !h) return;
    if (h.due > this.wallNow()) return this.arm();
    this.queue.splice(this.queue.indexOf(h), 1);
    this.floor = Math.max(this.floor, h.due);
    this.arm();
    h.fn();
  }
}
