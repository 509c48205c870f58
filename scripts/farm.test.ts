// The farm scripts as a user runs them (npm run nightly / qualify → tsx scripts/….mjs), spawned as processes.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { plansConfigSchema } from '../rig/config/schema.ts';
import { sha256Hex } from '../rig/images/digest.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-farm-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function script(name: string, args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `scripts/${name}.mjs`, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${name} ${args.join(' ')} did not finish: ${stdout} ${stderr}`))), timeoutMs);
    child.once('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
  });
}

describe('nightly', () => {
  test('an unknown station is a usage error (64) naming the stations there are, before any result is touched', async () => {
    const r = await script('nightly', ['--stations', 'virtual,bench-nosuch']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('no station bench-nosuch');
    expect(r.stderr).toContain('have: virtual');
  });

  test('with hardware stations configured, the virtual ones are left out unless --with-virtual', async () => {
    const bench = { module: { port: '/dev/serial/by-id/usb-Quectel-if02-port0' }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: 0x0800_0000, slotSize: 65536 } };
    const config = path.join(tmp, 'nightly-bench.json');
    writeFileSync(config, JSON.stringify({ stations: { 'bench-1': bench, 'virtual-f4': { kind: 'virtual', target: 'stm32f4x' } } }));
    const r = await script('nightly', ['--config', config, '--dry-run']);
    expect(r.stdout).toContain('nightly: leaving out virtual-f4, virtual (virtual; --with-virtual runs them beside the hardware)');
    expect(r.stdout).toContain('nightly: would run bench-1\n');
    expect(r.status).toBe(0);
    const all = await script('nightly', ['--config', config, '--dry-run', '--with-virtual']);
    expect(all.stdout).toContain('nightly: would run bench-1, virtual-f4, virtual\n');
    // Only virtual stations: they are the night's run.
    const none = await script('nightly', ['--dry-run']);
    expect(none.stdout).toContain('nightly: would run virtual\n');
  });

  test('a timeout that is not a duration is a usage error', async () => {
    const r = await script('nightly', ['--timeout', 'soon']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('--timeout: expected a duration like 90m, seen soon');
  });
});

describe('qualify', () => {
  test('a previous version the manifest does not have is a usage error naming those it has', async () => {
    const r = await script('qualify', ['--previous', '9_9_9']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('no image 9_9_9');
    expect(r.stderr).toContain('1_0_0, 1_1_0, 2_0_0');
  });

  test('an --image whose version nobody gave and no locator finds is a usage error, before any station is opened', async () => {
    const file = path.join(tmp, 'app.bin');
    writeFileSync(file, Buffer.alloc(4096, 0x5a));
    const r = await script('qualify', ['--image', file]);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('which version is app.bin?');
    expect(r.stderr).toContain('--version');
    const taken = await script('qualify', ['--image', file, '--version', '2_0_0']);
    expect(taken.status).toBe(64);
    expect(taken.stderr).toContain('version 2_0_0, which is already a release with other bytes');
    const typo = await script('qualify', ['--imgae', file]);
    expect(typo.stderr).toContain('unknown option --imgae (did you mean --image?)');
  });

  test('a real image (no rig header) from a directory of releases: a delta case passes; junit.xml and Allure results are written', { timeout: 120_000 }, async () => {
    // Three builds as objcopy leaves them: a vector table and code, nothing else. The releases are named by their file names.
    const build = (edit: number): Buffer => {
      const b = Buffer.alloc(4096);
      for (let i = 0; i < b.length; i++) b[i] = (i * 13 + (i >> 7)) & 0xff;
      Buffer.from('00500020c1020008', 'hex').copy(b);
      b.fill(edit, 2000, 2100);
      return b;
    };
    const releases = path.join(tmp, 'releases');
    mkdirSync(releases);
    writeFileSync(path.join(releases, 'STM32_1_0_0.bin'), build(1));
    writeFileSync(path.join(releases, 'STM32_1_1_0.bin'), build(2));
    const image = path.join(tmp, 'app-2.1.0.bin');
    writeFileSync(image, build(3));
    const out = path.join(tmp, 'qualify-real');
    const r = await script('qualify', ['--image', image, '--version', '2_1_0', '--releases', releases, '--previous', '1_1_0', '--cases', 'delta', '--out', out, '--json'], 110_000);
    const res = JSON.parse(r.stdout) as { verdict: string; image: string; results: { case: string; status: string; outcome: string; record: string }[]; junit: string; allureResults: string };
    expect(res.results, r.stderr).toEqual([expect.objectContaining({ case: 'delta 1_1_0 → 2_1_0', status: 'passed', outcome: 'upgraded' })]);
    expect(res).toMatchObject({ verdict: 'QUALIFIED', image: '2_1_0' });
    expect(r.status).toBe(0);
    const record = JSON.parse(readFileSync(path.join(root, res.results[0]!.record), 'utf8')) as { readback: { matchesTarget: boolean; identified: { version: string } } };
    expect(record.readback).toMatchObject({ matchesTarget: true, identified: { version: '2_1_0' } });
    expect(readFileSync(res.junit, 'utf8')).toMatch(/<testsuites name="qualify STM32 2_1_0 on virtual" tests="1" failures="0" errors="0" skipped="0"/);
    const results = readdirSync(res.allureResults).filter((f) => f.endsWith('-result.json'));
    expect(results).toHaveLength(1);
    expect(JSON.parse(readFileSync(path.join(res.allureResults, results[0]!), 'utf8'))).toMatchObject({ name: 'delta 1_1_0 → 2_1_0', status: 'passed', stage: 'finished' });
  });

  test('a broken copy of the new image is refused and the old version stays: one case, passed, with its record', { timeout: 120_000 }, async () => {
    const r = await script('qualify', ['--previous', '1_1_0', '--cases', 'corrupt', '--json'], 110_000);
    const out = JSON.parse(r.stdout) as { ok: boolean; image: string; results: { case: string; outcome: string; pass: boolean; record: string }[]; records: string };
    try {
      expect(out.image).toBe('2_0_0');
      expect(out.results).toHaveLength(1);
      expect(out.results[0]).toMatchObject({ case: 'broken image 1_1_0 → 2_0_0 refused', outcome: 'failed-intact', pass: true });
      const record = JSON.parse(readFileSync(path.join(root, out.results[0]!.record), 'utf8')) as { verdict: { outcome: string; reason: string }; readback: { matchesCurrent: boolean } };
      expect(record.verdict).toMatchObject({ outcome: 'failed-intact', reason: 'download-rejected' });
      expect(record.readback.matchesCurrent).toBe(true);
      expect(existsSync(path.join(out.records, 'summary.json'))).toBe(true);
      expect(out.ok).toBe(true);
      expect(r.status).toBe(0);
    } finally {
      rmSync(out.records, { recursive: true, force: true });
    }
  });

  test('interrupted: the image survives a module power cut during the cloud → module download and another during the block reads', { timeout: 240_000 }, async () => {
    const r = await script('qualify', ['--previous', '1_1_0', '--cases', 'interrupted', '--json'], 230_000);
    const out = JSON.parse(r.stdout) as { ok: boolean; results: { case: string; pass: boolean; record: string }[]; records: string };
    try {
      expect(out.results.map((x) => [x.case, x.pass])).toEqual([
        ['interrupted download (cloud → module) 1_1_0 → 2_0_0', true],
        ['interrupted block reads 1_1_0 → 2_0_0', true],
      ]);
      const fired = out.results.map((x) => (JSON.parse(readFileSync(path.join(root, x.record), 'utf8')) as { fired: { fault: string; phase: string }[] }).fired);
      expect(fired[0]).toEqual([expect.objectContaining({ fault: 'event=10701:power-cycle-module=500', phase: 'download' })]);
      expect(fired[1]![0]!.fault).toMatch(/^offset=\d+:power-cycle-module=500$/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(out.records, { recursive: true, force: true });
    }
  });

  test('--write-packages writes every package a case delivers and a plans block that validates as a declared plans config', async () => {
    const dir = path.join(tmp, 'packages');
    const r = await script('qualify', ['--previous', '1_1_0', '--write-packages', dir]);
    expect(r.status).toBe(0);
    const text = readFileSync(path.join(dir, 'plans.rig.config.txt'), 'utf8');
    expect(r.stdout).toContain(text.trim());
    const list = JSON.parse(text.slice(text.indexOf('\nplans: ') + '\nplans: '.length, text.lastIndexOf(',')).trim()) as { package: { file: string; sha256: string } }[];
    const plans = plansConfigSchema.parse({ kind: 'declared', plans: list });
    expect(plans.kind === 'declared' && plans.plans.map((p) => [p.sourceVersion, p.targetVersion])).toEqual([
      ['', '2_0_0'],
      ['1_1_0', '2_0_0'],
      ['', '2_0_0'],
      ['', '1_1_0'],
    ]);
    for (const p of list) expect(sha256Hex(readFileSync(path.join(dir, p.package.file)))).toBe(p.package.sha256);
  });
});

describe('qualify on a station without a module supply line', () => {
  // A bench described by hand over a running virtual station: module port, probe, plan API, and no power lines.
  let sim: ReturnType<typeof spawn> | undefined;
  let config = '';
  beforeAll(async () => {
    sim = spawn(process.execPath, ['bin/rig.js', 'sim', '--json'], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('rig sim printed no JSON line within 30 s')), 30_000);
      createInterface({ input: sim!.stdout! }).once('line', (l) => (clearTimeout(timer), resolve(l)));
    });
    const s = JSON.parse(line) as { module: { port: string }; jtag: { host: string; port: number; target: string }; admin: { url: string } };
    const bench = {
      module: { port: s.module.port },
      probe: { interface: { kind: 'remote_bitbang', host: s.jtag.host, port: s.jtag.port }, target: s.jtag.target, workAreaSize: 0 },
      layout: { slotAddress: 0x0800_0000, slotSize: 65536 },
    };
    config = path.join(tmp, 'bare.json');
    writeFileSync(config, JSON.stringify({ stations: { bare: { ...bench, plans: { kind: 'api', url: s.admin.url } }, noprobe: { ...bench, probe: { ...bench.probe, interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 9 } }, plans: { kind: 'api', url: s.admin.url } }, declared: { ...bench, module: { ...bench.module, productKey: 'pVirtualSta', productSecret: { env: 'RIG_FARM_TEST_PRODUCT_SECRET' } }, plans: { kind: 'declared', plans: [] } } } }));
  }, 40_000);
  afterAll(async () => {
    if (!sim || sim.exitCode !== null) return;
    const closed = new Promise((resolve) => sim!.once('close', resolve));
    sim.kill('SIGINT');
    await closed;
  });

  test('a skipped case fails qualification (1) and says why; --allow-skip accepts it (0)', { timeout: 120_000 }, async () => {
    const r = await script('qualify', ['--station', 'bare', '--config', config, '--previous', '1_1_0', '--cases', 'interrupted'], 60_000);
    const records = /records in (\S+)/.exec(r.stdout)?.[1];
    if (records) rmSync(path.join(root, records), { recursive: true, force: true });
    expect(r.stdout).toMatch(/SKIP +interrupted download \(cloud → module\) 1_1_0 → 2_0_0 .*skipped/);
    expect(r.stdout).toContain('bare has no module supply line for the fault');
    expect(r.stdout).toContain('NOT QUALIFIED (2 of 2 failed)');
    expect(r.status).toBe(1);
    const ok = await script('qualify', ['--station', 'bare', '--config', config, '--previous', '1_1_0', '--cases', 'interrupted', '--allow-skip', '--json'], 60_000);
    const okOut = JSON.parse(ok.stdout) as { ok: boolean; allowSkip: boolean; records: string };
    rmSync(okOut.records, { recursive: true, force: true });
    expect(okOut).toMatchObject({ ok: true, allowSkip: true });
    expect(ok.status).toBe(0);
  });

  test('a station that does not open: INCONCLUSIVE (4), every case not run, the doctor named, JUnit errors', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'qualify-noprobe');
    const r = await script('qualify', ['--station', 'noprobe', '--config', config, '--previous', '1_1_0', '--cases', 'full,corrupt', '--out', out], 50_000);
    expect(r.stdout).toMatch(/INCONCLUSIVE +full 1_1_0 → 2_0_0 +upgraded +not run/);
    expect(r.stdout).toContain('the station failed, not the image: run rig doctor noprobe, then qualify again');
    expect(r.stdout).toContain('qualify: STM32 2_0_0: INCONCLUSIVE (2 of 2 cases');
    expect(r.status).toBe(4);
    expect(readFileSync(path.join(out, 'junit.xml'), 'utf8')).toMatch(/tests="2" failures="0" errors="2"/);
  });

  test('a declared plan that is missing is a config error (2) whose message keeps the sha256 line', { timeout: 120_000 }, async () => {
    const r = await script('qualify', ['--station', 'declared', '--config', config, '--previous', '1_1_0', '--cases', 'full', '--json'], 110_000, { RIG_FARM_TEST_PRODUCT_SECRET: 'VirtualStationProductSecret' });
    const out = JSON.parse(r.stdout) as { results: { outcome: string; detail: string }[]; records: string };
    rmSync(out.records, { recursive: true, force: true });
    expect(out.results[0], JSON.stringify(out.results[0])).toMatchObject({ outcome: 'config error' });
    expect(out.results[0]!.detail).toContain('no declared plan delivers');
    expect(out.results[0]!.detail).toMatch(/sha256 [0-9a-f]{64}/);
    expect(r.status).toBe(2);
  });
});
