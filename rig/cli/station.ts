// How a station command runs: load the config (--config), open the station with an AbortSignal that Ctrl-C
// trips, run the body, and close the station (safe state) whatever happened. Errors become one message and
// a documented exit code; Ctrl-C becomes 130 once the station is safe.
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { AbortedError, ConfigError } from '../errors.ts';
import { openStation, type OpenedStation } from '../station/open.ts';
import type { Recorder } from '../sota/recorder.ts';
import { ExitCode } from './main.ts';
import { paint, reportError, UsageError } from './output.ts';
import { didYouMean } from './suggest.ts';

let interrupted = false;

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** What a stop signal aborts: every withInterrupt body running now. */
const running = new Set<AbortController>();
let watchers = 0;

function onStopSignal(sig: NodeJS.Signals): void {
  interrupted = true;
  for (const c of running) c.abort(new AbortedError(`interrupted (${sig})`));
  if (running.size > 0) return;
  // Nothing is open that a stop would have to bring to its safe state (before a station opens, after it
  // closed, between a sweep's points): end now, as the signal would, with the documented exit code.
  process.stderr.write(`${paint(process.stderr).yellow('rig: interrupted')} (${sig}); no station was open\n`);
  process.exit(ExitCode.interrupted);
}

/**
 * Ctrl-C, SIGTERM (also what a rig whose parent died sends itself) and a terminal's hang-up are caught from
 * the moment a command starts until it returns, not only while a station is open: a signal that lands as the
 * station closes, or just after, still ends the command with its exit code instead of killing it outright.
 */
function watchStopSignals(): () => void {
  if (watchers++ === 0) for (const sig of STOP_SIGNALS) process.on(sig, onStopSignal);
  return () => {
    if (--watchers === 0) for (const sig of STOP_SIGNALS) process.removeListener(sig, onStopSignal);
  };
}

/** Aborts the signal `body` gets on a stop signal; the station's own handlers bring it to its safe state. */
async function withInterrupt<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  if (interrupted) controller.abort(new AbortedError('interrupted'));
  running.add(controller);
  const unwatch = watchStopSignals();
  try {
    return await body(controller.signal);
  } finally {
    running.delete(controller);
    unwatch();
  }
}

/**
 * Runs a command body; a thrown error is printed once and mapped to its exit code. `ownSignals`: the command
 * handles stop signals itself (rig sim forwards them to its child, rig report lets its child decide).
 */
export async function runCommand(json: boolean, body: () => Promise<number>, options: { ownSignals?: boolean } = {}): Promise<number> {
  const unwatch = options.ownSignals ? () => undefined : watchStopSignals();
  try {
    const code = await body();
    if (!interrupted) return code;
    // The stop came after the command had done its work (the record written, the station closed): what it
    // printed stands, and the exit code still says it was interrupted.
    process.stderr.write(`${paint(process.stderr).yellow('rig: interrupted')} after the command had finished (exit ${code} otherwise); what it wrote stands, the station is in its safe state\n`);
    return ExitCode.interrupted;
  } catch (err) {
    if (interrupted) {
      process.stderr.write(`${paint(process.stderr).yellow('rig: interrupted')}; the station is in its safe state\n`);
      return ExitCode.interrupted;
    }
    return reportError(err, { json });
  } finally {
    unwatch();
  }
}

/** A station the config does not have: a config error naming the nearest one it does, before anything opens. */
export function checkStationName(name: string, config: LoadedConfig): void {
  if (Object.hasOwn(config.stations, name)) return;
  const have = Object.keys(config.stations);
  throw new ConfigError(`no station "${name}" in the config${config.source ? ` ${config.source}` : ''}${didYouMean(name, have)}`, { expected: `one of ${have.join(', ')}`, seen: name });
}

/**
 * The running virtual station to attach to: --attach <file>, else $RIG_SIM (printed by `rig sim`). Only a
 * virtual station attaches; --attach on a hardware station is a usage error, $RIG_SIM is ignored for one.
 */
export function attachFile(name: string, config: LoadedConfig, option: string | undefined): string | undefined {
  const virtual = config.stations[name]?.kind === 'virtual';
  if (option !== undefined && !virtual) throw new UsageError(`--attach: ${name} is not a virtual station`, { expected: 'a virtual station (the one rig sim runs)', seen: name });
  const file = option ?? (process.env.RIG_SIM || undefined);
  return virtual ? file : undefined;
}

export function requireStationName(name: string | undefined, command: string): string {
  if (name === undefined || name === '') throw new UsageError(`rig ${command}: which station?`, { expected: `rig ${command} <station> (e.g. virtual)`, seen: 'no station name' });
  return name;
}

export interface StationContext {
  station: OpenedStation;
  config: LoadedConfig;
  signal: AbortSignal;
}

/** Opens the station, runs `body`, closes the station (also on failure and Ctrl-C). */
export async function withStation<T>(
  name: string,
  opts: { config?: string | undefined; loaded?: LoadedConfig; recorder?: Recorder; attach?: string | undefined; probe?: boolean },
  body: (ctx: StationContext) => Promise<T>,
): Promise<T> {
  const config = opts.loaded ?? (await loadConfig(opts.config === undefined ? {} : { path: opts.config }));
  checkStationName(name, config);
  const attach = attachFile(name, config, opts.attach);
  return withInterrupt(async (signal) => {
    const station = await openStation(name, { config, signal, attach, ...(opts.recorder ? { recorder: opts.recorder } : {}), ...(opts.probe !== undefined ? { probe: opts.probe } : {}) });
    let result: T;
    try {
      result = await body({ station, config, signal });
    } catch (err) {
      await station.close().catch((e: unknown) => process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`));
      throw err;
    }
    await station.close();
    return result;
  });
}

export { withInterrupt };

/** True once Ctrl-C (or SIGTERM) stopped the command. */
export function wasInterrupted(): boolean {
  return interrupted;
}
