// One clock for every protocol timer of the virtual station. Protocol durations (30 s URL wait, 60 s read
// inactivity, 20 min update wait, 5 s 10702 period, re-push periods, boot time) are given in protocol
// milliseconds and multiplied by the time scale, so timeout paths are testable in seconds (docs/architecture.md §3).

export interface SimTimer {
  cancel(): void;
}

export class SimClock {
  private readonly started = performance.now();
  private readonly live = new Set<NodeJS.Timeout>();

  /** @param timeScale wall time = protocol time × timeScale (1 = real time, 0.01 = 100× faster). */
  constructor(readonly timeScale = 1) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`time scale must be > 0, got ${timeScale}`);
  }

  /** Protocol milliseconds since the clock started. */
  now(): number {
    return (performance.now() - this.started) / this.timeScale;
  }

  /** Wall-clock milliseconds for a protocol duration. */
  wallMs(protocolMs: number): number {
    return protocolMs * this.timeScale;
  }

  after(protocolMs: number, fn: () => void): SimTimer {
    const handle = setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, this.wallMs(protocolMs));
    this.live.add(handle);
    return {
      cancel: () => {
        clearTimeout(handle);
        this.live.delete(handle);
      },
    };
  }

  every(protocolMs: number, fn: () => void): SimTimer {
    const handle = setInterval(fn, this.wallMs(protocolMs));
    this.live.add(handle);
    return {
      cancel: () => {
        clearInterval(handle);
        this.live.delete(handle);
      },
    };
  }

  /** Cancels every timer still pending (process shutdown). */
  stopAll(): void {
    for (const h of this.live) clearTimeout(h);
    this.live.clear();
  }
}

/**
 * A clock that moves only when told, for tests that must cut power at an exact moment: its timers fire in
 * due order as it advances, each followed by a turn of the event loop so the code they wake can run.
 */
export class ManualClock {
  private t = 0;
  private timers: { due: number; seq: number; fn: () => void; live: boolean }[] = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): SimTimer {
    const timer = { due: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Fires the next due timer, if one is due by `limit`; false when none is. */
  private async step(limit: number): Promise<boolean> {
    this.timers = this.timers.filter((x) => x.live);
    let next: (typeof this.timers)[number] | undefined;
    for (const x of this.timers) if (x.due <= limit && (!next || x.due < next.due || (x.due === next.due && x.seq < next.seq))) next = x;
    if (!next) return false;
    this.t = Math.max(this.t, next.due);
    next.live = false;
    next.fn();
    await new Promise((r) => setImmediate(r));
    return true;
  }

  /** Moves time on by `ms`, firing whatever falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    while (await this.step(end));
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }

  /** Runs timers until `done()` holds (checked after each), at most `withinMs` from now; false if it never did. */
  async until(done: () => boolean, withinMs: number): Promise<boolean> {
    const end = this.t + withinMs;
    while (!done()) if (!(await this.step(end))) return done();
    return true;
  }
}
