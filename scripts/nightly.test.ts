// npm run nightly as a farm runs it: sharding, a station list, a rerun of only what failed, the health
// check that keeps a broken station's suites from running, and the heartbeat. Spawned as the user runs it.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { runProcess, type Ran } from './testing/run.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-nightly-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function nightly(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runProcess(process.execPath, ['--import', 'tsx', 'scripts/nightly.mjs', ...args], { cwd: root, env: { RIG_CONFIG: '', ...env }, timeoutMs });
}

/** An allure-vitest result as the suites leave it (only the fields a rerun reads). */
function result(dir: string, id: string, r: { file: string; name: string; station: string; host: string; status: string; stop: number }): void {
  mkdirSync(dir, { recursive: true });
  const labels = [{ name: 'station', value: r.station }, { name: 'host', value: r.host }];
  writeFileSync(path.join(dir, `${id}-result.json`), JSON.stringify({ uuid: id, name: r.name.split(' ').at(-1), fullName: `sota-rig:${r.file}#${r.name}`, status: r.status, stop: r.stop, labels }));
}

describe('nightly for a farm', () => {
  test('--shard must be i/n with 1 ≤ i ≤ n; a good one goes to vitest with every station', async () => {
    const bad = await nightly(['--shard', '3/2']);
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain('--shard: expected i/n with 1 ≤ i ≤ n (e.g. 2/3), seen 3/2');
    const ok = await nightly(['--shard', '2/3', '--dry-run']);
    expect(ok.stdout).toContain('nightly: would run virtual\nnightly: virtual: health, then vitest run --project suites --shard 2/3 --passWithNoTests\n');
    expect(ok.status).toBe(0);
  });

  test('--rerun-failed takes the last attempt of each test, on this host’s stations only', async () => {
    const results = path.join(tmp, 'last-night');
    // Failed, then passed on retry: not rerun. Failed for good: rerun. Failed on another Pi: not here.
    result(results, 'a1', { file: 'suites/smoke.test.ts', name: 'smoke the module answers AT', station: 'virtual', host: 'pi-7', status: 'failed', stop: 1 });
    result(results, 'a2', { file: 'suites/smoke.test.ts', name: 'smoke the module answers AT', station: 'virtual', host: 'pi-7', status: 'passed', stop: 2 });
    result(results, 'b1', { file: 'suites/smoke.test.ts', name: 'smoke the probe examines the target', station: 'virtual', host: 'pi-7', status: 'broken', stop: 3 });
    result(results, 'c1', { file: 'suites/full-package.test.ts', name: 'full package v1_0_0 → v2_0_0 (a+b)', station: 'virtual', host: 'pi-7', status: 'failed', stop: 4 });
    result(results, 'd1', { file: 'suites/multi-piece.test.ts', name: 'multi-piece a package larger than the module free space', station: 'virtual', host: 'pi-8', status: 'failed', stop: 5 });
    const r = await nightly(['--rerun-failed', results, '--dry-run'], 60_000, { ALLURE_HOST_NAME: 'pi-7' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('nightly: 3 failed test(s) in');
    expect(r.stdout).toContain('2 on this host\'s stations (pi-7); not here: virtual@pi-8');
    expect(r.stdout).toContain('nightly: virtual: health, then vitest run --project suites suites/full-package.test.ts suites/smoke.test.ts -t ^(?:full package v1_0_0 → v2_0_0 \\(a\\+b\\)|smoke the probe examines the target)$');
    // Nothing of this host failed: nothing to do.
    const none = await nightly(['--rerun-failed', results], 60_000, { ALLURE_HOST_NAME: 'pi-9' });
    expect(none.stdout).toContain('nightly: nothing to rerun on this host');
    expect(none.status).toBe(0);
    const missing = await nightly(['--rerun-failed', path.join(tmp, 'nothing-here')]);
    expect(missing.status).toBe(64);
    expect(missing.stderr).toContain('neither a report (no index.html) nor an allure-results directory');
  });

  test('a rerun runs the failed test alone, after the health check, with a heartbeat while it is quiet', { timeout: 240_000 }, async () => {
    const results = path.join(tmp, 'rerun-results');
    result(results, 'e1', { file: 'suites/smoke.test.ts', name: 'smoke the probe examines the target', station: 'virtual', host: 'pi-7', status: 'failed', stop: 1 });
    const logs = path.join(tmp, 'rerun-logs');
    const state = path.join(tmp, 'state');
    const r = await nightly(['--rerun-failed', results, '--no-report', '--heartbeat', '1s', '--log-dir', logs], 230_000, { ALLURE_HOST_NAME: 'pi-7', RIG_STATE_DIR: state });
    expect(r.status, r.stdout.slice(-2000)).toBe(0);
    // The rerun lands next to what it reruns, as a retry of it: nothing was emptied.
    const written = readdirSync(results).filter((n) => n.endsWith('-result.json')).map((n) => JSON.parse(readFileSync(path.join(results, n), 'utf8')) as { fullName: string; status: string });
    expect(written.filter((w) => w.fullName.endsWith('#smoke the probe examines the target')).map((w) => w.status).sort()).toEqual(['failed', 'passed']);
    expect(written.filter((w) => w.fullName.includes('suites/smoke.test.ts#') && !w.fullName.endsWith('examines the target'))).toEqual([]);
    expect(written.filter((w) => w.fullName.includes('suites/health/')).length).toBe(5);
    expect(r.stdout).toMatch(/nightly: \dm\d\ds — virtual \[(health|suites)\]: \d+ done/);
    const summary = JSON.parse(readFileSync(path.join(logs, 'summary.json'), 'utf8')) as { rerun: boolean; stations: { station: string; health: string; state: string; passed: number }[] };
    expect(summary.rerun).toBe(true);
    expect(summary.stations).toEqual([expect.objectContaining({ station: 'virtual', health: 'passed', state: 'passed', passed: 6 })]);
    // The health check is the station's last, on this host.
    expect(JSON.parse(readFileSync(path.join(state, 'health', 'virtual.json'), 'utf8'))).toMatchObject({ station: 'virtual', host: 'pi-7', ok: true });
  });

  test('a station that fails its health check is broken for the night: its suites do not run (69)', { timeout: 120_000 }, async () => {
    const config = path.join(tmp, 'unplugged.json');
    // A bench whose module USB cable is out: nothing at its port.
    writeFileSync(config, JSON.stringify({ stations: { 'bench-9': { module: { port: path.join(tmp, 'no-such-tty') }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: 0x0800_0000, slotSize: 65536 } } } }));
    const results = path.join(tmp, 'broken-results');
    const logs = path.join(tmp, 'broken-logs');
    const state = path.join(tmp, 'state-broken');
    const r = await nightly(['--config', config, '--results', results, '--log-dir', logs, '--no-report'], 110_000, { RIG_STATE_DIR: state, RIG_LOCK_DIR: path.join(tmp, 'locks') });
    expect(r.status).toBe(69);
    expect(r.stdout).toContain('nightly: bench-9 failed its health check: broken infrastructure tonight, its suites are not run');
    const written = readdirSync(results).filter((n) => n.endsWith('-result.json')).map((n) => JSON.parse(readFileSync(path.join(results, n), 'utf8')) as { fullName: string; status: string; statusDetails: { trace: string }; labels: { name: string; value: string }[] });
    expect(written.every((w) => w.fullName.includes('suites/health/')), 'only health results').toBe(true);
    const opened = written.find((w) => w.fullName.endsWith('the station opens (lock, power lines, module port, OpenOCD)'))!;
    expect(opened.status).toBe('failed');
    expect(opened.statusDetails.trace).toMatch(/^HealthCheckError \[infrastructure\]: bench-9: health check failed: the station opens/);
    // Every check failed for that one reason: one group in the report's categories, not five.
    const reasons = new Set(written.map((w) => w.labels.find((l) => l.name === 'reason')?.value));
    expect([...reasons]).toEqual(['HealthCheckError: health check failed: the station opens (lock, power lines, module port, OpenOCD)']);
    expect(written.map((w) => w.status)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed']);
    const summary = JSON.parse(readFileSync(path.join(logs, 'summary.json'), 'utf8')) as { stations: { station: string; health: string; state: string }[] };
    expect(summary.stations).toEqual([expect.objectContaining({ station: 'bench-9', health: 'failed', state: 'broken' })]);
    expect(JSON.parse(readFileSync(path.join(state, 'health', 'bench-9.json'), 'utf8'))).toMatchObject({ ok: false, summary: expect.stringMatching(/^failed: the station opens/) });
  });
});
