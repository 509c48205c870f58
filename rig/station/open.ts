// openStation: one config entry → a Station (station.ts). It takes the station's lock, starts the virtual
// station when the entry is one, opens the power lines by role, the module's AT port (and checks the module
// answers, learning its echo), the probe and the plan source. If any step fails, what was opened is closed
// in reverse order and the error names the station. close() is the safe state — power lines at their safe
// levels, OpenOCD gone, ports closed, sim stopped, lock released — and also runs on SIGINT/SIGTERM/SIGHUP.
import { rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AtPort } from '../at/port.ts';
import { AtCommandError, AtPortError } from '../at/errors.ts';
import type { TapFrame } from '../at/passive.ts';
import { ConsolePort, TapPair } from '../at/tap.ts';
import type { ConsoleLine } from '../at/tap.ts';
import { loadConfig, resolveSecret, type LoadedConfig } from '../config/load.ts';
import type { HardwareStationConfig, PowerRole, RigConfig, StationConfig } from '../config/schema.ts';
import { AbortedError, ConfigError, FirmwareError, InfrastructureError, InternalError, isRigError, ProtocolError } from '../errors.ts';
import { openPowerLines, type PowerLines } from '../power/open.ts';
import { cycle, pulse, type TimedOptions } from '../power/line.ts';
import { buildProbeArgs } from '../probe/args.ts';
import { Probe } from '../probe/probe.ts';
import { QuecThing } from '../quecthing/quecthing.ts';
import type { Recorder } from '../sota/recorder.ts';
import { defaultLockDir, lockStation, type StationLock } from './lock.ts';
import { watchParent } from './parent.ts';
import { requireOpenocd } from './preflight.ts';
import { sweepScratch } from '../scratch.ts';
import { openPlanSource } from './plans.ts';
import type { PlanSource, ProtocolTimeouts, Station, StationInfo, StationMcu, StationModule, StationPart, StationPower } from './station.ts';
import { resolveTimeouts } from './timeouts.ts';
import { attachVirtualStation, startVirtualStation, type VirtualStation } from './virtual.ts';

export interface OpenStationOptions {
  /** A loaded config (loadConfig/parseConfig); default: loadConfig() from the working directory. */
  config?: RigConfig | LoadedConfig;
  signal?: AbortSignal;
  /** Opening phases are reported as steps when given. */
  recorder?: Recorder;
  /** Where station locks live (default: $RIG_LOCK_DIR or the system temp dir). */
  lockDir?: string;
  /**
   * Whether to start OpenOCD (default true). A command that never touches the target (`rig at`, `rig
   * power`) leaves it out, and so works with the probe unplugged; `station.probe` then throws when used.
   */
  probe?: boolean;
  /**
   * A virtual station entry attaches to the running station this file describes (`rig sim` writes it and
   * prints RIG_SIM=<file>) instead of starting a sim of its own. Ignored for a hardware entry.
   */
  attach?: string | undefined;
}

/** A station as opened: the Station contract plus what only diagnostics need. */
export interface OpenedStation extends Station {
  readonly module: OpenedModule;
  readonly lock: StationLock;
  /** The resolved hardware entry the station was opened from (for the virtual station: what the sim gave). */
  readonly config: HardwareStationConfig;
  /** The entry as the config has it (for the virtual station: its settings, not the sim's ports). */
  readonly entry: StationConfig;
  /** True once close() has been called. */
  readonly closed: boolean;
}

export interface OpenedModule extends StationModule {
  /**
   * Whether the module echoes commands, learned, not assumed (AtPort.echo): from its answer to AT when the
   * port opens, and from ATE0/ATE1. Undefined after a reboot until it answers a command again.
   */
  readonly echo: boolean | undefined;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** A virtual station's lock directory, private to the process that opened it (`<lock dir>/process-<pid>`). */
const PRIVATE_LOCK_DIR = /^process-(\d+)$/;
/** How long a signal may wait for the station to reach its safe state before the process goes on dying. */
const SIGNAL_CLOSE_BOUND_MS = 8_000;

function unknownStation(name: string, config: RigConfig | LoadedConfig): ConfigError {
  const source = 'source' in config ? (config as LoadedConfig).source : undefined;
  return new ConfigError(`no station "${name}" in the config${source ? ` ${source}` : ''}`, {
    expected: `one of ${Object.keys(config.stations).join(', ')}`,
    seen: name,
  });
}

/** Opens the station `name` from config. Throws ConfigError / InfrastructureError / AbortedError naming it. */
export async function openStation(name: string, options: OpenStationOptions = {}): Promise<OpenedStation> {
  const config = options.config ?? (await loadConfig());
  const entry: StationConfig | undefined = Object.hasOwn(config.stations, name) ? config.stations[name] : undefined;
  if (!entry) throw unknownStation(name, config);
  const dotenv: Readonly<Record<string, string>> = 'dotenv' in config ? (config as LoadedConfig).dotenv : {};
  const step = <T>(what: string, body: () => Promise<T>): Promise<T> => (options.recorder ? options.recorder.step(`${name}: ${what}`, body) : body());
  const signal = options.signal;
  const checkAbort = (): void => {
    if (signal?.aborted) throw new AbortedError('opening the station aborted', { station: name, cause: signal.reason });
  };

  // Secrets first: a missing variable is a config error, before anything is switched or locked.
  let productInfo: StationModule['productInfo'];
  if (entry.kind === 'virtual') {
    productInfo = { productKey: entry.productKey, productSecret: entry.productSecret };
  } else if (entry.module.productKey !== undefined && entry.module.productSecret !== undefined) {
    productInfo = {
      productKey: entry.module.productKey,
      productSecret: resolveSecret(entry.module.productSecret, { station: name, key: `stations.${name}.module.productSecret`, dotenv }),
    };
  }

  // Before anything is locked or switched: the tools the station needs are there.
  const withProbe = options.probe ?? true;
  if (withProbe) requireOpenocd(name, entry);

  // What rigs killed outright left in the temp dir (their pid is gone): OpenOCD scratch files, lock dirs.
  sweepScratch();
  sweepScratch(defaultLockDir(), PRIVATE_LOCK_DIR);

  const undo: { what: string; run: () => Promise<void> }[] = [];
  let lock: StationLock | undefined;
  // From here on a rig left without its parent stops as on SIGTERM; let go of last, once all is safe.
  const unwatchParent = watchParent();
  undo.push({ what: 'parent watch', run: () => Promise.resolve(unwatchParent()) });
  try {
    checkAbort();
    // A virtual station is this process's own sim, not a shared bench: its lock keeps two opens in one
    // process apart without making parallel test processes queue for a resource they do not share.
    // An attached one is shared by the processes that attach to it: its lock lives next to its attach file.
    const attached = entry.kind === 'virtual' && options.attach !== undefined ? attachVirtualStation(entry, options.attach, { station: name }) : undefined;
    const privateDir = options.lockDir === undefined && entry.kind === 'virtual' && !attached ? path.join(defaultLockDir(), `process-${process.pid}`) : undefined;
    lock = await step('lock', () => lockStation(name, { dir: options.lockDir ?? attached?.lockDir ?? privateDir }));
    const held = lock;
    undo.push({
      what: 'lock',
      run: async () => {
        // Everything else is closed by now; the private lock file goes before the lock, so no later
        // opener can lock an inode that is about to be unlinked.
        if (privateDir) rmSync(held.file, { force: true });
        await held.release();
        if (privateDir) rmdirQuiet(privateDir);
      },
    });

    let hw: HardwareStationConfig;
    let virtual: VirtualStation | undefined;
    if (entry.kind === 'virtual') {
      checkAbort();
      virtual = attached ? await step(`attach to the running virtual station (pid ${attached.pid})`, () => Promise.resolve(attached)) : await step('start the virtual station', () => startVirtualStation(entry, { station: name, signal }));
      const v = virtual;
      undo.push({ what: 'virtual station', run: () => v.close() });
      hw = v.config;
    } else {
      hw = entry;
    }
    const timeouts = resolveTimeouts(hw.timeouts);

    checkAbort();
    const lines = await step('power lines', () => openPowerLines({ boards: hw.power.boards, lines: hw.power.lines }, { station: name, signal }));
    undo.push({ what: 'power lines', run: () => lines.close() });

    checkAbort();
    // Known before the first byte: a garbled echo of productinfo, or the module's own answer, cannot show it.
    const secrets = productInfo ? [productInfo.productSecret] : [];
    const at = new AtPort({ station: name, path: hw.module.port, baudRate: hw.module.baudRate, commandTimeoutMs: timeouts.commandMs, secrets });
    await step('module AT port', () => at.open());
    undo.push({ what: 'AT port', run: () => at.close() });
    const qt = new QuecThing(at);
    undo.push({ what: 'QuecThing', run: () => Promise.resolve(qt.dispose()) });
    await step('module answers AT', () => awaitModule(at, name, timeouts, signal));
    const echoSetting = hw.module.echo;
    const applyEcho = async (s: AbortSignal | undefined): Promise<void> => {
      if (echoSetting === 'keep') return;
      const command = echoSetting === 'off' ? 'ATE0' : 'ATE1';
      await at.command(command, {
        timeoutMs: timeouts.commandMs + timeouts.marginMs,
        ...(s ? { signal: s } : {}),
        expected: `OK (module.echo '${echoSetting}': echo ${echoSetting} until the module restarts)`,
      });
    };
    if (echoSetting !== 'keep') await step(`module echo ${echoSetting} (${echoSetting === 'off' ? 'ATE0' : 'ATE1'})`, () => applyEcho(signal));

    let mcu: StationMcu | undefined;
    if (hw.mcu) {
      checkAbort();
      const side = await step('MCU taps and console', () => openMcuSide(name, hw.mcu!));
      undo.push({ what: 'MCU taps and console', run: () => side.close() });
      mcu = side.mcu;
    }

    checkAbort();
    const setup = buildProbeArgs(hw.probe);
    const probe = !withProbe
      ? absentProbe(name)
      : await step('probe (OpenOCD)', () => Probe.open({ ...setup, station: name, openocd: hw.probe.openocd, timeouts: hw.probe.timeouts }, { signal }));
    if (withProbe) undo.push({ what: 'probe', run: () => probe.close() });

    const plans: PlanSource = openPlanSource(hw.plans, { station: name });

    const module: OpenedModule = {
      path: hw.module.port,
      baudRate: hw.module.baudRate,
      at,
      qt,
      productInfo,
      get echo() {
        return at.echo;
      },
      echoSetting,
      async reopen({ signal: s }: { signal?: AbortSignal } = {}) {
        if (state.closed) throw new InfrastructureError('cannot reopen the AT port of a closed station', { station: name });
        await at.close();
        if (s?.aborted) throw new AbortedError(`reopening ${hw.module.port} aborted`, { station: name, cause: s.reason });
        await at.open();
        await awaitModule(at, name, timeouts, s);
        // The port may have vanished with the module's supply: a module that restarted echoes again.
        await applyEcho(s);
      },
      applyEcho: ({ signal: s }: { signal?: AbortSignal } = {}) => applyEcho(s),
    };

    const info: StationInfo = {
      name,
      description: hw.description,
      baudRate: hw.module.baudRate,
      target: hw.probe.target,
      probe: describeProbe(hw),
    };

    const state = { closed: false, closing: undefined as Promise<void> | undefined };
    const detachSignals = onSignals(() => close());
    const close = (): Promise<void> =>
      (state.closing ??= (async () => {
        state.closed = true;
        detachSignals.stopWatching();
        // Plans this run created go first, while the cloud is still there to end them.
        const errors: unknown[] = [];
        await plans.clear().catch((e: unknown) => errors.push(e));
        errors.push(...(await runUndo(undo)));
        detachSignals.detach();
        if (errors.length > 0) throw closeError(name, errors);
      })());

    const station: OpenedStation = {
      name,
      info,
      module,
      probe,
      power: stationPowerFor(name, lines, hw.power.roles),
      plans,
      layout: { slotAddress: hw.layout.slotAddress, slotSize: hw.layout.slotSize },
      component: hw.component,
      timeouts,
      ...(mcu ? { mcu } : {}),
      lock: held,
      config: hw,
      entry,
      get closed() {
        return state.closed;
      },
      close,
    };
    return station;
  } catch (err) {
    const errors = await runUndo(undo);
    for (const e of errors) process.stderr.write(`${name}: while undoing a failed open: ${e instanceof Error ? e.message : String(e)}\n`);
    throw named(name, err);
  }
}

/** Opens the taps and the console (listen only) and gives the station's view of them. */
async function openMcuSide(station: string, cfg: NonNullable<HardwareStationConfig['mcu']>): Promise<{ mcu: StationMcu; close(): Promise<void> }> {
  const frameListeners = new Set<(f: TapFrame) => void>();
  const consoleListeners = new Set<(l: ConsoleLine) => void>();
  const taps = new TapPair({ station, mcu: cfg.taps.mcuToModule, module: cfg.taps.moduleToMcu, baudRate: cfg.taps.baudRate }, (f) => {
    for (const l of frameListeners) l(f);
  });
  const con = cfg.console
    ? new ConsolePort({ station, path: cfg.console.port, baudRate: cfg.console.baudRate }, (line) => {
        for (const l of consoleListeners) l(line);
      })
    : undefined;
  await taps.open();
  try {
    await con?.open();
  } catch (err) {
    await taps.close();
    throw err;
  }
  const mcu: StationMcu = {
    taps: { ...cfg.taps },
    console: cfg.console ? { ...cfg.console } : undefined,
    layout: cfg.layout,
    bootRecord: cfg.bootRecord,
    observe(onFrame, onConsole) {
      frameListeners.add(onFrame);
      if (onConsole) consoleListeners.add(onConsole);
      return () => {
        frameListeners.delete(onFrame);
        if (onConsole) consoleListeners.delete(onConsole);
      };
    },
    get received() {
      return { mcuToModule: taps.mcu.listener.bytes, moduleToMcu: taps.module.listener.bytes, console: con?.listener.bytes ?? 0 };
    },
    get trouble() {
      const c = con?.listener.vanished;
      return taps.vanished ?? (c ? `${con!.listener.path}: ${c}` : undefined);
    },
  };
  return { mcu, close: async () => void (await Promise.all([taps.close(), con?.close()])) };
}

/** The station's probe when the command opened it without one: any use is the command's bug, said so. */
function absentProbe(station: string): Probe {
  return new Proxy({} as Probe, {
    get(_target, prop) {
      // Not a thenable: awaiting it by mistake must not call the trap below.
      if (prop === 'then') return undefined;
      throw new InternalError(`the probe was not opened for this command (probe.${String(prop)})`, { station, expected: 'openStation(…, { probe: true })' });
    },
  });
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Another station of this process still has its lock there.
  }
}

function describeProbe(hw: HardwareStationConfig): string {
  const i = hw.probe.interface;
  switch (i.kind) {
    case 'stlink':
      return `ST-Link${i.serial ? ` ${i.serial}` : ''}, ${hw.probe.target}`;
    case 'cmsis-dap':
      return `CMSIS-DAP${i.serial ? ` ${i.serial}` : ''} (${i.transport ?? 'swd'}), ${hw.probe.target}`;
    case 'remote_bitbang':
      return `remote_bitbang ${i.host}:${i.port}, ${hw.probe.target}`;
    case 'buspirate':
      return `Bus Pirate ${i.port} (${i.transport ?? 'jtag'}), ${hw.probe.target}`;
  }
}

/** Runs the undo steps newest first; every one runs even when an earlier one fails. */
async function runUndo(undo: { what: string; run: () => Promise<void> }[]): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const u of undo.splice(0).reverse()) {
    try {
      await u.run();
    } catch (err) {
      errors.push(err);
    }
  }
  return errors;
}

function closeError(station: string, errors: unknown[]): Error {
  return new InfrastructureError('could not bring every part of the station to its safe state', {
    station,
    expected: 'power lines at their safe levels, OpenOCD stopped, ports closed, the sim stopped, the lock released',
    seen: errors.map((e) => (e instanceof Error ? e.message.split('\n')[0] : String(e))).join('; '),
    cause: errors[0],
  });
}

/** Rig errors already carry the station; others are re-made (same kind) or wrapped so the report says which. */
function named(station: string, err: unknown): unknown {
  if (isRigError(err)) {
    if (err.station !== undefined) return err;
    const Ctor = err instanceof AbortedError ? AbortedError : ERROR_BY_KIND[err.kind];
    return new Ctor(err.summary, { station, expected: err.expected, seen: err.seen, lastLines: err.lastLines, cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new InfrastructureError(`could not open the station: ${msg}`, { station, cause: err });
}

const ERROR_BY_KIND = {
  infrastructure: InfrastructureError,
  protocol: ProtocolError,
  firmware: FirmwareError,
  internal: InternalError,
  config: ConfigError,
  usage: ConfigError,
} as const;

/**
 * Waits until the module answers `AT`, within its boot time (it may have just been powered); the answer tells
 * the port whether the module echoes. Each attempt is bounded by the command timeout; a `RDY` ends the
 * attempt in flight at once, so a module that finishes booting is asked again immediately.
 */
async function awaitModule(at: AtPort, station: string, t: ProtocolTimeouts, signal: AbortSignal | undefined): Promise<void> {
  const deadline = performance.now() + t.bootMs + t.marginMs;
  let last: unknown;
  for (;;) {
    const left = Math.floor(deadline - performance.now());
    if (left <= 0) break;
    try {
      await at.command('AT', { timeoutMs: Math.min(t.commandMs, left), signal, expected: 'OK' });
      return;
    } catch (err) {
      if (err instanceof AtPortError || err instanceof AbortedError || err instanceof AtCommandError) throw err;
      last = err;
    }
  }
  throw new InfrastructureError(`the module on ${at.path} does not answer AT`, {
    station,
    expected: `OK to AT within ${t.bootMs + t.marginMs} ms (boot time + margin)`,
    seen: last instanceof Error ? last.message.split('\n')[0] : 'no answer',
    lastLines: isRigError(last) ? last.lastLines : [],
  });
}

const PARTS: Record<'cycle' | 'reset', Record<StationPart, PowerRole>> = {
  cycle: { module: 'moduleSupply', target: 'targetSupply' },
  reset: { module: 'moduleReset', target: 'targetReset' },
};

export function stationPowerFor(station: string, lines: PowerLines, roles: Partial<Record<PowerRole, string>>): StationPower {
  const lineFor = (action: 'cycle' | 'reset', part: StationPart) => {
    const role = PARTS[action][part];
    const lineName = roles[role];
    if (lineName === undefined) {
      throw new ConfigError(`no ${part} ${action === 'cycle' ? 'supply' : 'reset'} line to ${action === 'cycle' ? 'power-cycle' : 'reset'} the ${part}`, {
        station,
        expected: `power.roles.${role} naming one of the station's lines (${[...lines.lines.keys()].join(', ') || 'none configured'})`,
        seen: 'no such role',
      });
    }
    return lines.line(lineName);
  };
  return {
    lines,
    can: (action, part) => roles[PARTS[action][part]] !== undefined,
    cycle: async (part, offMs, o?: TimedOptions) => cycle(lineFor('cycle', part), offMs, o),
    reset: async (part, ms, o?: TimedOptions) => pulse(lineFor('reset', part), ms, o),
  };
}

/**
 * Closes the station when the process is told to stop, then lets the signal do what it would have done:
 * like rig/power's safe-state registry, the last handler to finish re-raises it when no other listener is
 * left, so the process still ends "killed by SIGTERM" and other cleanup (the power lines' own) composes.
 */
function onSignals(close: () => Promise<void>): { stopWatching(): void; detach(): void } {
  const handlers = new Map<string, () => void>();
  let fired = false;
  for (const sig of SIGNALS) {
    const handler = (): void => {
      if (fired) return;
      fired = true;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, SIGNAL_CLOSE_BOUND_MS)));
      void Promise.race([close().catch((err: unknown) => process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)), bound]).finally(() => {
        clearTimeout(timer);
        detach();
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    };
    handlers.set(sig, handler);
    process.on(sig, handler);
  }
  const detach = (): void => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
    handlers.clear();
  };
  return {
    // While close() runs after a signal, the handlers stay until it is done, so the signal's re-raise waits.
    stopWatching: () => {
      if (!fired) detach();
    },
    detach,
  };
}
