// `rig doctor [station]`: each part of a station checked on its own, so one broken part does not hide the
// others, and a table of what passed, what failed and what to do about it. Unlike openStation (which stops
// at the first failure), every check runs that can; checks that depend on a failed one are skipped.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AtCommandError, AtPortError } from '../../at/errors.ts';
import { AtPort } from '../../at/port.ts';
import { loadConfig, resolveSecret, type LoadedConfig } from '../../config/load.ts';
import type { DeclaredPlan, HardwareStationConfig, StationConfig } from '../../config/schema.ts';
import { sha256Hex } from '../../images/digest.ts';
import { loadManifest, type FirmwareSet } from '../../images/manifest.ts';
import { AbortedError, isRigError } from '../../errors.ts';
import { openPowerLines, type PowerLines } from '../../power/open.ts';
import type { PowerLineConfig } from '../../power/config.ts';
import { gpioReleaseBehaviour, type GpioReleaseBehaviour } from '../../power/gpio-release.ts';
import { buildProbeArgs } from '../../probe/args.ts';
import { Probe, type TargetInfo } from '../../probe/probe.ts';
import { QuecThing } from '../../quecthing/quecthing.ts';
import { defaultLockDir, lockStation } from '../../station/lock.ts';
import { resolveTimeouts } from '../../station/timeouts.ts';
import { gpioKernelChecks } from '../../power/gpio-kernel.ts';
import { attachVirtualStation, startVirtualStation, type VirtualStation } from '../../station/virtual.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, paint, parse, table, UsageError } from '../output.ts';
import { attachFile, runCommand, wasInterrupted, withInterrupt } from '../station.ts';
import { didYouMean } from '../suggest.ts';
import { checkMcuSide, mcuReset } from './doctor-mcu.ts';

export type Status = 'ok' | 'fail' | 'warn' | 'skip';

export interface Check {
  station: string;
  check: string;
  status: Status;
  detail: string;
  /** What to do about a failure or warning. */
  fix?: string;
}

const firstLine = (err: unknown): string => {
  if (isRigError(err)) {
    // The tool's own last error line (OpenOCD's "Error: open failed") says more than an exit code.
    const said = [...err.lastLines].reverse().find((l) => /error|fail/i.test(l));
    const seen = err.seen !== undefined && !err.summary.includes(err.seen) ? `(seen ${err.seen})` : '';
    return [err.summary, seen, said ? `— ${said.trim()}` : ''].filter(Boolean).join(' ');
  }
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
};

/** `openocd --version`: it prints "Open On-Chip Debugger 0.12.0" on stderr. Bounded. */
function openocdVersion(bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['--version'], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const text = `${stdout}\n${stderr}`;
      const m = /Open On-Chip Debugger\s+(\S+)/.exec(text);
      if (m) resolve(m[1]!);
      else reject(err ?? new Error(`unexpected answer: ${text.trim().slice(0, 120)}`));
    });
  });
}

/**
 * A warn row for every gpio line that is unexported on close while this kernel returns released outputs to
 * inputs (strict gpiod): its relay driver floats after a clean close, so the part it powers may lose power.
 */
export function gpioReleaseChecks(station: string, lines: Readonly<Record<string, PowerLineConfig>>, kernel: GpioReleaseBehaviour): Check[] {
  if (kernel.strictGpiod !== true) return [];
  return Object.entries(lines)
    .filter(([, l]) => l.kind === 'gpio' && l.unexportOnClose)
    .map(([ln, l]) => ({
      station,
      check: `line ${ln} after close`,
      status: 'warn' as const,
      detail: `unexportOnClose on a kernel where a released output becomes an input, so the line floats after close (${kernel.evidence.join('; ')})`,
      fix: `remove unexportOnClose from stations.${station}.power.lines.${ln} (the line then stays driven at its ${l.safe} level), unless another program must take it over`,
    }));
}

class Checker {
  readonly checks: Check[] = [];
  constructor(readonly station: string) {}

  add(check: string, status: Status, detail: string, fix?: string): void {
    this.checks.push({ station: this.station, check, status, detail, ...(fix !== undefined ? { fix } : {}) });
  }

  /** Runs one check; a throw is a failure with `fix`. Returns the value, or undefined when it failed. */
  async run<T>(check: string, body: () => Promise<{ value: T; detail: string; warn?: string }>, fix: string): Promise<T | undefined> {
    try {
      const r = await body();
      this.add(check, r.warn ? 'warn' : 'ok', r.detail, r.warn);
      return r.value;
    } catch (err) {
      this.add(check, 'fail', firstLine(err), fix);
      return undefined;
    }
  }

  skip(check: string, why: string): void {
    this.add(check, 'skip', why);
  }
}

/**
 * Each declared plan's package, resolved as `rig upgrade --plan` and the flow will resolve it: a manifest
 * package by name, or by sha256 (in the manifest, or the named file next to the config, as qualify
 * --write-packages leaves it), with the versions the plan declares. A plan that names nothing the rig can
 * deliver would pass every other check and fail only at upgrade time.
 */
export function checkDeclaredPlan(plan: DeclaredPlan, firmware: FirmwareSet, configDir: string | undefined): { ok: true; detail: string } | { ok: false; detail: string; fix: string } {
  const where = `plan "${plan.name}"`;
  const versions = (v: { version: string; sourceVersion: string | undefined }, what: string) =>
    v.version === plan.targetVersion && (v.sourceVersion ?? '') === plan.sourceVersion
      ? undefined
      : { ok: false as const, detail: `${where}: ${what} is ${v.sourceVersion ?? 'full'} → ${v.version}, the plan says ${plan.sourceVersion || 'full'} → ${plan.targetVersion}`, fix: 'make sourceVersion/targetVersion say what the package delivers (the module announces them in 10700)' };
  if (typeof plan.package === 'string') {
    if (!firmware.packages.has(plan.package)) {
      return { ok: false, detail: `${where}: no package ${plan.package} in ${firmware.manifestPath}`, fix: `name one of ${[...firmware.packages.keys()].join(', ')}, or give { file, sha256 } of the file uploaded to Developer Center` };
    }
    const pkg = firmware.package(plan.package);
    return versions(pkg, `package ${pkg.name}`) ?? { ok: true, detail: `${where}: ${pkg.name} (sha256 ${pkg.sha256.slice(0, 12)}…)` };
  }
  const sha = plan.package.sha256;
  const known = [...firmware.packages.values()].find((p) => p.sha256 === sha);
  if (known) return versions(known, `package ${known.name}`) ?? { ok: true, detail: `${where}: ${known.name} by sha256 ${sha.slice(0, 12)}…` };
  const file = configDir !== undefined ? path.resolve(configDir, plan.package.file) : undefined;
  if (file && existsSync(file)) {
    const seen = sha256Hex(readFileSync(file));
    if (seen === sha) return { ok: true, detail: `${where}: ${plan.package.file} (sha256 ${sha.slice(0, 12)}…, not in the manifest: built by qualify, so run by npm run qualify, not by rig upgrade --plan)` };
    return { ok: false, detail: `${where}: ${file} has sha256 ${seen}, the plan says ${sha}`, fix: 'the file changed after the plan was created: upload it again and update the plan, or restore the file' };
  }
  return {
    ok: false,
    detail: `${where}: no package with sha256 ${sha} (not in ${firmware.manifestPath}${file ? `, no file ${file}` : ''})`,
    fix: `add the package to the manifest, or keep the uploaded file ${plan.package.file} next to the config (qualify --write-packages writes it)`,
  };
}

async function checkStation(name: string, entry: StationConfig, config: LoadedConfig, signal: AbortSignal, attach?: string): Promise<Check[]> {
  const c = new Checker(name);
  const undo: (() => Promise<void>)[] = [];
  try {
    // The lock: a bench is shared between processes; the virtual station is private to each process.
    // One attached to (rig sim) is shared: its lock lives next to its attach file.
    let attached: (VirtualStation & { lockDir: string }) | undefined;
    if (entry.kind === 'virtual' && attach !== undefined) {
      attached = await c.run('virtual station attached', () => {
        const a = attachVirtualStation(entry, attach, { station: name });
        return Promise.resolve({ value: a, detail: `rig sim's station (pid ${a.pid}), module ${a.config.module.port}, admin ${a.adminUrl}` });
      }, 'start it with rig sim (it prints the RIG_SIM=… to use), or unset RIG_SIM to check a station of doctor\'s own');
      if (!attached) return c.checks;
    }
    const privateDir = entry.kind === 'virtual' && !attached ? path.join(defaultLockDir(), `doctor-${process.pid}`) : undefined;
    const lock = await c.run(
      'station lock',
      async () => {
        const l = await lockStation(name, privateDir ? { dir: privateDir } : attached ? { dir: attached.lockDir } : {});
        return { value: l, detail: entry.kind === 'virtual' && !attached ? 'free (each process has its own virtual station)' : `free (${l.file})` };
      },
      'another run holds this station (the message names it): wait for it, or stop that process; nothing else to clear, the lock dies with its holder',
    );
    if (lock) {
      undo.push(async () => {
        await lock.release();
        if (privateDir) rmSync(privateDir, { recursive: true, force: true });
      });
    }

    let hw: HardwareStationConfig | undefined;
    if (attached) {
      hw = attached.config;
    } else if (entry.kind === 'virtual') {
      const sim = await c.run<VirtualStation>(
        'virtual station starts',
        async () => {
          const v = await startVirtualStation(entry, { station: name, signal });
          return { value: v, detail: `sim pid ${v.pid}, module ${v.config.module.port}, admin ${v.adminUrl}` };
        },
        'run `rig sim` to see the simulator log; `npm run setup` installs socat and openocd and builds dist/',
      );
      if (!sim) return c.checks;
      undo.push(() => sim.close());
      hw = sim.config;
    } else {
      hw = entry;
      const m = hw.module;
      if (m.productSecret !== undefined) {
        const ref = m.productSecret;
        await c.run(
          'ProductSecret',
          () => {
            resolveSecret(ref, { station: name, key: `stations.${name}.module.productSecret`, dotenv: config.dotenv });
            return Promise.resolve({ value: true, detail: `${ref.env} is set (not shown)` });
          },
          `export ${ref.env}=<the ProductSecret from Developer Center → product details>, or put ${ref.env}=… in an untracked .env next to the config`,
        );
      }
    }
    const timeouts = resolveTimeouts(hw.timeouts);

    // The module's serial port.
    const port = hw.module.port;
    const exists = existsSync(port);
    const byId = port.startsWith('/dev/serial/by-id/') || entry.kind === 'virtual';
    if (exists) {
      c.add('serial port exists', byId ? 'ok' : 'warn', port, byId ? undefined : 'name the port by /dev/serial/by-id/…: ttyUSB numbers move between boots and replugs');
    } else {
      c.add('serial port exists', 'fail', `${port} does not exist`, `check the module's USB cable and power (rig power ${name} <module supply line> on); list ports with ls -l /dev/serial/by-id/ and put the AT interface's path in stations.${name}.module.port`);
    }
    let at: AtPort | undefined;
    if (exists) {
      at = await c.run(
        'serial port opens',
        async () => {
          const p = new AtPort({ station: name, path: port, baudRate: hw.module.baudRate, commandTimeoutMs: timeouts.commandMs });
          await p.open();
          return { value: p, detail: `${hw.module.baudRate} baud` };
        },
        `another process may hold it (lsof ${port}; stop it or its rig run); the user must be in the dialout group (sudo usermod -aG dialout $USER, then log in again)`,
      );
      if (at) {
        const opened = at;
        undo.push(() => opened.close());
      }
    } else c.skip('serial port opens', 'no port');

    if (at) {
      const port_ = at;
      const qt = new QuecThing(port_);
      undo.push(() => Promise.resolve(qt.dispose()));
      const o = { timeoutMs: timeouts.commandMs + timeouts.marginMs, signal };
      const answers = await c.run(
        'module answers AT',
        async () => {
          // It may be booting: ask again until its boot time (plus margin) is over, each ask bounded.
          const deadline = performance.now() + timeouts.bootMs + timeouts.marginMs;
          for (;;) {
            try {
              const t0 = performance.now();
              await port_.command('AT', { timeoutMs: timeouts.commandMs, signal, expected: 'OK' });
              return { value: true, detail: `OK in ${Math.round(performance.now() - t0)} ms` };
            } catch (err) {
              // A module still booting stays silent or answers with its RDY: ask again (as openStation does). An
              // ERROR, a vanished port or an abort is the answer.
              if (signal.aborted || performance.now() >= deadline || err instanceof AtCommandError || err instanceof AtPortError || err instanceof AbortedError) throw err;
            }
          }
        },
        `the module does not answer on ${port}: is it powered (rig power ${name} … on) and is this its AT interface (EC200U: if02)? Is module.baudRate (${hw.module.baudRate}) its baud rate?`,
      );
      if (answers) {
        await c.run(
          'module identity (ATI)',
          async () => {
            const id = await qt.identify(o);
            return { value: id, detail: `${id.manufacturer} ${id.model}${id.revision ? ` ${id.revision}` : ''}` };
          },
          'the module answered AT but not ATI: an unusual firmware; check it is a Quectel module',
        );
        await c.run(
          'module firmware (AT+QGMR)',
          async () => {
            const rev = await qt.firmwareRevision(o);
            return { value: rev, detail: rev };
          },
          'AT+QGMR failed: update the module firmware to a QuecThing (QuecOpen/standard AT with QuecThing) build',
        );
        await c.run(
          'QuecThing (AT+QIOTINFO?)',
          async () => {
            const items = await qt.info(o);
            const detail = items.map((i) => `${i.item}=${i.value}`).join(', ');
            return { value: items, detail: detail || 'answered, no items', ...(items.length === 0 ? { warn: 'the module reported no QuecThing version items' } : {}) };
          },
          'the module has no QuecThing AT commands: flash a module firmware with QuecThing (Quectel support), or check the model',
        );
      } else {
        for (const s of ['module identity (ATI)', 'module firmware (AT+QGMR)', 'QuecThing (AT+QIOTINFO?)']) c.skip(s, 'no answer to AT');
      }
    } else {
      for (const s of ['module answers AT', 'module identity (ATI)', 'module firmware (AT+QGMR)', 'QuecThing (AT+QIOTINFO?)']) c.skip(s, 'port not open');
    }

    // OpenOCD and the probe.
    let probeRef: Probe | undefined;
    let targetRef: TargetInfo | undefined;
    let linesRef: PowerLines | undefined;
    const bin = hw.probe.openocd;
    const version = await c.run(
      'openocd installed',
      async () => {
        const v = await openocdVersion(bin);
        return { value: v, detail: `${bin} ${v}`, ...(/^0\.(\d+)/.exec(v) && Number(/^0\.(\d+)/.exec(v)![1]) < 12 ? { warn: 'OpenOCD 0.12 or later is what the rig is tested with (Debian bookworm has it)' } : {}) };
      },
      `install it: sudo apt-get install openocd (npm run setup does), or set stations.${name}.probe.openocd to its path`,
    );
    if (version) {
      const probe = await c.run(
        'probe connects',
        async () => {
          const p = await Probe.open({ ...buildProbeArgs(hw.probe), station: name, openocd: bin, timeouts: hw.probe.timeouts }, { signal });
          return { value: p, detail: describeInterface(hw) };
        },
        entry.kind === 'virtual'
          ? 'the simulator JTAG server did not answer OpenOCD: run `rig sim` and look at its log'
          : hw.probe.interface.kind === 'buspirate'
            ? `check the adapter's USB cable and serial port (probe.interface.port; ls -l /dev/serial/by-id/) and that its firmware has the OpenOCD binary mode; only one program may use it at a time`
            : `check the probe's USB cable and its serial number (probe.interface.serial; lsusb -v | grep iSerial); only one program may use it at a time`,
      );
      if (probe) {
        undo.push(() => probe.close());
        probeRef = probe;
        targetRef = await c.run(
          'probe examines the target',
          async () => {
            const t = await probe.examine({ signal });
            return { value: t, detail: `${t.core}, device 0x${(t.deviceId & 0xfff).toString(16)} rev 0x${(t.deviceId >>> 16).toString(16)}, ${t.flashSizeKiB} KiB flash (${t.flash.driver} at 0x${t.flash.base.toString(16)}), ${t.state}` };
          },
          `check the SWD wiring (SWDIO, SWCLK, GND, NRST) and that the target is powered (rig power ${name} <target supply line> on)`,
        );
      } else c.skip('probe examines the target', 'probe not connected');
    } else {
      c.skip('probe connects', 'no openocd');
      c.skip('probe examines the target', 'no openocd');
    }

    // Power lines and Firmata boards.
    if (entry.kind !== 'virtual') {
      for (const [board, b] of Object.entries(hw.power.boards)) {
        // As for the module: an Arduino's ttyACM number moves between boots and replugs.
        if (!b.port.startsWith('/dev/serial/by-id/')) c.add(`Firmata board ${board} port`, 'warn', b.port, `name the board's port by /dev/serial/by-id/… (ls -l /dev/serial/by-id/) in stations.${name}.power.boards.${board}.port`);
      }
    }
    const lineNames = Object.keys(hw.power.lines);
    if (lineNames.length === 0) {
      c.add('power lines', 'warn', 'none configured', 'faults that power-cycle or reset a part need power.lines and power.roles');
    } else {
      const lines = await c.run<PowerLines>(
        'power lines open',
        async () => {
          const l = await openPowerLines({ boards: hw.power.boards, lines: hw.power.lines }, { station: name, signal });
          const boards = Object.keys(hw.power.boards);
          return { value: l, detail: `${lineNames.length} lines${boards.length ? `, Firmata board${boards.length > 1 ? 's' : ''} ${boards.join(', ')} answered` : ''}` };
        },
        `Firmata: the board's port by /dev/serial/by-id and StandardFirmata flashed on it; GPIO: the chip label and line (ls /sys/class/gpio; gpioinfo) and write access to /sys/class/gpio`,
      );
      if (lines) {
        undo.push(() => lines.close());
        linesRef = lines;
        for (const ln of lineNames) {
          await c.run(
            `line ${ln}`,
            async () => {
              const level = await lines.line(ln).get();
              const roles = Object.entries(hw.power.roles)
                .filter(([, v]) => v === ln)
                .map(([k]) => k);
              return { value: level, detail: `reads ${level ? 'on' : 'off'}${roles.length ? ` (${roles.join(', ')})` : ''}` };
            },
            `the line did not answer: check its board and pin in stations.${name}.power.lines.${ln}`,
          );
        }
      } else for (const ln of lineNames) c.skip(`line ${ln}`, 'lines not open');
      if (Object.values(hw.power.lines).some((l) => l.kind === 'gpio' && l.unexportOnClose)) {
        for (const w of gpioReleaseChecks(name, hw.power.lines, gpioReleaseBehaviour())) c.add(w.check, w.status, w.detail, w.fix);
      }
      // What the kernel must give the sysfs GPIO driver (deprecated upstream, still in Raspberry Pi OS).
      if (Object.values(hw.power.lines).some((l) => l.kind === 'gpio')) {
        for (const k of gpioKernelChecks()) c.add(k.check, k.status, k.detail, k.fix);
      }
    }

    // The MCU side (dut mode): layout, taps, console.
    if (hw.mcu) {
      const probe = probeRef;
      const base = hw.mcu.layout.bootloader.address;
      const firmwarePresent = probe && targetRef ? async () => !(await probe.readRegion(base, 8, { signal })).every((b) => b === 0xff) : undefined;
      await checkMcuSide(c, { station: name, hw, timeouts, signal, target: targetRef, reset: mcuReset(probeRef, linesRef, hw.power.roles.targetReset, signal), firmwarePresent, undo });
    }

    // Plans.
    const plans = hw.plans;
    if (plans.kind === 'api') c.add('plans', 'ok', `created through the API at ${plans.url}`);
    else if (plans.plans.length === 0) c.add('plans', 'warn', 'no plans declared', 'create upgrade plans in Developer Center (OTA upgrade → upgrade plan) and declare each under plans.plans (see README: preparing Developer Center)');
    else {
      c.add('plans', 'ok', `${plans.plans.length} declared: ${plans.plans.map((p) => p.name).join('; ')}`);
      const firmware = await c.run<FirmwareSet>('manifest', async () => {
        const f = await loadManifest();
        return { value: f, detail: `${f.packages.size} packages in ${f.manifestPath}` };
      }, 'npm run fixtures rebuilds fixtures/ and its manifest');
      for (const plan of plans.plans) {
        if (!firmware) {
          c.skip(`plan ${plan.name}`, 'no manifest');
          continue;
        }
        const r = checkDeclaredPlan(plan, firmware, config.source ? path.dirname(config.source) : undefined);
        if (r.ok) c.add(`plan ${plan.name}`, 'ok', r.detail);
        else c.add(`plan ${plan.name}`, 'fail', r.detail, r.fix);
      }
    }
    return c.checks;
  } finally {
    for (const u of undo.reverse()) await u().catch(() => undefined);
  }
}

function describeInterface(hw: HardwareStationConfig): string {
  const i = hw.probe.interface;
  if (i.kind === 'remote_bitbang') return `remote_bitbang ${i.host}:${i.port} (${hw.probe.target})`;
  if (i.kind === 'buspirate') return `Bus Pirate on ${i.port}, ${i.transport ?? 'jtag'} (${hw.probe.target})`;
  return `${i.kind}${i.serial ? ` serial ${i.serial}` : ' (first found: set interface.serial with more than one probe)'} (${hw.probe.target})`;
}

const SYMBOL: Record<Status, string> = { ok: '✔ ok', fail: '✘ FAIL', warn: '! warn', skip: '– skip' };

export function formatChecks(checks: readonly Check[], out: NodeJS.WriteStream): string {
  const p = paint(out);
  const color = (s: Status, t: string): string => (s === 'ok' ? p.green(t) : s === 'fail' ? p.red(t) : s === 'warn' ? p.yellow(t) : p.dim(t));
  const rows = checks.map((c) => [c.station, c.check, color(c.status, SYMBOL[c.status]), c.detail]);
  const text = [table(['station', 'check', 'result', 'detail'], rows, p)];
  const todo = checks.filter((c) => c.fix !== undefined && (c.status === 'fail' || c.status === 'warn'));
  if (todo.length > 0) {
    text.push('', p.bold('What to do:'));
    for (const c of todo) text.push(`  ${color(c.status, c.status === 'fail' ? '✘' : '!')} ${c.station}: ${c.check}: ${c.fix}`);
  }
  return text.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS });
  const json = values.json === true;
  return runCommand(json, async () => {
    if (positionals.length > 1) throw new UsageError('rig doctor: one station at most', { expected: 'rig doctor [station]', seen: positionals.join(' ') });
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    const names = positionals.length === 1 ? positionals : Object.keys(config.stations);
    for (const n of names) {
      if (!Object.hasOwn(config.stations, n)) throw new UsageError(`no station "${n}" in the config${didYouMean(n, Object.keys(config.stations))}`, { expected: `one of ${Object.keys(config.stations).join(', ')}`, seen: n });
    }
    const checks: Check[] = [];
    await withInterrupt(async (signal) => {
      for (const n of names) {
        checks.push({ station: n, check: 'config', status: 'ok', detail: config.source ? path.relative(process.cwd(), config.source) || config.source : 'built-in (no config file)' });
        checks.push(...(await checkStation(n, config.stations[n]!, config, signal, attachFile(n, config, values.attach))));
      }
    });
    if (wasInterrupted()) throw new AbortedError('doctor interrupted');
    const failed = checks.filter((c) => c.status === 'fail');
    if (json) process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, checks }, null, 2)}\n`);
    else {
      const p = paint(process.stdout);
      process.stdout.write(`${formatChecks(checks, process.stdout)}\n\n${failed.length === 0 ? p.green('all checks passed') : p.red(`${failed.length} check${failed.length > 1 ? 's' : ''} failed`)}\n`);
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.failure;
  });
}
