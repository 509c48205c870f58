// openStation against the virtual station, end to end: the real sim process, socat ptys, the Firmata relay
// board through johnny-five, the real openocd through the sim's Bus Pirate, the admin API. Nothing is mocked.
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AtPortError } from '../at/errors.ts';
import { parseConfig } from '../config/load.ts';
import { AbortedError, ConfigError, InfrastructureError } from '../errors.ts';
import { loadManifest } from '../images/manifest.ts';
import { protectedLines } from '../power/safe-state.ts';
import type { Recorder } from '../sota/recorder.ts';
import { lockStation } from './lock.ts';
import { openStation, stationPowerFor, type OpenedStation } from './open.ts';
import { listeningSockets } from '../probe/testing/procs.ts';
import { commandLine, descendants, isGone, sessionOf } from './testing/procs.ts';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fast = (extra: Record<string, unknown> = {}) => parseConfig({ stations: { virtual: { kind: 'virtual', timeScale: 0.05, ...extra } } });
const lockDir = (): string => tmp.make('station-lock-');

const open: OpenedStation[] = [];
/** Holder processes a test started: one that failed midway must not outlive it (SIGTERM: it cleans up). */
const holders: number[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const pid of holders.splice(0)) if (!isGone(pid)) process.kill(pid, 'SIGTERM');
});

/** Resolves on the module's next RDY; rejects after `ms`. */
function nextReboot(s: OpenedStation, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no RDY within ${ms} ms; last lines: ${JSON.stringify(s.module.at.transcript().slice(-5))}`));
    }, ms);
    const off = s.module.at.on('reboot', () => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

describe('openStation("virtual")', () => {
  test('AT answers, the probe examines, a module power cycle through the relay board gives RDY; close leaves nothing behind', async () => {
    const dir = lockDir();
    const before = new Set(descendants(process.pid));
    const station = await openStation('virtual', { config: fast(), lockDir: dir });
    open.push(station);
    const started = descendants(process.pid).filter((p) => !before.has(p));
    const cmds = started.map(commandLine);
    expect(cmds.some((c) => /sim\/main\.(ts|js)/.test(c))).toBe(true);
    expect(cmds.some((c) => /^socat /.test(c))).toBe(true);
    expect(started).toContain(station.probe.pid);
    // What another local user could connect to: the sim's admin API and target only on loopback, OpenOCD nothing.
    expect(listeningSockets(station.probe.pid)).toEqual([]);
    const sim = started.find((p) => /sim\/main\.(ts|js)/.test(commandLine(p)))!;
    expect(listeningSockets(sim).length).toBeGreaterThan(0);
    for (const l of listeningSockets(sim)) expect(l).toMatch(/^tcp 0100007F:|^unix /);

    expect(station.name).toBe('virtual');
    expect(station.info).toMatchObject({ name: 'virtual', baudRate: 115200, target: 'stm32f1x', probe: expect.stringMatching(/^Bus Pirate \/\S+\/probe-buspirate \(jtag\), stm32f1x$/) });
    expect(station.component).toBe('STM32');
    expect(station.layout).toEqual({ slotAddress: 0x0800_0000, slotSize: 64 * 1024 });
    expect(station.plans.kind).toBe('api');
    // The sim's module echoes by default; the station saw it rather than assuming it.
    expect(station.module.echo).toBe(true);
    expect(station.module.productInfo?.productKey).toBeTruthy();
    // Scaled protocol timers, unscaled command bound.
    expect(station.timeouts).toMatchObject({ commandMs: 2000, urlWaitMs: 1500, readInactivityMs: 3000, downloadNotifyMs: 250, marginMs: 1000 });

    const r = await station.module.at.command('ATI', { prefix: 'all' });
    expect(r.lines[0]).toBe('Quectel');
    const target = await station.probe.examine();
    expect(target.core).toMatch(/^Cortex-M3/);
    expect(target.flash.base).toBe(0x0800_0000);

    expect(station.power.can('cycle', 'module')).toBe(true);
    expect(station.power.can('reset', 'target')).toBe(true);
    const rdy = nextReboot(station, 10_000);
    await station.power.cycle('module', 100);
    await rdy;
    await station.module.qt.at();
    // The relay line is back on: the module VBAT line reads "on".
    expect(await station.power.lines.line('module-vbat').get()).toBe(true);

    await station.close();
    open.pop();
    expect(station.closed).toBe(true);
    for (const pid of started) expect({ pid, cmd: commandLine(pid), gone: isGone(pid) }).toMatchObject({ gone: true });
    expect(protectedLines().filter((l) => l.startsWith('virtual/'))).toEqual([]);
    await station.close(); // idempotent
    const again = await lockStation('virtual', { dir });
    await again.release();
  });

  test('a second open of the same station is refused, naming the holder, and starts nothing', async () => {
    const dir = lockDir();
    const first = await openStation('virtual', { config: fast(), lockDir: dir });
    open.push(first);
    const running = descendants(process.pid);
    const err = await openStation('virtual', { config: fast(), lockDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).station).toBe('virtual');
    expect((err as Error).message).toMatch(new RegExp(`^virtual: station is in use by pid ${process.pid} \\(.+@.+, ".*"\\) since \\d{4}-`));
    expect(descendants(process.pid).sort()).toEqual(running.sort());
    // The first holder is unaffected.
    await first.module.qt.at();
  });

  test('without a lock directory, a virtual station is locked per process', async () => {
    const first = await openStation('virtual', { config: fast() });
    open.push(first);
    await expect(openStation('virtual', { config: fast() })).rejects.toThrow(/in use by pid/);
    await first.close();
    open.pop();
    expect(existsSync(first.lock.file)).toBe(false);
  });

  test('the ProductSecret never reaches the transcript, even in lines that do not look like productinfo', async () => {
    const secret = 'S3cretOfThisStation';
    const station = await openStation('virtual', { config: fast({ productSecret: secret }), lockDir: lockDir() });
    open.push(station);
    const seen: string[] = [];
    const off = station.module.at.on('transcript', (e) => seen.push(e.text));
    // The secret where no pattern looks for it (a productinfo line garbled in its name, another command): the
    // module echoes both and answers ERROR, so the secret is sent, echoed and quoted in the error.
    const garbled = [`AT+QIOTINFO="${secret}"`, `AT+QIOTCFG="pr0ductinfo","${station.module.productInfo!.productKey}","${secret}"`];
    for (const command of garbled) {
      const err = await station.module.at.command(command).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).not.toContain(secret);
    }
    station.module.at.note(`a note quoting ${secret}`);
    off();
    const all = [...seen, ...station.module.at.transcript().map((e) => e.text)];
    expect(all.filter((l) => l.includes('QIOTINFO=')).length, 'the commands and their echoes are in the transcript').toBeGreaterThanOrEqual(2);
    expect(all.filter((l) => l.includes(secret))).toEqual([]);
  });

  test('module.reopen() closes and reopens the AT port; the module still answers', async () => {
    const station = await openStation('virtual', { config: fast(), lockDir: lockDir() });
    open.push(station);
    const notes: string[] = [];
    const off = station.module.at.on('transcript', (e) => notes.push(e.text));
    await station.module.reopen();
    off();
    expect(notes.some((n) => /closed/.test(n))).toBe(true);
    expect(notes.some((n) => /open$/.test(n))).toBe(true);
    await station.module.qt.at();
  });

  test('a missing OpenOCD binary is a config error before anything is locked or started', async () => {
    const dir = lockDir();
    const before = new Set(descendants(process.pid));
    const err = await openStation('virtual', { config: fast({ openocd: '/nonexistent/openocd' }), lockDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).station).toBe('virtual');
    expect((err as Error).message).toMatch(/OpenOCD not found: \/nonexistent\/openocd[\s\S]*stations\.virtual\.openocd/);
    expect(descendants(process.pid).filter((p) => !before.has(p))).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a part that fails midway (an OpenOCD that exits at once): what was opened is closed, the lock released, the station named', async () => {
    const dir = lockDir();
    const before = new Set(descendants(process.pid));
    const err = await openStation('virtual', { config: fast({ openocd: '/bin/false' }), lockDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).station).toBe('virtual');
    expect((err as Error).message).toContain('OpenOCD stopped before its Tcl server was ready');
    for (const pid of descendants(process.pid).filter((p) => !before.has(p))) expect({ pid, cmd: commandLine(pid), gone: isGone(pid) }).toMatchObject({ gone: true });
    expect(protectedLines().filter((l) => l.startsWith('virtual/'))).toEqual([]);
    const lock = await lockStation('virtual', { dir });
    await lock.release();
  });

  test('a sim that cannot start: InfrastructureError with its stderr tail', async () => {
    const dir = lockDir();
    const err = await openStation('virtual', { config: fast({ simArgs: ['--download-rate', 'fast'] }), lockDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(/^virtual: the virtual station exited before it was ready/);
    expect((err as InfrastructureError).lastLines.join('\n')).toContain('--download-rate must be a number');
    const lock = await lockStation('virtual', { dir });
    await lock.release();
  });

  /**
   * Starts a process that opens the station; resolves once it holds it, with what it started. `job`: in a
   * process group of its own, as a shell starts a command, so that a signal to the group is what a
   * terminal's Ctrl-C or hang-up does. `parent`: under a shell that stays its parent (`…; true` is not
   * exec'd), as `npx` and `sh -c` are, so that killing that shell leaves the holder without its parent.
   */
  async function holder(dir: string, mode: 'hold' | 'crash' = 'hold', how: 'child' | 'job' | 'parent' = 'child') {
    const argv = ['--import', 'tsx', path.join(root, 'rig/station/testing/hold-station.ts'), 'virtual', dir, '0.05', mode];
    const [cmd, args] = how === 'parent' ? ['sh', ['-c', `"$0" "$@"; true`, process.execPath, ...argv]] : [process.execPath, argv];
    const child = spawn(cmd, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: how === 'job',
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const held = await new Promise<{ pid: number; procs: { pid: number; cmd: string }[]; openocd: number; lockFile: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the holder did not open the station within 25 s: ${stderr}`)), 25_000);
      createInterface({ input: child.stdout }).once('line', (l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l) as { pid: number; procs: { pid: number; cmd: string }[]; openocd: number; lockFile: string });
      });
      if (mode === 'hold') void exited.then((e) => reject(new Error(`the holder exited early (${JSON.stringify(e)}): ${stderr}`)));
    });
    holders.push(held.pid);
    expect(held.procs.some((p) => /sim\/main/.test(p.cmd))).toBe(true);
    expect(held.procs.some((p) => /^socat /.test(p.cmd))).toBe(true);
    expect(held.procs.map((p) => p.pid)).toContain(held.openocd);
    return { child, held, exited, stderr: () => stderr };
  }

  /** The lock is the kernel's: free once the holder's `flock` child has seen its pipe close. */
  async function lockFreed(dir: string): Promise<void> {
    let lock;
    for (let attempt = 0; attempt < 50 && !lock; attempt++) {
      lock = await lockStation('virtual', { dir }).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    }
    expect(lock).toBeDefined();
    await lock!.release();
  }

  /**
   * Resolves when the station's lock is free (flock(1) waiting on it: no polling), with the processes of
   * `procs` still running at that moment: the lock must be the last thing a stopping rig lets go of. The
   * lock holder itself (flock(1) and its child) is left out: its exit is what frees the lock, and a loaded
   * kernel can let the waiter take the lock while the holder has closed its files but is not yet a zombie.
   * allGone() checks it after.
   */
  function whenLockFreed(file: string, procs: { pid: number; cmd: string }[]): Promise<{ pid: number; cmd: string }[]> {
    const waiter = spawn('flock', ['--exclusive', '--wait', '30', file, 'true'], { stdio: 'ignore' });
    const others = procs.filter((p) => !p.cmd.includes(file));
    return new Promise((resolve, reject) => {
      waiter.once('error', reject);
      waiter.once('exit', (code) => (code === 0 ? resolve(others.filter((p) => !isGone(p.pid))) : reject(new Error(`flock --wait on ${file} exited ${code}`))));
    });
  }

  /** Every process the holder started is gone; the sim may still be stopping its parts for a moment. */
  async function allGone(procs: { pid: number; cmd: string }[]): Promise<void> {
    for (let attempt = 0; attempt < 50 && procs.some((p) => !isGone(p.pid)); attempt++) await new Promise((r) => setTimeout(r, 100));
    for (const p of procs) expect({ ...p, gone: isGone(p.pid) }).toMatchObject({ gone: true });
  }

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    test(`killed with ${sig}, a process holding the station leaves no sim, socat or openocd, and dies by the signal`, async () => {
      const dir = lockDir();
      const { child, held, exited, stderr } = await holder(dir);
      await expect(lockStation('virtual', { dir })).rejects.toThrow(new RegExp(`in use by pid ${held.pid}`));
      const t0 = Date.now();
      child.kill(sig);
      expect(await exited).toEqual({ code: null, signal: sig });
      // The station closed before the process died: nothing was left for the kernel to clean up.
      const left = held.procs.filter((p) => !isGone(p.pid));
      expect({ left, ms: Date.now() - t0, stderr: stderr() }).toMatchObject({ left: [] });
      await lockFreed(dir);
    });
  }

  for (const sig of ['SIGINT', 'SIGHUP'] as const) {
    test(`a terminal's ${sig} (sent to the whole foreground job) reaches only the rig: the station reaches its safe state, then the lock is freed`, async () => {
      const dir = lockDir();
      const { child, held, exited, stderr } = await holder(dir, 'hold', 'job');
      const helpers = held.procs.filter((p) => p.pid !== held.pid);
      // The sim, the lock holder and OpenOCD each lead a session of their own: no terminal signal reaches them.
      for (const p of helpers.filter((h) => /sim\/main|^flock |^openocd|setpriv/.test(h.cmd))) expect({ ...p, session: sessionOf(p.pid) }).toMatchObject({ session: p.pid });
      const freed = whenLockFreed(held.lockFile, helpers);
      process.kill(-child.pid!, sig);
      expect(await exited).toEqual({ code: null, signal: sig });
      expect(await freed).toEqual([]);
      expect(stderr()).not.toMatch(/could not bring every part|safe state/);
      expect(existsSync(`${held.lockFile}.owner.json`)).toBe(false);
      await allGone(held.procs);
    });
  }

  test('a rig whose parent dies (npx killed by a CI timeout) stops as on SIGTERM: safe state, then the lock, nothing left', async () => {
    const dir = lockDir();
    const { child, held, stderr } = await holder(dir, 'hold', 'parent');
    expect(held.pid).not.toBe(child.pid);
    const helpers = held.procs.filter((p) => p.pid !== held.pid);
    const freed = whenLockFreed(held.lockFile, helpers);
    // The holder's stdout is its own (sim, OpenOCD and the lock holder have pipes of their own): it ends with the holder.
    const holderGone = new Promise<void>((resolve) => child.stdout.once('end', resolve));
    child.kill('SIGKILL');
    expect(await freed).toEqual([]);
    await holderGone;
    // Its stdout closes as it exits, a moment before the kernel makes it a zombie (seen on a loaded run):
    // the rig's own end is waited for, within allGone's bound.
    await allGone([{ pid: held.pid, cmd: 'the station holder' }]);
    expect(stderr()).not.toMatch(/could not bring every part/);
    expect(existsSync(`${held.lockFile}.owner.json`)).toBe(false);
    await allGone(held.procs);
  });

  test('a rig killed outright leaves its OpenOCD scratch directory; the next station opened sweeps it, since its pid is gone', async () => {
    const { child, held, exited } = await holder(lockDir());
    const leftovers = (): string[] => readdirSync(os.tmpdir()).filter((n) => n.startsWith(`sota-rig-${held.pid}-`));
    child.kill('SIGKILL');
    await exited;
    await allGone(held.procs);
    // SIGKILL runs no exit handler: the sim (told by its parent-death signal) removes its own run directory, OpenOCD's stays.
    expect(leftovers()).toEqual([expect.stringMatching(/^sota-rig-\d+-openocd-/)]);
    open.push(await openStation('virtual', { config: fast(), lockDir: lockDir() }));
    expect(leftovers()).toEqual([]);
  });

  test('a process that dies of an uncaught exception leaves no sim, socat or openocd, and exits 1 with the error', async () => {
    const dir = lockDir();
    const { held, exited, stderr } = await holder(dir, 'crash');
    expect(await exited).toEqual({ code: 1, signal: null });
    expect(stderr()).toContain('a bug in the flow');
    await allGone(held.procs);
    await lockFreed(dir);
  });

  test('aborted while opening: AbortedError, and what was opened is closed', async () => {
    const dir = lockDir();
    const before = new Set(descendants(process.pid));
    const ctl = new AbortController();
    const steps: string[] = [];
    const recorder: Recorder = {
      step: (name, body) => {
        steps.push(name);
        // Abort just as OpenOCD starts: the sim, the relay board and the AT port are open by then.
        if (name.endsWith('probe (OpenOCD)')) ctl.abort(new Error('test timeout'));
        return body();
      },
      attach: () => undefined,
      measure: () => undefined,
    };
    const err = await openStation('virtual', { config: fast(), lockDir: dir, signal: ctl.signal, recorder }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).station).toBe('virtual');
    expect(steps).toEqual(['virtual: lock', 'virtual: start the virtual station', 'virtual: power lines', 'virtual: module AT port', 'virtual: module answers AT', 'virtual: probe (OpenOCD)']);
    for (const pid of descendants(process.pid).filter((p) => !before.has(p))) expect({ pid, cmd: commandLine(pid), gone: isGone(pid) }).toMatchObject({ gone: true });
    expect(protectedLines().filter((l) => l.startsWith('virtual/'))).toEqual([]);
    const lock = await lockStation('virtual', { dir });
    await lock.release();
  });
});

describe('when the equipment goes away under an open station', () => {
  test('the sim stops: AT, probe and relay fail as infrastructure errors naming the station; close() still finishes and says what could not be made safe', async () => {
    const dir = lockDir();
    const before = new Set(descendants(process.pid));
    const station = await openStation('virtual', { config: fast(), lockDir: dir });
    open.push(station);
    const started = descendants(process.pid).filter((p) => !before.has(p));
    const sim = started.find((p) => /sim\/main/.test(commandLine(p)))!;
    const vanished = new Promise<void>((resolve) => station.module.at.on('disconnected', () => resolve()));
    process.kill(sim, 'SIGTERM');
    await vanished;

    const at = await station.module.qt.at().catch((e: unknown) => e);
    expect(at).toBeInstanceOf(AtPortError);
    expect((at as Error).message).toMatch(/^virtual: port .*module-rig is not open/);
    const relay = await station.power.cycle('module', 10).catch((e: unknown) => e);
    expect(relay).toBeInstanceOf(InfrastructureError);
    expect((relay as Error).message).toMatch(/^virtual: module-vbat: [\s\S]*Firmata board "relays"/);

    open.pop();
    const closing = await station.close().catch((e: unknown) => e);
    expect(closing).toBeInstanceOf(InfrastructureError);
    expect((closing as Error).message).toMatch(/^virtual: could not bring every part of the station to its safe state/);
    expect((closing as Error).message).toContain('module-vbat');
    // The same answer on a second call, and nothing left behind.
    expect(await station.close().catch((e: unknown) => e)).toBe(closing);
    for (const pid of started) expect({ pid, cmd: commandLine(pid), gone: isGone(pid) }).toMatchObject({ gone: true });
    expect(protectedLines().filter((l) => l.startsWith('virtual/'))).toEqual([]);
    const lock = await lockStation('virtual', { dir });
    await lock.release();
  });

  test('OpenOCD killed under an open station: the probe says so naming the station, restarts, and close() is clean', async () => {
    const station = await openStation('virtual', { config: fast(), lockDir: lockDir() });
    open.push(station);
    const first = station.probe.pid;
    process.kill(first, 'SIGKILL');
    expect(await station.probe.exited).toMatchObject({ signal: 'SIGKILL' });
    const err = await station.probe.examine().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(/^virtual: OpenOCD is not running/);
    await station.probe.restart();
    expect((await station.probe.examine()).core).toMatch(/^Cortex-M3/);
    const second = station.probe.pid;
    open.pop();
    await station.close();
    expect([isGone(first), isGone(second)]).toEqual([true, true]);
  });
});

describe('station config errors', () => {
  test('an unknown station name lists the stations there are', async () => {
    const err = await openStation('bench-9', { config: fast() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/no station "bench-9" in the config[\s\S]*expected one of virtual; seen bench-9/);
  });

  test('a bench whose module port does not exist: AtPortError naming the station and port, lock released', async () => {
    const dir = lockDir();
    const config = parseConfig({
      stations: {
        'bench-x': {
          module: { port: '/dev/serial/by-id/usb-Quectel_missing-if02-port0' },
          probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
          layout: { slotAddress: 0x0800_0000, slotSize: 1024 },
        },
      },
    });
    const err = await openStation('bench-x', { config, lockDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtPortError);
    expect((err as Error).message).toMatch(/^bench-x: could not open \/dev\/serial\/by-id\/usb-Quectel_missing-if02-port0/);
    const lock = await lockStation('bench-x', { dir });
    await lock.release();
  });

  test('a station without a role: can() is false and the action is a ConfigError naming the role', async () => {
    const station = await openStation('virtual', { config: fast(), lockDir: lockDir() });
    open.push(station);
    // Same lines, no roles: what a bench config without `roles` gives.
    const bare = stationPowerFor('virtual', station.power.lines, {});
    expect(bare.can('cycle', 'module')).toBe(false);
    expect(bare.can('reset', 'target')).toBe(false);
    const err = await bare.reset('target', 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^virtual: no target reset line[\s\S]*power\.roles\.targetReset/);
  });
});

describe('the api plan source on the virtual station', () => {
  test('prepare uploads the package and creates a plan with what 10700/10701 must show; clear terminates it; cloud faults go through', async () => {
    const station = await openStation('virtual', { config: fast(), lockDir: lockDir() });
    open.push(station);
    const fw = await loadManifest();
    const full = fw.package('full_2_0_0');
    const plan = await station.plans.prepare({ component: 'STM32', package: full, minBattery: 20 });
    expect(plan.expected).toEqual({
      component: 'STM32',
      sourceVersion: '',
      targetVersion: '2_0_0',
      size: full.size,
      md5: full.md5,
      crc: full.crc32,
      sha256: full.sha256,
      minBattery: 20,
      minSignal: 0,
      // The sim's cloud computes CRC-32/IEEE by default; the plan says so, and the flow checks with it.
      crcAlgorithm: 'crc-32',
    });
    const delta = await station.plans.prepare({ component: 'STM32', package: fw.package('delta_1_0_0_to_2_0_0') });
    expect(delta.expected.sourceVersion).toBe('1_0_0');

    const admin = station.config.plans.kind === 'api' ? station.config.plans.url : '';
    const plans = async () => (await (await fetch(new URL('/plans', admin))).json()) as { id: string; state: string; minBattery: number; pushActively: boolean }[];
    expect((await plans()).map((p) => [p.id, p.state, p.minBattery, p.pushActively])).toEqual([
      [plan.id, 'active', 20, false],
      [delta.id, 'active', 0, false],
    ]);
    await station.plans.clear();
    expect((await plans()).map((p) => p.state)).toEqual(['terminated', 'terminated']);

    expect(station.plans.cloudFaults).toContain('corrupt-next-download');
    for (const kind of station.plans.cloudFaults) await station.plans.injectCloudFault(kind, kind === 'drop-uart-bytes' ? { count: 1, skip: 1_000_000 } : {});
    await expect(station.plans.injectCloudFault('power-off')).rejects.toThrow(/no cloud fault "power-off"/);
    // The API's own refusal comes back with its reason.
    const refused = await station.plans.injectCloudFault('drop-uart-bytes', {}).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InfrastructureError);
    expect((refused as Error).message).toMatch(/^virtual: plan API: injecting cloud fault drop-uart-bytes refused[\s\S]*seen 400 .*count/);
  });
});
