// The two commands a farm's CI jobs use around a night: `rig power <station> safe` (the clean-up step) on
// a bench described over a running virtual station (real Firmata relays on a pty, a real OpenOCD left
// behind on the station's probe), and `rig inventory` (identity read live, last health).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runProcess, type Ran } from '../../scripts/testing/run.ts';
import { buildProbeArgs } from '../probe/args.ts';
import type { HardwareStationConfig } from '../config/schema.ts';
import type { Inventory } from '../station/inventory.ts';
import { isStationOpenocd, type SafeReport } from '../station/safe.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-farm-cli-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rig(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Ran> {
  return runProcess(process.execPath, ['bin/rig.js', ...args], { cwd: root, env: { RIG_CONFIG: '', RIG_NO_STALE_CHECK: '1', ...env }, timeoutMs });
}

const exited = (c: ChildProcess): Promise<void> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((resolve) => c.once('close', () => resolve())));

describe('rig power <station> safe', () => {
  let sim: ChildProcess | undefined;
  let admin = '';
  let config = '';
  let bench: Record<string, unknown>;

  beforeAll(async () => {
    sim = spawn(process.execPath, ['bin/rig.js', 'sim', '--json'], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('rig sim printed no JSON line within 30 s')), 30_000);
      createInterface({ input: sim!.stdout! }).once('line', (l) => (clearTimeout(timer), resolve(l)));
    });
    const s = JSON.parse(line) as { module: { port: string }; jtag: { host: string; port: number; target: string }; admin: { url: string }; firmata: { port: string; pins: Record<string, number>; contacts: Record<string, 'NO' | 'NC'> } };
    admin = s.admin.url;
    const relay = (rail: string, safe: 'on' | 'off') => ({ kind: 'firmata', board: 'relays', pin: s.firmata.pins[rail], relay: s.firmata.contacts[rail] ?? 'NC', safe });
    bench = {
      module: { port: s.module.port },
      probe: { interface: { kind: 'remote_bitbang', host: s.jtag.host, port: s.jtag.port }, target: s.jtag.target, workAreaSize: 0 },
      layout: { slotAddress: 0x0800_0000, slotSize: 65536 },
      // The target's supply is off when the bench is left alone (its safe level), the module's on.
      power: { boards: { relays: { port: s.firmata.port, connectTimeoutMs: 10_000 } }, lines: { 'module-vbat': relay('moduleVbat', 'on'), 'target-vdd': relay('targetVdd', 'off') } },
    };
    config = path.join(tmp, 'bench.json');
    writeFileSync(config, JSON.stringify({ stations: { bench: bench } }));
  }, 40_000);

  afterAll(async () => {
    if (!sim) return;
    sim.kill('SIGINT');
    await exited(sim);
  });

  const target = async (): Promise<{ powered: boolean; debuggerConnected: boolean }> => (await fetch(`${admin}/target`)).json() as Promise<{ powered: boolean; debuggerConnected: boolean }>;

  test('every line goes to its safe level and an OpenOCD left on the station’s probe is stopped; nothing else is opened', { timeout: 60_000 }, async () => {
    // What a cancelled job leaves behind: OpenOCD still attached to the station's probe.
    const args = buildProbeArgs((bench as unknown as HardwareStationConfig).probe).args;
    const stray = spawn('openocd', [...args, '-c', 'gdb_port disabled', '-c', 'telnet_port disabled', '-c', 'tcl_port disabled', '-c', 'init'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the stray OpenOCD did not get to init within 20 s')), 20_000);
        createInterface({ input: stray.stderr! }).on('line', (l) => {
          if (/Examination succeed|tap\/device found|Listening on|halted/i.test(l)) {
            clearTimeout(timer);
            resolve();
          }
        });
        stray.once('close', (code) => (clearTimeout(timer), reject(new Error(`the stray OpenOCD exited (${code}) before init`))));
      });
      expect((await target()).debuggerConnected).toBe(true);

      const r = await rig(['power', 'bench', 'safe', '--config', config, '--json'], { RIG_LOCK_DIR: path.join(tmp, 'locks') });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as SafeReport;
      expect(report.lines).toEqual([{ name: 'module-vbat', level: 'on' }, { name: 'target-vdd', level: 'off' }]);
      expect(report.openocd).toEqual([{ pid: stray.pid, stopped: true, how: 'stopped (SIGTERM)' }]);
      await exited(stray);
      const t = await target();
      expect(t.powered, 'the target supply at its safe level (off)').toBe(false);
      expect(t.debuggerConnected, 'no OpenOCD on the probe any more').toBe(false);
    } finally {
      stray.kill('SIGKILL');
    }
    // In words, for the CI log.
    const text = await rig(['power', 'bench', 'safe', '--config', config], { RIG_LOCK_DIR: path.join(tmp, 'locks') });
    expect(text.stdout).toContain('bench/target-vdd: off (its safe level)');
    expect(text.stdout).toContain('bench: safe — 2 line(s) at their safe level, no OpenOCD running for its probe');
  });

  test('an OpenOCD is the station’s only with the station’s probe arguments (another serial is another probe)', () => {
    const hw = { probe: { interface: { kind: 'stlink', serial: 'AAA111' }, target: 'stm32f4x' } } as unknown as HardwareStationConfig;
    const mine = ['openocd', '-c', 'tcl_port 0', ...buildProbeArgs(hw.probe).args, '-c', 'init'];
    const other = ['openocd', ...buildProbeArgs({ ...hw.probe, interface: { kind: 'stlink', serial: 'BBB222' } }).args];
    expect(isStationOpenocd(mine, hw)).toBe(true);
    expect(isStationOpenocd(other, hw)).toBe(false);
    expect(isStationOpenocd(['openocd', '-f', 'board/st_nucleo_f4.cfg'], hw)).toBe(false);
  });

  test('a virtual station has nothing left to switch; an unknown station is a config error (2)', async () => {
    const v = await rig(['power', 'virtual', 'safe']);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^virtual: safe — a virtual station lives inside the rig process that started it/);
    const none = await rig(['power', 'bench-77', 'safe']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no station "bench-77"');
  });
});

describe('rig inventory', () => {
  test('each station’s identity read live, with its last health check on this host, as a table and as JSON', { timeout: 60_000 }, async () => {
    const state = path.join(tmp, 'state');
    mkdirSync(path.join(state, 'health'), { recursive: true });
    writeFileSync(path.join(state, 'health', 'virtual.json'), JSON.stringify({ station: 'virtual', host: 'pi-4', at: '2026-12-07T01:31:00.000Z', ok: true, summary: 'passed', steps: [] }));
    const env = { RIG_STATE_DIR: state, ALLURE_HOST_NAME: 'pi-4' };
    const json = await rig(['inventory', '--json'], env);
    expect(json.status, json.stderr).toBe(0);
    const inv = JSON.parse(json.stdout) as Inventory;
    expect(inv).toMatchObject({ host: 'pi-4', rig: expect.stringMatching(/^\d+\.\d+\.\d+/), node: process.version });
    expect(inv.stations).toHaveLength(1);
    const v = inv.stations[0]!;
    expect(v).toMatchObject({ station: 'virtual', kind: 'virtual', host: 'pi-4', health: { ok: true, at: '2026-12-07T01:31:00.000Z' } });
    expect(v.identity?.module).toMatchObject({ model: expect.stringMatching(/^Quectel /), imei: expect.stringMatching(/^\d{15}$/), quecthing: expect.stringMatching(/^\d+\.\d+/) });
    expect(v.identity?.target.idcode).toMatch(/^0x[0-9a-f]{8}$/);
    expect(v.identity?.probe).toMatchObject({ adapter: 'Bus Pirate (jtag)', openocd: expect.stringContaining('0.12') });
    expect(v.sim).toEqual(expect.arrayContaining(['--time-scale', '--target']));
    const table = await rig(['inventory'], env);
    expect(table.stdout.split('\n')[1]).toMatch(/^station\s+module\s+firmware\s+IMEI\s+QuecThing\s+probe\s+target IDCODE\s+last health$/);
    expect(table.stdout).toMatch(new RegExp(`virtual\\s+Quectel \\S+\\s+\\S+\\s+${v.identity!.module.imei}\\s+.*Bus Pirate \\(jtag\\)\\s+\\S+ ${v.identity!.target.idcode}\\s+passed 2026-12-07 01:31`));
  });

  test('a station that cannot be read is listed with why, and the exit code says so (69)', { timeout: 60_000 }, async () => {
    const config = path.join(tmp, 'unplugged.json');
    writeFileSync(config, JSON.stringify({ stations: { 'bench-9': { module: { port: path.join(tmp, 'no-such-tty') }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: 0x0800_0000, slotSize: 65536 } } } }));
    const r = await rig(['inventory', '--config', config, '--json'], { RIG_STATE_DIR: path.join(tmp, 'state-empty'), RIG_LOCK_DIR: path.join(tmp, 'locks') });
    expect(r.status).toBe(69);
    const inv = JSON.parse(r.stdout) as Inventory;
    expect(inv.stations).toEqual([expect.objectContaining({ station: 'bench-9', kind: 'hardware', error: expect.objectContaining({ kind: 'infrastructure', message: expect.stringContaining('no-such-tty') }) })]);
    expect(inv.stations[0]!.identity).toBeUndefined();
  });
});
