// A UART direction paced at the baud rate: 10 bits a byte (start, 8 data, stop), as on the real wire.
// A byte is handed on when its stop bit would have finished. Scheduling is by elapsed time against a byte
// budget, so timer jitter is caught up on the next tick instead of accumulating as drift, and the rate is
// never exceeded: a new burst starts no earlier than the moment the line became free.

export class PacedLink {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private periodStart = 0;
  private sentInPeriod = 0;
  private lineFreeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by clear(): a pending precise wait of an earlier burst gives up. */
  private generation = 0;
  private waiting = false;
  private closed = false;
  private readonly bytesPerMs: number;
  private readonly spinMs: number;

  /**
   * @param baud bits per second; 0 = unpaced (bytes are handed on at once).
   * @param sink receives the bytes in order, in chunks whose size depends on timer granularity.
   * @param options.spinMs the last part of a burst is timed with setImmediate polling over at most this many
   *   ms, because setTimeout is ~1 ms late and a command's answer waits for its final byte. 0 = timers only.
   */
  constructor(
    readonly baud: number,
    private readonly sink: (chunk: Buffer) => void,
    options: { spinMs?: number } = {},
  ) {
    if (!(baud >= 0) || !Number.isFinite(baud)) throw new RangeError(`baud must be >= 0, got ${baud}`);
    this.bytesPerMs = baud / 10 / 1000;
    this.spinMs = options.spinMs ?? 1.5;
  }

  /** Bytes waiting to go out. */
  get pending(): number {
    return this.queued;
  }

  push(chunk: Buffer): void {
    this.enqueue(chunk, 0);
  }

  /**
   * The echo of bytes that just arrived on the reverse direction at this link's rate, the last of them now.
   * A module echoes each character as it takes it, so the echo of a byte can leave as soon as that byte has
   * arrived: the burst may have begun (length − 1) byte times ago, if the line was free then. Without this,
   * an echo would wait for the receiving link's whole chunk (up to ~2 ms of line time) and add a command's
   * length to every exchange, which a real UART does not.
   */
  pushEcho(chunk: Buffer): void {
    this.enqueue(chunk, this.baud > 0 ? (chunk.length - 1) / this.bytesPerMs : 0);
  }

  private enqueue(chunk: Buffer, begunMs: number): void {
    if (this.closed || chunk.length === 0) return;
    if (this.baud === 0) {
      this.sink(chunk);
      return;
    }
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.waiting) {
      this.periodStart = Math.max(performance.now() - begunMs, this.lineFreeAt);
      this.sentInPeriod = 0;
      this.schedule();
    }
  }

  /** Drops everything not yet on the wire (power loss). */
  clear(): void {
    this.queue.length = 0;
    this.queued = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting = false;
    this.generation++;
    this.lineFreeAt = Math.min(this.lineFreeAt, performance.now());
  }

  close(): void {
    this.clear();
    this.closed = true;
  }

  private schedule(): void {
    // Wake when the tail is due, but at least every ~2 ms of line time so the receiver sees a steady stream.
    const step = Math.max(1, Math.ceil(this.bytesPerMs * 2));
    const target = this.sentInPeriod + Math.min(this.queued, step);
    const dueAt = this.periodStart + target / this.bytesPerMs;
    const delay = dueAt - performance.now();
    this.waiting = true;
    if (target < this.sentInPeriod + this.queued || this.spinMs === 0 || delay > this.spinMs) {
      // Intermediate ticks may be late: the byte budget catches up on the next one.
      const early = target < this.sentInPeriod + this.queued || this.spinMs === 0 ? 0 : this.spinMs - 0.5;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (early > 0) this.spinUntil(dueAt);
        else this.tick();
      }, Math.max(0, delay - early));
    } else {
      this.spinUntil(dueAt);
    }
  }

  private spinUntil(dueAt: number): void {
    const generation = this.generation;
    const poll = (): void => {
      if (generation !== this.generation) return;
      if (performance.now() >= dueAt) this.tick();
      else setImmediate(poll);
    };
    poll();
  }

  private tick(): void {
    this.waiting = false;
    const now = performance.now();
    const due = Math.floor((now - this.periodStart) * this.bytesPerMs + 1e-6) - this.sentInPeriod;
    let n = Math.min(due, this.queued);
    if (n > 0) {
      const parts: Buffer[] = [];
      this.sentInPeriod += n;
      this.queued -= n;
      while (n > 0) {
        const head = this.queue[0]!;
        if (head.length <= n) {
          parts.push(head);
          this.queue.shift();
          n -= head.length;
        } else {
          parts.push(head.subarray(0, n));
          this.queue[0] = head.subarray(n);
          n = 0;
        }
      }
      this.sink(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    if (this.closed) return;
    if (this.queued > 0) this.schedule();
    else this.lineFreeAt = this.periodStart + this.sentInPeriod / this.bytesPerMs;
  }
}

/**
 * One direction of a UART line between two parts of the station (the module's main UART and the MCU): paced
 * at its baud, and every listener — the receiver, a tap — sees the bytes as they leave the line, together.
 */
export class UartWire {
  private readonly link: PacedLink;
  private readonly listeners = new Set<(chunk: Buffer) => void>();

  constructor(readonly baud: number) {
    this.link = new PacedLink(baud, (chunk) => {
      for (const fn of [...this.listeners]) fn(chunk);
    });
  }

  /** The transmitter puts bytes on the line. */
  send(bytes: Buffer): void {
    this.link.push(bytes);
  }

  /** The transmitter echoes bytes it is receiving at the same baud (PacedLink.pushEcho). */
  sendEcho(bytes: Buffer): void {
    this.link.pushEcho(bytes);
  }

  /** The transmitter lost power: what it had not sent yet never reaches the line. */
  clear(): void {
    this.link.clear();
  }

  /** Adds a receiver (or a tap); returns the unsubscribe. */
  listen(fn: (chunk: Buffer) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.link.close();
    this.listeners.clear();
  }
}
