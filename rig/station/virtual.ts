// The one file in rig/ that knows about the virtual station. It starts `sim/main.ts` as a child process with
// the station's options and a private run directory, reads the one JSON line the sim prints, and turns it
// into an ordinary hardware station entry: the module on a pty path, a Firmata relay board with the sim's
// pins as power lines, an OpenOCD probe (a Bus Pirate on a pty), the admin API as the plan source. From there on the
// rig drives it through its hardware code paths. No sim outlives the rig: the sim exits when its stdin (a
// pipe from this process) closes, which the kernel does even when the rig is killed outright, or when its
// stdout/stderr pipes break; and where util-linux's setpriv exists it also gets SIGTERM from the kernel when
// the rig dies (a parent-death signal), which reaches it even if something else still holds its stdin open.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hardwareStationSchema, type HardwareStationConfig, type StationConfig, type VirtualStationConfig } from '../config/schema.ts';
import { AbortedError, InfrastructureError } from '../errors.ts';
import { findSetpriv } from '../probe/openocd.ts';
import { scratchPrefix } from '../scratch.ts';

/** What `sim/main.ts` prints once everything is up. */
interface SimLine {
  admin: { url: string };
  module: { port: string; imei: string; baud: number };
  firmata: {
    port: string;
    pins: { moduleVbat: number; moduleResetN: number; targetVdd: number; targetNrst: number };
    contacts: Partial<Record<'moduleVbat' | 'moduleResetN' | 'targetVdd' | 'targetNrst', 'NO' | 'NC'>>;
  };
  jtag: { host: string; port: number; target: 'stm32f1x' | 'stm32f4x'; buspirate: string };
  /** The virtual MCU (docs/virtual-mcu.md §8); layout null when the flash is too small for one. */
  mcu?: {
    taps?: { mcuToModule: string; moduleToMcu: string; baud: number };
    console?: { port: string; baud: number };
    layout: SimMcuLayout | null;
    why?: string;
    bootRecord?: 'vmcu-1' | 'mcuboot' | 'none';
  };
}

interface SimRegion {
  address: number;
  size: number;
}

interface SimMcuLayout {
  flashBase?: number;
  swapUnit?: number;
  bootloader: SimRegion;
  record: SimRegion[];
  slotA: SimRegion;
  slotB: SimRegion;
  scratch?: SimRegion;
}

/** The sim's MCU as a bench's `mcu` entry: only when it has a layout and its taps (what dut mode needs). */
function mcuFromSim(mcu: SimLine['mcu']): HardwareStationConfig['mcu'] | undefined {
  if (!mcu?.layout || !mcu.taps) return undefined;
  const l = mcu.layout;
  const region = (r: SimRegion) => ({ address: r.address, size: r.size });
  return {
    taps: { mcuToModule: mcu.taps.mcuToModule, moduleToMcu: mcu.taps.moduleToMcu, baudRate: mcu.taps.baud > 0 ? mcu.taps.baud : 115200 },
    ...(mcu.console ? { console: { port: mcu.console.port, baudRate: mcu.console.baud > 0 ? mcu.console.baud : 115200 } } : {}),
    layout: {
      bootloader: region(l.bootloader),
      slotA: region(l.slotA),
      slotB: region(l.slotB),
      record: l.record.map(region),
      ...(l.scratch ? { scratch: region(l.scratch) } : {}),
      ...(l.swapUnit ? { swapUnit: l.swapUnit } : {}),
    },
    bootRecord: mcu.bootRecord ?? 'none',
  };
}

export interface VirtualStation {
  /** The station as hardware would describe it. */
  readonly config: HardwareStationConfig;
  /** The sim's process id. */
  readonly pid: number;
  readonly imei: string;
  readonly adminUrl: string;
  /** The sim's last log lines (stderr), newest last. */
  logTail(lines?: number): string[];
  /** Settles when the sim process has exited. */
  readonly exited: Promise<void>;
  /** Stops the sim (its ptys, sockets and socat go with it) and removes the run directory. Idempotent. */
  close(): Promise<void>;
}

const STOP_BOUND_MS = 5_000;
const LOG_LINES = 400;

/** How to run the sim: the compiled `dist/sim/main.js` next to a compiled rig, else the sources through tsx. */
function simCommand(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('../../sim/main.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] };
  const ts = fileURLToPath(new URL('../../sim/main.ts', import.meta.url));
  if (!existsSync(ts)) {
    throw new InfrastructureError('the virtual station is not installed', { station: 'virtual', expected: `${js} or ${ts}`, seen: 'neither exists' });
  }
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return { file: ts, execArgv: ['--import', pathToFileURL(tsx).href] };
}

function simArgs(v: VirtualStationConfig, runDir: string): string[] {
  return [...simSettings(v), '--run-dir', runDir, '--remove-run-dir', '--exit-on-stdin-close'];
}

/** The sim options a virtual station's settings become: what makes two virtual stations behave differently. */
export function simSettings(v: VirtualStationConfig): string[] {
  const args = ['--baud', String(v.baud), '--time-scale', String(v.timeScale), '--target', v.target];
  const opt = (flag: string, value: string | number | undefined): void => {
    if (value !== undefined) args.push(flag, String(value));
  };
  opt('--seed', v.seed);
  opt('--imei', v.imei);
  opt('--module-free-space', v.moduleFreeSpace);
  opt('--download-rate', v.downloadRate);
  opt('--boot-ms', v.bootMs);
  opt('--crc', v.crc);
  opt('--flash-image', v.flashImage === undefined ? undefined : path.resolve(v.flashImage));
  opt('--flash-size-kib', v.flashSizeKiB);
  opt('--mcu', v.mcu === undefined ? undefined : v.mcu ? 'on' : 'off');
  args.push(...v.simArgs);
  return args;
}

/**
 * The command that runs `node …args`: through `setpriv --pdeathsig TERM` when `setpriv` is given. TERM, not
 * KILL: the sim's handler then removes its ptys and stops its socat children before it exits. The signal is
 * tied to the spawning thread: a station opened in a worker thread stops its sim when that thread ends.
 */
export function simSpawnCommand(node: string, args: readonly string[], setpriv: string | null): { command: string; args: string[] } {
  return setpriv ? { command: setpriv, args: ['--pdeathsig', 'TERM', '--', node, ...args] } : { command: node, args: [...args] };
}

/** The power and reset lines of every virtual station, by the names a bench would give them. */
export const VIRTUAL_LINES = ['module-vbat', 'module-reset', 'target-vdd', 'target-nrst'] as const;

/** The sim's answer as the hardware entry a bench with the same wiring would have. */
export function stationFromSim(v: VirtualStationConfig, sim: SimLine): HardwareStationConfig {
  const { pins, contacts } = sim.firmata;
  const relay = (rail: keyof typeof pins): { kind: 'firmata'; board: string; pin: number; relay: 'NO' | 'NC'; safe: 'on' } => ({
    kind: 'firmata',
    board: 'relays',
    pin: pins[rail],
    relay: contacts[rail] ?? 'NC',
    safe: 'on',
  });
  return hardwareStationSchema.parse({
    kind: 'hardware',
    description: v.description,
    component: v.component,
    module: { port: sim.module.port, baudRate: sim.module.baud > 0 ? sim.module.baud : 115200, echo: v.module.echo },
    power: {
      boards: { relays: { port: sim.firmata.port, connectTimeoutMs: 10_000 } },
      lines: {
        'module-vbat': relay('moduleVbat'),
        'module-reset': relay('moduleResetN'),
        'target-vdd': relay('targetVdd'),
        'target-nrst': relay('targetNrst'),
      },
      roles: { moduleSupply: 'module-vbat', moduleReset: 'module-reset', targetSupply: 'target-vdd', targetReset: 'target-nrst' },
    },
    // The sim's STM32 sits behind two adapters; the Bus Pirate's serial port makes one round trip per ~128
    // JTAG scans where remote_bitbang makes one per scan. The target cfg's work area: the virtual core
    // carries out OpenOCD's own flash loader and CRC routine.
    probe: {
      interface: { kind: 'buspirate', port: sim.jtag.buspirate },
      target: sim.jtag.target,
      openocd: v.openocd,
    },
    layout: v.layout,
    timeouts: { ...v.timeouts, timeScale: v.timeScale },
    plans: { kind: 'api', url: sim.admin.url },
    mcu: mcuFromSim(sim.mcu),
  });
}

/**
 * The config with the station `name`, when it is a virtual one that does not say, given its virtual MCU: dut
 * mode needs the MCU side, and a virtual station is the proxy bench by default. A bench, or a virtual
 * station that says `mcu: false`, is left as it is (dut mode then says what is missing).
 */
export function withVirtualMcu<C extends { stations: Record<string, StationConfig> }>(config: C, name: string): C {
  const entry = Object.hasOwn(config.stations, name) ? config.stations[name] : undefined;
  if (entry?.kind !== 'virtual' || entry.mcu !== undefined) return config;
  return { ...config, stations: { ...config.stations, [name]: { ...entry, mcu: true } } };
}

/** Starts the virtual station's sim and describes it as a hardware station. */
export async function startVirtualStation(v: VirtualStationConfig, opts: { station?: string; signal?: AbortSignal } = {}): Promise<VirtualStation> {
  const station = opts.station ?? 'virtual';
  if (opts.signal?.aborted) throw new AbortedError('virtual station not started: aborted', { station, cause: opts.signal.reason });
  const { file, execArgv } = simCommand();
  const runDir = mkdtempSync(scratchPrefix('virtual'));
  const run = simSpawnCommand(process.execPath, [...execArgv, file, ...simArgs(v, runDir)], findSetpriv());
  // A session of its own: a terminal's Ctrl-C or hang-up reaches the rig alone, which then closes the
  // station through the sim's parts (relays, ports) before it stops the sim.
  const child = spawn(run.command, run.args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
    detached: true,
  });
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    log.push(l);
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  });
  const tail = (n = 15): string[] => log.slice(-n);
  // 'exit', not 'close': a grandchild that inherited the sim's stderr must not hold up the stop.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If this process goes away without closing the station, the sim must not stay behind.
  const onExit = (): void => {
    child.stdin?.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', onExit);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin?.end(); // --exit-on-stdin-close: the sim closes every part and exits 0
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, STOP_BOUND_MS).unref())]);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      process.removeListener('exit', onExit);
      rmSync(runDir, { recursive: true, force: true });
    })());

  try {
    const sim = await readSimLine(child, v.startTimeoutMs, station, tail, opts.signal);
    const config = stationFromSim(v, sim);
    // Only the first line is the answer; later output is drained so the sim never blocks on a full pipe.
    child.stdout!.resume();
    return { config, pid: child.pid!, imei: sim.module.imei, adminUrl: sim.admin.url, logTail: tail, exited, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function readSimLine(child: ChildProcess, timeoutMs: number, station: string, tail: (n?: number) => string[], signal: AbortSignal | undefined): Promise<SimLine> {
  return new Promise<SimLine>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const cleanup = (): void => {
      clearTimeout(timer);
      lines.removeListener('line', onLine);
      child.removeListener('close', onClose);
      child.removeListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
      lines.close();
    };
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onLine = (line: string): void => {
      let parsed: SimLine;
      try {
        parsed = JSON.parse(line) as SimLine;
        if (!parsed.module?.port || !parsed.admin?.url || !parsed.firmata?.port || !parsed.jtag?.buspirate) throw new Error('missing module, admin, firmata or jtag (with its buspirate port)');
      } catch (err) {
        fail(
          new InfrastructureError('the virtual station answered something unexpected', {
            station,
            expected: 'one JSON line with module, admin, firmata and jtag',
            seen: `${line.slice(0, 200)} (${(err as Error).message})`,
            lastLines: tail(),
          }),
        );
        return;
      }
      cleanup();
      resolve(parsed);
    };
    const onClose = (code: number | null, sig: NodeJS.Signals | null): void => {
      // 'close' (not 'exit'): stderr has been read to its end, so the tail holds the reason.
      fail(
        new InfrastructureError('the virtual station exited before it was ready', {
          station,
          expected: 'its JSON line on stdout',
          seen: sig ? `killed by ${sig}` : `exit code ${code}`,
          lastLines: tail(),
        }),
      );
    };
    const onError = (err: Error): void =>
      fail(new InfrastructureError(`could not start the virtual station: ${err.message}`, { station, expected: `${process.execPath} to run sim/main`, cause: err }));
    const onAbort = (): void => fail(new AbortedError('virtual station start aborted', { station, cause: signal!.reason, lastLines: tail() }));
    const timer = setTimeout(
      () => fail(new InfrastructureError(`the virtual station did not start within ${timeoutMs} ms`, { station, expected: 'its JSON line on stdout', seen: 'no line', lastLines: tail() })),
      timeoutMs,
    );
    lines.on('line', onLine);
    child.once('close', onClose);
    child.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- a virtual station that is already running (`rig sim`) -------------------------------------------

/** What `rig sim` writes next to its sim, for other commands to attach to (RIG_SIM=<file>, --attach <file>). */
export const ATTACH_FORMAT = 'sota-rig/running-virtual-station';

export interface AttachFile {
  format: typeof ATTACH_FORMAT;
  /** The sim's process id: attaching checks it is alive. */
  pid: number;
  startedAt: string;
  /** The settings it runs with that the station's timeouts depend on. */
  settings: { timeScale: number };
  sim: SimLine;
}

export function attachFileContent(pid: number, timeScale: number, sim: unknown): AttachFile {
  return { format: ATTACH_FORMAT, pid, startedAt: new Date().toISOString(), settings: { timeScale }, sim: sim as SimLine };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The running virtual station that `file` (written by `rig sim`) describes, as a station entry. Closing it
 * leaves the sim running: it belongs to `rig sim`, so flash contents, module state and plans carry from one
 * command to the next, as on a bench. Its lock lives next to the file, so two commands never drive it at once.
 */
export function attachVirtualStation(v: VirtualStationConfig, file: string, opts: { station?: string } = {}): VirtualStation & { lockDir: string } {
  const station = opts.station ?? 'virtual';
  const fix = 'start it with `rig sim` (it prints the RIG_SIM=… to use), or unset RIG_SIM / leave out --attach to start a station of your own';
  let parsed: AttachFile;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as AttachFile;
  } catch (err) {
    throw new InfrastructureError(`no running virtual station at ${file}`, { station, expected: `the file rig sim writes (${fix})`, seen: (err as Error).message });
  }
  if (parsed?.format !== ATTACH_FORMAT || !parsed.sim?.module?.port || !parsed.sim?.jtag?.port || !Number.isInteger(parsed.pid)) {
    throw new InfrastructureError(`${file} does not describe a running virtual station`, { station, expected: `a ${ATTACH_FORMAT} file written by rig sim`, seen: JSON.stringify(parsed).slice(0, 120) });
  }
  if (!alive(parsed.pid) || !existsSync(parsed.sim.module.port)) {
    throw new InfrastructureError('the virtual station to attach to is not running', { station, expected: `rig sim's simulator (pid ${parsed.pid}) and its module port ${parsed.sim.module.port}: ${fix}`, seen: alive(parsed.pid) ? 'the module port is gone' : `no process ${parsed.pid}` });
  }
  const settings = { ...v, timeScale: parsed.settings?.timeScale ?? v.timeScale, target: parsed.sim.jtag.target };
  return {
    config: stationFromSim(settings, parsed.sim),
    pid: parsed.pid,
    imei: parsed.sim.module.imei,
    adminUrl: parsed.sim.admin.url,
    logTail: () => [`attached to the running virtual station of ${file}: its log is in rig sim's terminal`],
    exited: new Promise<void>(() => undefined),
    close: () => Promise.resolve(),
    lockDir: path.dirname(file),
  };
}
