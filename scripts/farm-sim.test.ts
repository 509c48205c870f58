// The farm, simulated: three "Pis", each a working directory of its own with its own config, state, locks
// and processes, run their stations' CI jobs the way ci/github/farm.yml and ci/gitlab/farm.gitlab-ci.yml
// do (RIG_STATION from the runner's environment → npm run farm:station → rig power <station> safe →
// the job's output as an artifact), for two nights, each night ending with the merge job (npm run
// farm:merge) over every artifact. Then the merged report is opened in Debian's headless Chromium: one
// environment per station (the "virtual" station of two Pis split per Pi), the second night's history
// holding the first night, no result counted as a retry of another host's, and the station that failed
// its health check shown as broken infrastructure, its suites not run.
//
// Kept small: each station runs its health check and one smoke test; pi-3's second station is a bench
// whose module is unplugged, which fails its health check at once.
import { createRequire } from 'node:module';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runProcess, type Ran } from './testing/run.ts';
import { embeddedJson, readEmbeddedReportData } from './report-lib/report-data.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** tsx for scripts started from another directory (a Pi's working directory), where `--import tsx` does not resolve. */
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const farm = mkdtempSync(path.join(os.tmpdir(), 'sota-farm-sim-'));
afterAll(() => {
  // RIG_FARM_SIM_KEEP=<dir> keeps the simulated farm's merged report there, to look at.
  const keep = process.env.RIG_FARM_SIM_KEEP;
  if (keep && existsSync(reportDir)) cpSync(reportDir, path.resolve(keep), { recursive: true });
  rmSync(farm, { recursive: true, force: true });
});

/** Each Pi's stations, as its runners are registered: one CI job per station. */
const HOSTS: Record<string, Record<string, unknown>> = {
  'pi-1': { virtual: { kind: 'virtual' } },
  'pi-2': { virtual: { kind: 'virtual' } },
  'pi-3': {
    'bench-3': { kind: 'virtual', timeScale: 0.1 },
    // Its module's USB cable is out: the health check fails, the night's suites do not run on it.
    'bench-9': { module: { port: '/dev/serial/by-id/usb-Quectel_unplugged-if02-port0' }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: 0x0800_0000, slotSize: 65536 } },
  },
};
const SELECTION = ['--file', path.join(root, 'suites', 'smoke.test.ts'), '--test', 'the probe examines the target'];

function run(cwd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  // INIT_CWD as `npm run` sets it in that directory: where the scripts resolve the user's paths.
  return runProcess(process.execPath, args, { cwd, env: { INIT_CWD: cwd, ...env }, timeoutMs });
}

/** One Pi: its own working directory, config (RIG_CONFIG), state, locks, and host name on its results. */
function host(name: string) {
  const dir = path.join(farm, name);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'rig.config.json');
  writeFileSync(config, JSON.stringify({ stations: HOSTS[name] }));
  return {
    name,
    dir,
    // What the runner's environment holds on that Pi (RIG_STATION is set per runner, below).
    env: { RIG_CONFIG: config, RIG_STATE_DIR: path.join(dir, 'state'), RIG_LOCK_DIR: path.join(dir, 'locks'), ALLURE_HOST_NAME: name },
  };
}
const hosts = Object.keys(HOSTS).map(host);
const artifacts = path.join(farm, 'artifacts');
const history = path.join(farm, 'history', 'history.jsonl');
const reportDir = path.join(farm, 'farm-report');

/** One station's CI job on its Pi, step by step as the templates run it; its output uploaded as an artifact. */
async function stationJob(h: (typeof hosts)[number], station: string, night: number): Promise<{ night: Ran; safe: Ran }> {
  const env = { ...h.env, RIG_STATION: station };
  const nightRun = await run(h.dir, ['--import', tsx, path.join(root, 'scripts', 'farm-station.mjs'), '--expect', station, '--out', 'farm-out', '--timeout', '4m', ...SELECTION], env, 280_000);
  const safe = await run(h.dir, [path.join(root, 'bin', 'rig.js'), 'power', station, 'safe'], { ...env, RIG_NO_STALE_CHECK: '1' }, 60_000);
  cpSync(path.join(h.dir, 'farm-out', station), path.join(artifacts, `night-${night}`, `farm-${station}@${h.name}`, station), { recursive: true });
  return { night: nightRun, safe };
}

async function night(n: number): Promise<{ jobs: Record<string, { night: Ran; safe: Ran }>; merge: Ran }> {
  const jobs: Record<string, { night: Ran; safe: Ran }> = {};
  await Promise.all(hosts.flatMap((h) => Object.keys(HOSTS[h.name]!).map(async (s) => (jobs[`${s}@${h.name}`] = await stationJob(h, s, n)))));
  // The merge job: a clean runner with the artifacts of tonight and the history the CI kept.
  const merge = await run(farm, ['--import', tsx, path.join(root, 'scripts', 'farm-merge.mjs'), path.join(artifacts, `night-${n}`), '--history', history, '--output', reportDir], {}, 120_000);
  return { jobs, merge };
}

let first: Awaited<ReturnType<typeof night>>;
let second: Awaited<ReturnType<typeof night>>;
beforeAll(async () => {
  first = await night(1);
  second = await night(2);
}, 600_000);

describe('the farm, simulated: three Pis, two nights, one report', () => {
  test('each station job ran its station (from the runner’s environment), ended safe and left its artifact', () => {
    for (const { jobs } of [first, second]) {
      for (const [job, r] of Object.entries(jobs)) {
        const broken = job.startsWith('bench-9@');
        expect(r.night.status, `${job}: ${r.night.stdout.slice(-1500)}`).toBe(broken ? 69 : 0);
        expect(r.safe.status, `${job} clean-up: ${r.safe.stderr}`).toBe(0);
      }
    }
    expect(second.jobs['bench-9@pi-3']!.night.stdout).toContain('nightly: bench-9 failed its health check');
    for (const s of ['virtual@pi-1', 'virtual@pi-2', 'bench-3@pi-3']) {
      const [station, pi] = s.split('@') as [string, string];
      const out = path.join(artifacts, 'night-2', `farm-${s}`, station);
      const inventory = JSON.parse(readFileSync(path.join(out, 'inventory.json'), 'utf8')) as { host: string; stations: { station: string; health?: { ok: boolean }; identity?: unknown }[] };
      expect(inventory).toMatchObject({ host: pi, stations: [{ station, health: { ok: true }, identity: expect.any(Object) }] });
      expect(readdirSync(path.join(out, 'allure-results')).filter((n) => n.endsWith('-result.json'))).toHaveLength(6);
    }
  });

  test('the merge job built one report with history and JUnit XML', () => {
    expect(first.merge.status, first.merge.stderr).toBe(0);
    expect(second.merge.status, second.merge.stderr).toBe(0);
    expect(second.merge.stdout).toContain('farm:merge: 4 results directories, 4 inventories');
    expect(second.merge.stdout).toContain('history holds 2 run(s)');
    const xml = readFileSync(path.join(reportDir, 'junit.xml'), 'utf8');
    expect([...xml.matchAll(/<testsuite name="([^"]+)" tests="(\d+)" failures="(\d+)"/g)].map((m) => `${m[1]} ${m[2]}/${m[3]}`)).toEqual(['bench-3 6/0', 'bench-9 5/5', 'virtual@pi-1 6/0', 'virtual@pi-2 6/0']);
  });

  test('in the data: an environment per station, no retries, tonight’s tests with last night in their history', () => {
    const files = readEmbeddedReportData(readFileSync(path.join(reportDir, 'index.html'), 'utf8'));
    const envs = embeddedJson<{ id: string; name: string }[]>(files, 'widgets/environments.json').map((e) => e.name).sort();
    expect(envs).toEqual(['bench-3', 'bench-9', 'default', 'virtual@pi-1', 'virtual@pi-2']);
    const results = [...files].filter(([k]) => k.startsWith('data/test-results/')).map(([, v]) => JSON.parse(v) as { name: string; fullName: string; environment: string; isRetry: boolean; retriesCount: number; history: unknown[]; status: string });
    expect(results.filter((r) => r.isRetry || r.retriesCount > 0)).toEqual([]);
    expect(results).toHaveLength(23);
    const probe = results.filter((r) => r.fullName.includes(':suites/smoke.test.ts#'));
    expect(probe.map((r) => r.environment).sort()).toEqual(['bench-3', 'virtual@pi-1', 'virtual@pi-2']);
    for (const r of probe) expect(r.history, `${r.environment}: history from the first night`).toHaveLength(1);
    const broken = results.filter((r) => r.environment === 'bench-9');
    expect(broken.every((r) => r.status === 'failed')).toBe(true);
    const categories = embeddedJson<{ roots: string[]; nodes: Record<string, { name: string }> }>(files, 'widgets/categories.json');
    expect(categories.roots.map((id) => categories.nodes[id]!.name.split(' (')[0])).toEqual(['Infrastructure failures']);
    expect(embeddedJson<Record<string, string>>(files, 'widgets/virtual-pi-2/variables.json')).toMatchObject({ station: 'virtual', host: 'pi-2', 'last health': expect.stringMatching(/^passed /) });
  });
});

describe('the merged report in Chromium', () => {
  let context: BrowserContext;
  beforeAll(async () => {
    if (!existsSync(chromiumPath)) throw new Error(`chromium: expected Debian's browser at ${chromiumPath} (npm run setup installs it, or set CHROMIUM_PATH); seen nothing there`);
    context = await chromium.launchPersistentContext(mkdtempSync(path.join(farm, 'chromium-profile-')), {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1400, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);
  afterAll(async () => {
    await context?.close();
  });

  const ui = (what: string) => ({ timeout: 15_000, message: `report UI: ${what}` });
  const count = (page: Page, text: string) => page.getByText(text, { exact: true }).count();

  test('one environment per station; a station chosen shows its table; a test shows last night in its history', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(pathToFileURL(path.join(reportDir, 'index.html')).href);
    for (const env of ['bench-3', 'bench-9', 'virtual@pi-1', 'virtual@pi-2']) await expect.poll(() => count(page, `Environment: "${env}"`), ui(`the group of ${env}`)).toBe(1);
    // The environment selector: each station alone.
    await page.locator('button').filter({ hasText: /^All$/ }).first().click();
    for (const env of ['bench-3', 'bench-9', 'virtual@pi-1', 'virtual@pi-2']) await expect.poll(() => count(page, env), ui(`${env} in the Environment menu`)).toBeGreaterThan(0);
    await page.getByText('virtual@pi-2', { exact: true }).first().click();
    await expect.poll(() => count(page, 'pi-2'), ui('the host of virtual@pi-2 in its table')).toBeGreaterThan(0);
    await expect.poll(() => count(page, 'pi-1'), ui("no other Pi's table")).toBe(0);
    // A test of tonight, and its history: last night's run of the same test on the same station.
    await page.getByText('smoke', { exact: true }).first().click();
    await page.getByText('the probe examines the target', { exact: true }).first().click();
    // The same test on the other stations, each its own environment, and no retries.
    await expect.poll(() => page.getByRole('button', { name: /^Environments\s*3$/ }).count(), ui('"Environments 3" on the test')).toBe(1);
    await expect.poll(() => page.getByRole('button', { name: /^Retries$/ }).count(), ui('"Retries" with no count')).toBe(1);
    await page.getByRole('button', { name: /^History\s*1$/ }).first().click();
    await expect.poll(() => page.getByText(/^\d{1,2}\/\d{1,2}\/\d{4} at \d{2}:\d{2}:\d{2}$/).count(), ui('one entry, the first night, in History')).toBe(1);
    await page.close();
  });
});
