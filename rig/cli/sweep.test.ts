// `rig sweep`: its options (checked before anything starts), and a short sweep on the virtual station that
// its --budget stops after the calibration and --resume finishes, from the compiled CLI as a user runs it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { parseSweepState } from '../sota/sweep/index.ts';
import { parseActions, parseBudget, parseWindows } from './commands/sweep.ts';
import { UsageError } from './output.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-sweep-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rig(args: string[], timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/rig.js', ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_NO_STALE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rig ${args.join(' ')}: no end within ${timeoutMs} ms\n${out.stderr}`));
    }, timeoutMs);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, ...out });
    });
  });
}

describe('rig sweep: options', () => {
  test('actions in the fault model’s canonical text; a default per mode; a bad one named', () => {
    expect(parseActions('power-cycle-target, reset-target=50', 'dut')).toEqual(['power-cycle-target=500', 'reset-target=50']);
    expect(parseActions(undefined, 'dut')).toEqual(['power-cycle-target=500']);
    expect(parseActions(undefined, 'proxy')).toEqual(['power-cycle-module=500']);
    expect(() => parseActions('zap-target', 'dut')).toThrow(UsageError);
  });

  test('windows by name, in timeline order; all by default; an unknown one lists those of the mode', () => {
    expect(parseWindows('trial,swap', 'dut')).toEqual(['swap', 'trial']);
    expect(parseWindows(undefined, 'proxy')).toEqual(['plan', 'download', 'reads', 'install', 'program', 'report']);
    expect(() => parseWindows('program', 'dut')).toThrow(/no window program in dut mode/);
  });

  test('--budget in minutes, decimals allowed', () => {
    expect(parseBudget('90')).toBe(5_400_000);
    expect(parseBudget('0.5')).toBe(30_000);
    expect(parseBudget(undefined)).toBeUndefined();
    expect(() => parseBudget('0')).toThrow(UsageError);
    expect(() => parseBudget('1h')).toThrow(UsageError);
  });

  test('a command line that cannot run is refused before any station starts (exit 64, or 2 for a missing sweep)', async () => {
    const cases: [string[], number, RegExp][] = [
      [['sweep', 'virtual', '--from', '1_0_0'], 64, /which package/],
      [['sweep', 'virtual', '--package', 'full_2_0_0'], 64, /which release/],
      [['sweep', 'virtual', '--package', 'full_2_0_0', '--from', '1_0_0', '--points', '3', '--every', '50'], 64, /--points or --every/],
      [['sweep', 'virtual', '--package', 'full_2_0_0', '--from', '1_0_0', '--window', 'swap,nope'], 64, /no window nope/],
      [['sweep', 'virtual', '--package', 'full_9_9_9', '--from', '1_0_0'], 64, /no package full_9_9_9/],
      [['sweep', 'virtual', '--mode', 'proxy', '--package', 'full_2_0_0', '--from', '1_0_0', '--bootloader', 'vbl-1.0'], 64, /--bootloader is for dut mode/],
      [['sweep', '--resume', tmp, '--package', 'full_2_0_0'], 64, /cannot change a sweep being resumed/],
      [['sweep', '--resume', path.join(tmp, 'nothing-here')], 2, /no sweep in/],
    ];
    for (const [args, code, message] of cases) {
      const r = await rig(args);
      expect([args.join(' '), r.status]).toEqual([args.join(' '), code]);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/calibrating/);
    }
  });
});

describe('rig sweep on the virtual station', () => {
  test('--budget stops it cleanly after the calibration (exit 75); --resume runs the point and completes it (exit 0)', { timeout: 240_000 }, async () => {
    const config = path.join(tmp, 'rig.config.json');
    writeFileSync(config, JSON.stringify({ stations: { quick: { kind: 'virtual', timeScale: 0.25 } } }));
    const dir = path.join(tmp, 'sweep');
    // A second: the calibration runs (it always does), then no point fits.
    const first = await rig(['sweep', 'quick', '--config', config, '--package', 'full_2_0_0', '--from', '1_0_0', '--window', 'install', '--points', '1', '--no-next', '--calibrate', '1', '--budget', '0.02', '-o', dir], 180_000);
    expect(first.status, first.stderr).toBe(75);
    expect(first.stdout).toMatch(/sweep stopped: budget: the budget \(\d+ s\) would be exceeded by the next point/);
    expect(first.stdout).toContain(`rig sweep --resume ${dir}`);
    const stopped = parseSweepState(readFileSync(path.join(dir, 'sweep.json'), 'utf8'), 'sweep.json');
    expect(stopped.status).toBe('stopped-budget');
    // The install window: from =3 taken to the boot line; one point in its middle, aimed from the latest mark
    // before it — after-update3 itself, or a console line the loaded rig read after =3 was taken.
    expect(stopped.points.map((p) => ({ window: p.window, fault: p.fault }))).toEqual([{ window: 'install', fault: expect.stringMatching(/^(after-update3|console=.*)(\+\d+ms)?:power-cycle-target=500$/) }]);
    const install = stopped.calibration!.timeline.windows.find((w) => w.name === 'install')!;
    expect(stopped.points[0]!.at).toBeGreaterThanOrEqual(install.start);
    expect(stopped.points[0]!.at).toBeLessThanOrEqual(install.end);
    expect(stopped.calibration?.timeline.windows.map((w) => w.name)).toContain('install');
    const second = await rig(['sweep', '--resume', dir, '--config', config, '--json'], 180_000);
    expect(second.status, second.stderr).toBe(0);
    const out = JSON.parse(second.stdout) as { status: string; matrix: { rows: { window: string; points: number }[] }; failing: unknown[]; timing: { pointMs: number } };
    expect(out.status).toBe('complete');
    expect(out.failing).toEqual([]);
    expect(out.matrix.rows.reduce((n, r) => n + r.points, 0)).toBe(1);
    expect(out.timing.pointMs).toBeGreaterThan(0);
    expect(readFileSync(path.join(dir, 'heat-strip.svg'), 'utf8')).toMatch(/^<svg/);
    expect(parseSweepState(readFileSync(path.join(dir, 'sweep.json'), 'utf8'), 'sweep.json').sessions).toHaveLength(2);
  });
});
