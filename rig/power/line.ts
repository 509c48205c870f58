// The whole contract a flow may rely on (STYLE.md), plus the two timed actions every fault schedule uses.
// "on" is a line's running level: supply on, reset released. A reset line is therefore pulsed *off*.
import { AbortedError, ConfigError, InfrastructureError, isRigError } from '../errors.ts';

export interface PowerLine {
  readonly name: string; // "bench-2/module-vbat", used in logs and errors
  set(on: boolean): Promise<void>; // resolves once the line is driven, never "eventually"
  get(): Promise<boolean>;
  close(): Promise<void>; // returns the line to its safe state, then releases it
}

/** What the safe-state registry needs from a backend on top of PowerLine. */
export interface SafeStateLine extends PowerLine {
  /** The configured safe level, applied on close, crash and signals. */
  readonly safe: boolean;
  /**
   * Drives the safe level synchronously, best effort: it runs in `uncaughtExceptionMonitor` and in signal
   * handlers, where the process may be gone before any promise settles.
   */
  applySafeStateSync(): void;
}

/**
 * A line's name as it reads after the station prefix that RigError already puts in front:
 * "bench-2: module-vbat: …", not "bench-2: bench-2/module-vbat: …".
 */
export function lineLabel(name: string, station: string | undefined): string {
  return station !== undefined && name.startsWith(`${station}/`) ? name.slice(station.length + 1) : name;
}

export interface TimedOptions {
  signal?: AbortSignal;
}

function checkDuration(line: PowerLine, what: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new ConfigError(`${line.name}: ${what} duration must be a finite number of milliseconds >= 0`, {
      expected: 'a duration in ms, e.g. 2000',
      seen: String(ms),
    });
  }
}

/** Waits `ms` by performance.now(), or rejects with the abort reason as soon as `signal` fires. */
function hold(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const until = performance.now() + ms;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    // Node's timers run on the loop's millisecond clock and can fire up to 1 ms before `ms` have passed;
    // an off time is a promise to the hardware (a supply that must drain), so wait out the remainder.
    const arm = (left: number): void => {
      timer = setTimeout(() => {
        const rest = until - performance.now();
        if (rest > 0) return arm(rest);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, left);
    };
    arm(ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/**
 * Drives `line` off for `offMs`, then on again. The line is switched back on even when `signal` aborts the
 * wait (then an AbortedError says how long it was off) or when switching off itself failed half-way.
 */
export async function cycle(line: PowerLine, offMs: number, options: TimedOptions = {}): Promise<void> {
  await timedOff(line, offMs, 'power cycle', options);
}

/** Holds a reset line asserted (off) for `ms`, then releases it, with the same guarantees as `cycle`. */
export async function pulse(resetLine: PowerLine, ms: number, options: TimedOptions = {}): Promise<void> {
  await timedOff(resetLine, ms, 'reset pulse', options);
}

/**
 * A timed action failed or was aborted, and switching the line back on failed too: the line may be left
 * off. `cause` is the first failure (the one that explains the run), `restoreError` the second; the
 * message names both and the line.
 */
export class LineLeftOffError extends InfrastructureError {
  constructor(
    readonly line: string,
    what: string,
    first: unknown,
    readonly restoreError: unknown,
  ) {
    const station = isRigError(first) ? first.station : isRigError(restoreError) ? restoreError.station : undefined;
    super(`${lineLabel(line, station)}: ${what} failed, and switching the line back on failed too: it may be left off`, {
      station,
      expected: `the line switched off, held, then switched back on`,
      seen: `${reasonText(first)}; then, switching back on: ${reasonText(restoreError)}`,
      cause: first,
    });
  }
}

async function timedOff(line: PowerLine, ms: number, what: string, { signal }: TimedOptions): Promise<void> {
  checkDuration(line, what, ms);
  if (signal?.aborted) {
    throw new AbortedError(`${line.name}: ${what} not started, already aborted`, { seen: reasonText(signal.reason) });
  }
  const started = performance.now();
  let failure: { error: unknown } | undefined;
  let aborted: { reason: unknown } | undefined;
  try {
    await line.set(false);
    await hold(ms, signal);
  } catch (err) {
    if (signal?.aborted) aborted = { reason: signal.reason };
    else failure = { error: err };
  }
  const offFor = Math.round(performance.now() - started);
  const abortedError = (tail: string): AbortedError =>
    new AbortedError(`${line.name}: ${what} aborted after ${offFor} ms of ${ms} ms${tail}`, { seen: reasonText(aborted!.reason) });
  try {
    await line.set(true);
  } catch (restoreError) {
    // Both failures matter: the first explains the run, the second says the line may still be off.
    if (failure) throw new LineLeftOffError(line.name, what, failure.error, restoreError);
    if (aborted) throw new LineLeftOffError(line.name, what, abortedError(''), restoreError);
    throw restoreError;
  }
  if (failure) throw failure.error;
  if (aborted) throw abortedError('; the line is back on');
}
