// Waiting for module events without a race. A cursor starts buffering the moment it is created, so a
// flow arms it, sends its command, then waits: an event that arrives between the command's OK and the
// wait (even in the same read as the OK) is already in the buffer. Every wait is bounded by a timeout and
// an AbortSignal, and fails at once when the port vanishes or when a `failOn` event (10706, RDY) comes.
import { AbortedError, ProtocolError } from '../errors.ts';
import type { InfrastructureError } from '../errors.ts';
import type { ModuleEvent } from './events.ts';

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Events that end the wait with an EventFailedError (e.g. 7,10706, or a reboot). */
  failOn?: (e: ModuleEvent) => boolean;
  /** What is awaited, in the protocol's words ("+QIOTEVT: 7,10703"), for error messages. */
  expected?: string;
}

export interface CursorSource {
  readonly station: string;
  readonly portPath: string;
  /** Subscribes to decoded events; returns the function that unsubscribes. */
  subscribe(fn: (e: ModuleEvent) => void): () => void;
  /** Subscribes to the port vanishing. */
  onDisconnect(fn: (err: InfrastructureError) => void): () => void;
}

/** The awaited event did not come in time. */
export class EventTimeoutError extends ProtocolError {}
/** An event that rules out success came first (10706 while waiting for 10705, a reboot …). */
export class EventFailedError extends ProtocolError {
  constructor(
    summary: string,
    details: ConstructorParameters<typeof ProtocolError>[1],
    readonly event: ModuleEvent,
  ) {
    super(summary, details);
  }
}

interface Waiter {
  match: (e: ModuleEvent) => boolean;
  opts: WaitOptions;
  resolve: (e: ModuleEvent) => void;
  reject: (err: Error) => void;
}

export class EventCursor {
  /** Every event seen since the cursor was armed (bounded), for reports and error messages. */
  readonly history: ModuleEvent[] = [];
  private readonly unread: ModuleEvent[] = [];
  private waiter: Waiter | undefined;
  private dropped = 0;
  private gone: InfrastructureError | undefined;
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly source: CursorSource,
    private readonly limit = 1000,
  ) {
    this.unsubscribe = [source.subscribe((e) => this.push(e)), source.onDisconnect((err) => this.onGone(err))];
  }

  /**
   * Resolves with the first unread event that matches; unread events before it are passed over (they stay
   * in `history`). Rejects with EventTimeoutError, EventFailedError, AbortedError, or the port's
   * InfrastructureError.
   */
  next<T extends ModuleEvent>(match: (e: ModuleEvent) => e is T, opts: WaitOptions): Promise<T>;
  next(match: (e: ModuleEvent) => boolean, opts: WaitOptions): Promise<ModuleEvent>;
  next(match: (e: ModuleEvent) => boolean, opts: WaitOptions): Promise<ModuleEvent> {
    if (this.waiter) return Promise.reject(new Error('EventCursor: one wait at a time'));
    return new Promise<ModuleEvent>((resolve, reject) => {
      const w: Waiter = { match, opts, resolve, reject };
      while (this.unread.length > 0) {
        if (this.offer(w, this.unread.shift()!)) return;
      }
      if (this.gone) {
        reject(this.gone);
        return;
      }
      if (opts.signal?.aborted) {
        reject(this.aborted(w));
        return;
      }
      const timer = setTimeout(() => {
        this.finish();
        reject(
          new EventTimeoutError(`no ${opts.expected ?? 'matching event'} within ${opts.timeoutMs} ms`, {
            station: this.source.station,
            expected: opts.expected,
            seen: this.seenSummary(),
          }),
        );
      }, opts.timeoutMs);
      const onAbort = () => {
        this.finish();
        reject(this.aborted(w));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      this.waiter = {
        ...w,
        resolve: (e) => {
          cleanup();
          resolve(e);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
    });
  }

  /** Stops buffering. */
  close(): void {
    for (const u of this.unsubscribe) u();
    this.unread.length = 0;
  }

  /** Number of unread events dropped because the buffer was full. */
  get overflowed(): number {
    return this.dropped;
  }

  private push(e: ModuleEvent): void {
    this.history.push(e);
    if (this.history.length > this.limit) this.history.shift();
    const w = this.waiter;
    if (w) {
      if (this.offer(w, e)) this.waiter = undefined;
      return;
    }
    this.unread.push(e);
    if (this.unread.length > this.limit) {
      this.unread.shift();
      this.dropped++;
    }
  }

  /** True when the event settled the waiter. */
  private offer(w: Waiter, e: ModuleEvent): boolean {
    if (w.opts.failOn?.(e)) {
      w.reject(
        new EventFailedError(
          `${e.raw} while waiting for ${w.opts.expected ?? 'an event'}`,
          { station: this.source.station, expected: w.opts.expected, seen: e.raw },
          e,
        ),
      );
      return true;
    }
    if (w.match(e)) {
      w.resolve(e);
      return true;
    }
    return false;
  }

  private onGone(err: InfrastructureError): void {
    this.gone = err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }

  private finish(): void {
    this.waiter = undefined;
  }

  private aborted(w: Waiter): AbortedError {
    const reason = w.opts.signal?.reason;
    return new AbortedError(`wait for ${w.opts.expected ?? 'an event'} aborted: ${reason instanceof Error ? reason.message : String(reason)}`, {
      station: this.source.station,
      cause: reason,
    });
  }

  private seenSummary(): string {
    const recent = this.history.slice(-5).map((e) => e.raw);
    return recent.length > 0 ? `only ${recent.map((r) => JSON.stringify(r)).join(', ')}` : 'no event at all';
  }
}
