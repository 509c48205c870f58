// One clock for every protocol timer of the virtual station. Protocol durations (30 s URL wait, 60 s read
// inactivity, 20 min update wait, 5 s 10702 period, re-push periods, boot time) are given in protocol
// milliseconds and multiplied by the time scale, so timeout paths are testable in seconds (DESIGN.md §3).

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
