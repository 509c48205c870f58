// The one file in rig/ that knows about the virtual station. It starts `sim/main.ts` as a child process with
// the station's options and a private run directory, reads the one JSON line the sim prints, and turns it
// into an ordinary hardware station entry: the module on a pty path, a Firmata relay board with the sim's
// pins as power lines, an OpenOCD probe (a Bus Pirate on a pty), the admin API as the plan source. From there on the
// rig drives it through its hardware code paths. No sim outlives the rig: the sim exits when its stdin (a
// pipe from this process) closes, which the kernel does even when the rig is killed outright, or when its
// stdout/stderr pipes break; and where util-linux's setpriv exists it also gets SIGTERM from the kernel when
// the rig dies (a parent-death signal), which reaches it even if something else still holds its stdin open.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hardwareStationSchema, type HardwareStationConfig, type VirtualStationConfig } from '../config/schema.ts';
import { AbortedError, InfrastructureError } from '../errors.ts';
import { findSetpriv } from '../probe/openocd.ts';

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
  const args = ['--baud', String(v.baud), '--time-scale', String(v.timeScale), '--target', v.target, '--run-dir', runDir, '--remove-run-dir', '--exit-on-stdin-close'];
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
  });
}

/** Starts the virtual station's sim and describes it as a hardware station. */
export async function startVirtualStation(v: VirtualStationConfig, opts: { station?: string; signal?: AbortSignal } = {}): Promise<VirtualStation> {
  const station = opts.station ?? 'virtual';
  if (opts.signal?.aborted) throw new AbortedError('virtual station not started: aborted', { station, cause: opts.signal.reason });
  const { file, execArgv } = simCommand();
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'sota-rig-virtual-'));
  const run = simSpawnCommand(process.execPath, [...execArgv, file, ...simArgs(v, runDir)], findSetpriv());
  const child = spawn(run.command, run.args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
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
