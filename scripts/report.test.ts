// `npm run report` end to end: real allure-vitest results from a tiny fixture project (two stations, as two
// Pis would leave them), the real Allure 3 generator, and the report opened in Debian's Chromium.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { planEnvironments, environmentsConfig } from './report-lib/environments.ts';
import { findRemoteReferences, isRemoteUrl, stripThirdParty } from './report-lib/offline.ts';
import { embeddedJson, readEmbeddedReportData } from './report-lib/report-data.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string): string => path.join(root, 'node_modules', '.bin', name);
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STATIONS = ['bench-a', 'bench-b'] as const;
const TESTS_PER_STATION = 5;

interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  // The fixture project is a vitest run of its own: it must not think it is a worker of this one.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env: { ...inherited, NO_COLOR: '1', ...env }, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

let scratch: string;
let resultsDirs: string[];
let historyFile: string;
let first: Run;
let second: Run;
const report = (n: 1 | 2): string => path.join(scratch, `report-${n}`);
const generateReport = (n: 1 | 2): Promise<Run> =>
  run(bin('tsx'), ['scripts/report.mjs', ...resultsDirs, '--output', report(n), '--history', historyFile]);

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'sota-report-'));
  historyFile = path.join(scratch, 'history', 'history.jsonl');
  resultsDirs = [];
  for (const station of STATIONS) {
    const dir = path.join(scratch, `results-${station}`);
    const fixture = await run(bin('vitest'), ['run', '--root', 'scripts/report-lib/fixture'], {
      SOTA_FIXTURE_RESULTS: dir,
      SOTA_FIXTURE_STATION: station,
    });
    const written = existsSync(dir) ? (await readdir(dir)).filter((n) => n.endsWith('-result.json')).length : 0;
    if (written !== TESTS_PER_STATION) {
      throw new Error(`fixture project for ${station}: expected ${TESTS_PER_STATION} Allure results in ${dir}, seen ${written} (exit ${fixture.code}): ${fixture.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    resultsDirs.push(dir);
  }
  first = await generateReport(1);
  second = await generateReport(2);
}, 120_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function reportFile(n: 1 | 2, name: string): Promise<string> {
  return readFile(path.join(report(n), name), 'utf8');
}

async function embedded(n: 1 | 2): Promise<Map<string, string>> {
  return readEmbeddedReportData(await reportFile(n, 'index.html'));
}

async function testNamesById(n: 1 | 2): Promise<Map<string, { name: string; environment: string }>> {
  const { byId } = JSON.parse(await reportFile(n, 'test-results.json')) as { byId: Record<string, { name: string; environment: string }> };
  return new Map(Object.entries(byId));
}

describe('npm run report', () => {
  test('builds the report and prints the path of index.html last', () => {
    expect(first.code, `report exited ${first.code}: ${first.stderr}`).toBe(0);
    expect(lines(first.stdout).at(-1)).toBe(`report: ${path.join(report(1), 'index.html')}`);
    expect(existsSync(path.join(report(1), 'index.html'))).toBe(true);
  });

  test('results from two stations land in two environments, not in retries of each other', async () => {
    const summary = JSON.parse(await reportFile(1, 'summary.json')) as { stats: Record<string, number> };
    expect(summary.stats.total).toBe(STATIONS.length * TESTS_PER_STATION);
    expect(summary.stats.retries ?? 0, 'retries (the same test on two stations counted as a rerun)').toBe(0);
    const perEnvironment: Record<string, number> = {};
    for (const { environment } of (await testNamesById(1)).values()) perEnvironment[environment] = (perEnvironment[environment] ?? 0) + 1;
    expect(perEnvironment).toEqual({ 'bench-a': TESTS_PER_STATION, 'bench-b': TESTS_PER_STATION });
    expect(first.stdout).toContain('in 2 environment(s): bench-a (5), bench-b (5)');
  });

  test('categories separate infrastructure, protocol and firmware failures, grouped by a reason without volatile parts', async () => {
    type Node = { type: string; name: string; key?: string; value?: string; childrenIds?: string[] };
    const { roots, nodes } = embeddedJson<{ roots: string[]; nodes: Record<string, Node> }>(await embedded(1), 'widgets/categories.json');
    const names = await testNamesById(1);
    const testsUnder = (id: string): string[] => {
      const node = nodes[id];
      if (!node) return [];
      if (node.type === 'tr') return [`${names.get(id)?.name} @ ${names.get(id)?.environment}`];
      return (node.childrenIds ?? []).flatMap(testsUnder).sort();
    };
    const byCategory = Object.fromEntries(roots.map((id) => [nodes[id]?.name.split(' (')[0], testsUnder(id)]));
    expect(byCategory).toEqual({
      'Infrastructure failures': [
        'serial port stays open @ bench-a', 'serial port stays open @ bench-b',
        'serial port stays open during a read @ bench-a', 'serial port stays open during a read @ bench-b',
      ],
      'Protocol failures': ['10700 announces the plan @ bench-a', '10700 announces the plan @ bench-b'],
      'Firmware failures': ['readback equals v2_0_0 @ bench-a', 'readback equals v2_0_0 @ bench-b'],
    });
    // Two ports, two byte counts, one cause: one reason group per station, not one per message.
    const reasons = Object.values(nodes).filter((n) => n.key === 'reason');
    const infra = reasons.filter((n) => n.value?.startsWith('InfrastructureError'));
    expect(new Set(infra.map((n) => n.value))).toEqual(new Set(['InfrastructureError: serial port <path> vanished after <n> bytes']));
    expect(infra).toHaveLength(STATIONS.length);
    for (const n of infra) expect(testsUnder(Object.keys(nodes).find((k) => nodes[k] === n)!)).toHaveLength(2);
    expect(Object.values(nodes).some((n) => n.type === 'message'), 'no grouping by the raw message').toBe(false);
  });

  test('each station has its own table, shown only when that station is selected', async () => {
    const files = await embedded(1);
    for (const station of STATIONS) {
      const own = embeddedJson<Record<string, string>>(files, `widgets/${station}/variables.json`);
      expect(own).toMatchObject({ station, module: 'Quectel EC200U', firmware: `EC200UCNAAR03A03M08-${station}`, probe: `ST-Link SER-${station}`, target: 'stm32f4x, IDCODE 0x4ba00477' });
      const other = STATIONS.find((s) => s !== station)!;
      expect(JSON.stringify(own), `${station}'s table names nothing of ${other}`).not.toContain(other);
    }
    // The whole report's view says which stations there are, not any one's facts.
    const all = embeddedJson<Record<string, string>>(files, 'widgets/variables.json');
    expect(all.station).toBe('2: bench-a, bench-b (Environment shows one)');
    expect(all).not.toHaveProperty('firmware');
    // Nothing flat and unfiltered in the metadata section any more.
    expect(files.has('widgets/allure_environment.json') ? JSON.parse(files.get('widgets/allure_environment.json')!) : []).toEqual([]);
  });

  test('keeps history across runs', async () => {
    expect(second.code, `second report exited ${second.code}: ${second.stderr}`).toBe(0);
    expect(lines(await readFile(historyFile, 'utf8'))).toHaveLength(2);
    expect(second.stdout).toContain('history holds 2 run(s)');
    const historyIn = async (n: 1 | 2): Promise<string[]> => {
      const files = await embedded(n);
      return [...files.keys()].filter((k) => k.startsWith('data/history/')).flatMap((k) => {
        const point = JSON.parse(files.get(k) ?? '{}') as { testResults?: Record<string, { name: string }> };
        return Object.values(point.testResults ?? {}).map((tr) => tr.name);
      });
    };
    expect(await historyIn(1)).toEqual([]);
    expect((await historyIn(2)).filter((n) => n === 'module answers AT')).toHaveLength(STATIONS.length);
  });

  test('the analytics tag Allure writes is gone from every HTML and JS file of the report', async () => {
    // The raw Allure output does carry the tag; otherwise this test would prove nothing.
    const raw = path.join(scratch, 'raw');
    const generated = await run(bin('allure'), ['generate', '--config', 'reports/allurerc.ts', '--output', raw, ...resultsDirs], {
      SOTA_REPORT_RESULTS: JSON.stringify(resultsDirs), SOTA_REPORT_HISTORY: path.join(scratch, 'raw-history.jsonl'),
    });
    expect(generated.code, generated.stderr).toBe(0);
    expect(await readFile(path.join(raw, 'index.html'), 'utf8')).toMatch(/googletagmanager\.com\/gtag\/js/);

    for (const n of [1, 2] as const) {
      const files = (await readdir(report(n), { recursive: true })).filter((f) => /\.(html?|m?js|css)$/.test(f));
      expect(files).toContain('index.html');
      for (const file of files) {
        const text = await readFile(path.join(report(n), file), 'utf8');
        expect(text, `${file} of report ${n}`).not.toMatch(/googletagmanager|google-analytics|\bgtag\s*\(/);
        expect(findRemoteReferences(text, file), `${file} of report ${n}`).toEqual([]);
      }
    }
    expect(first.stdout).toContain('removed 2 third-party element(s)');
  });

  test('merges a dump archive made on another Pi with `allure run --environment <station> --dump`', async () => {
    const dump = path.join(scratch, 'pi-9');
    const made = await run(bin('allure'), [
      'run', '--config', 'reports/allurerc.ts', '--environment', 'bench-c', '--dump', dump, '--results-dir', path.join(scratch, 'results-bench-c'),
      '--', bin('vitest'), 'run', '--root', 'scripts/report-lib/fixture',
    ], {
      SOTA_FIXTURE_RESULTS: path.join(scratch, 'results-bench-c'), SOTA_FIXTURE_STATION: 'bench-c',
      SOTA_REPORT_RESULTS: '[]', SOTA_REPORT_HISTORY: path.join(scratch, 'pi-9-history.jsonl'),
    });
    expect(existsSync(`${dump}.zip`), `allure run made no ${dump}.zip (exit ${made.code}): ${made.stdout.slice(-300)}`).toBe(true);

    const merged = await run(bin('tsx'), ['scripts/report.mjs', ...resultsDirs, '--dump', `${dump}.zip`,
      '--output', path.join(scratch, 'report-merged'), '--history', path.join(scratch, 'merged-history.jsonl')]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toContain(`from ${2 * TESTS_PER_STATION} results in 2 directories and 1 dump archive`);
    const { byId } = JSON.parse(await readFile(path.join(scratch, 'report-merged', 'test-results.json'), 'utf8')) as { byId: Record<string, { environment: string }> };
    const perEnvironment: Record<string, number> = {};
    for (const { environment } of Object.values(byId)) perEnvironment[environment] = (perEnvironment[environment] ?? 0) + 1;
    expect(perEnvironment).toEqual({ 'bench-a': TESTS_PER_STATION, 'bench-b': TESTS_PER_STATION, 'bench-c': TESTS_PER_STATION });
  });

  test('fails with one line when there are no results, and never replaces a directory that is not a report', async () => {
    const empty = path.join(scratch, 'no-results');
    await mkdir(empty, { recursive: true });
    const none = await run(bin('tsx'), ['scripts/report.mjs', empty, '--output', path.join(scratch, 'unused')]);
    expect(none.code).toBe(1);
    expect(lines(none.stderr)).toEqual([`report: no test results in ${empty} (expected *-result.json files written by allure-vitest)`]);

    const precious = path.join(scratch, 'precious');
    await mkdir(precious, { recursive: true });
    await writeFile(path.join(precious, 'notes.txt'), 'keep me');
    const refused = await run(bin('tsx'), ['scripts/report.mjs', ...resultsDirs, '--output', precious]);
    expect(refused.code).toBe(1);
    expect(lines(refused.stderr)).toEqual([`report: refusing to replace ${precious}: it is not empty and holds no index.html, so it is not an Allure report`]);
    expect(await readFile(path.join(precious, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describe('the offline check', () => {
  const allurePage = async (): Promise<string> => readFile(path.join(scratch, 'raw', 'index.html'), 'utf8');

  test('strips the tag from the page Allure writes, and then finds nothing remote', async () => {
    const page = await allurePage();
    expect(findRemoteReferences(page, 'index.html').map((r) => r.what).join('\n')).toMatch(/googletagmanager/);
    const { html, removed } = stripThirdParty(page);
    expect(removed).toHaveLength(2);
    expect(findRemoteReferences(html, 'index.html')).toEqual([]);
  });

  test('catches remote loads that the stripping does not remove', () => {
    const js = Buffer.from('window.dataLayer=[];function gtag(){dataLayer.push(arguments)}').toString('base64');
    const page = [
      '<html><head><style>@font-face{src:url(https://fonts.gstatic.com/x.woff2)}</style>',
      '<meta http-equiv="refresh" content="0; url=https://example.com/">',
      '</head><body><img src="//cdn.example.com/p.png">',
      `<script src="data:text/javascript;base64,${js}"></script>`,
      '<a href="http://127.0.0.1:8080/other">local</a><img src="data/attachments/a.png"></body></html>',
    ].join('\n');
    const found = findRemoteReferences(stripThirdParty(page).html, 'index.html').map((r) => r.what);
    expect(found.some((w) => w.includes('fonts.gstatic.com'))).toBe(true);
    expect(found.some((w) => w.includes('http-equiv="refresh"'))).toBe(true);
    expect(found.some((w) => w.includes('//cdn.example.com'))).toBe(true);
    expect(found.some((w) => w.includes('gtag('))).toBe(true);
    expect(found.filter((w) => w.includes('127.0.0.1') || w.includes('data/attachments'))).toEqual([]);
  });

  test('tells local from remote URLs', () => {
    expect(['https://www.googletagmanager.com/gtag/js', '//cdn.x', 'wss://x.io/s', 'http://user@10.0.0.1:80/'].map(isRemoteUrl)).toEqual([true, true, true, true]);
    expect(['http://127.0.0.1:4000/a', 'http://localhost/b', 'file:///tmp/r/index.html', 'data:image/png;base64,AA', 'app.js', '/abs'].map(isRemoteUrl))
      .toEqual([false, false, false, false, false, false]);
  });
});

describe('environments per station', () => {
  const valid = /^[A-Za-z0-9_-]{1,64}$/;

  test('a station on one host is one environment named after it', () => {
    const envs = planEnvironments([
      { station: 'bench-2', host: 'pi-3' }, { station: 'bench-1', host: 'pi-3' }, { station: 'bench-2', host: 'pi-3' },
    ]);
    expect(envs.map(({ id, name }) => ({ id, name }))).toEqual([{ id: 'bench-1', name: 'bench-1' }, { id: 'bench-2', name: 'bench-2' }]);
  });

  test('a station name used on several hosts ("virtual" on every Pi) is split per host', () => {
    const envs = planEnvironments([{ station: 'virtual', host: 'pi-1' }, { station: 'virtual', host: 'pi-2' }, { station: 'bench-2', host: 'pi-2' }]);
    expect(envs.map((e) => e.name)).toEqual(['bench-2', 'virtual@pi-1', 'virtual@pi-2']);
    const config = environmentsConfig(envs);
    const labels = [{ name: 'station', value: 'virtual' }, { name: 'host', value: 'pi-2' }];
    const matching = Object.entries(config).filter(([, e]) => e.matcher({ labels })).map(([id]) => id);
    expect(matching).toEqual(['virtual-pi-2']);
  });

  test('results without a station stay in the default environment unless several hosts left them', () => {
    expect(planEnvironments([{ station: undefined, host: 'pi-1' }])).toEqual([]);
    expect(planEnvironments([{ station: undefined, host: 'pi-1' }, { station: undefined, host: 'pi-2' }]).map((e) => e.name))
      .toEqual(['no station@pi-1', 'no station@pi-2']);
  });

  test('any station name gives a valid, unique Allure environment id and name', () => {
    const envs = planEnvironments([
      { station: 'lab/bench 2', host: 'h' }, { station: 'lab:bench-2', host: 'h' }, { station: 'default', host: 'h' }, { station: 'x'.repeat(100), host: 'h' },
    ]);
    expect(envs.every((e) => valid.test(e.id) && e.name.length <= 64 && !/[/\\]/.test(e.name))).toBe(true);
    expect(new Set(envs.map((e) => e.id)).size).toBe(envs.length);
    expect(envs.map((e) => e.id)).not.toContain('default');
  });
});

describe('the report in Chromium', () => {
  let context: BrowserContext;
  let server: Server;
  let origin: string;
  const requests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(`chromium: expected Debian's browser at ${chromiumPath} (npm run setup installs it, or set CHROMIUM_PATH); seen nothing there`);
    }
    const dir = report(1);
    server = createServer((req, res) => {
      const file = path.join(dir, path.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      const target = file.endsWith(path.sep) ? path.join(file, 'index.html') : file;
      if (!target.startsWith(dir)) { res.writeHead(403).end(); return; }
      readFile(target).then(
        (body) => res.writeHead(200, { 'content-type': target.endsWith('.html') ? 'text/html' : 'application/octet-stream' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    context = await chromium.launchPersistentContext(await mkdtemp(path.join(scratch, 'chromium-profile-')), {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1400, height: 1000 },
      args: [
        '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });
    context.on('request', (r) => requests.push(r.url()));
    // Nothing may leave this machine even if the check above missed something: abort, and remember it.
    await context.route(/^(?!https?:\/\/127\.0\.0\.1[:/])(https?|wss?):\/\//, (route) => route.abort());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  });

  function offMachine(): string[] {
    return requests.filter((u) => !/^(file:|data:|blob:|about:)/.test(u) && !u.startsWith(`${origin}/`));
  }

  const ui = (what: string): { timeout: number; message: string } => ({ timeout: 15_000, message: `report UI: ${what}` });
  const visible = (page: Page, text: string): Promise<number> => page.getByText(text, { exact: true }).count();

  async function openTest(page: Page, name: string): Promise<void> {
    const before = page.url();
    await page.getByText(name, { exact: true }).first().click();
    await expect.poll(() => page.url(), ui(`the page of test "${name}" opens`)).not.toBe(before);
  }

  test('served from 127.0.0.1: the stations, the suites, a transcript attachment and a failure, and no request elsewhere', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${origin}/index.html`);
    for (const station of STATIONS) await expect.poll(() => visible(page, `Environment: "${station}"`), ui(`the group of environment ${station}`)).toBe(1);
    await expect.poll(() => visible(page, 'smoke'), ui('suite "smoke", once per station')).toBe(STATIONS.length);
    await expect.poll(() => visible(page, 'full package'), ui('suite "full package", once per station')).toBe(STATIONS.length);

    await openTest(page, 'module answers AT');
    await page.getByText('AT handshake', { exact: true }).first().click();
    await page.getByText('AT transcript', { exact: true }).first().click();
    await page.getByText('12:00:00.010 [TX] AT+QIOTINFO?').first().waitFor();

    await page.goto(`${origin}/index.html`);
    await openTest(page, 'serial port stays open');
    await page.getByText('bench-a: serial port /dev/ttyUSB2 vanished').first().waitFor();

    await page.goto(`${origin}/index.html`);
    await page.getByText('Categories', { exact: false }).first().click();
    await page.getByText('Infrastructure failures', { exact: false }).first().waitFor();
    await page.close();

    expect(requests.filter((u) => u.startsWith(origin)).length, 'requests to the local server').toBeGreaterThan(0);
    expect(offMachine(), 'requests that left 127.0.0.1').toEqual([]);
  });

  test('opened from file://, as an engineer opens a copied report', async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(pathToFileURL(path.join(report(2), 'index.html')).href);
    await expect.poll(() => visible(page, 'readback equals v2_0_0'), ui('test "readback equals v2_0_0", once per station')).toBe(STATIONS.length);
    await page.close();
    expect(offMachine(), 'requests that left 127.0.0.1').toEqual([]);
  });
});

// Every RigError subclass exported under rig/ must land in its kind's category, as vitest hands it to
// allure-vitest (processError → toJSON, its stack as the trace) and as Allure 3 matches categories.json.
describe('categories of the rig errors', () => {
  const KIND_CATEGORY: Record<string, string> = {
    infrastructure: 'infrastructure', protocol: 'protocol', firmware: 'firmware', config: 'config', usage: 'config', internal: 'internal',
  };
  // Argument shapes of the rig's error constructors; a class none of them builds fails the test by name.
  const details = { station: 'bench-x', port: '/dev/ttyX', command: 'AT', expected: 'OK', seen: 'nothing', waitedMs: 1, final: 'ERROR', finalLine: 'ERROR' };
  const SHAPES: unknown[][] = [
    ['a summary', details],
    [details],
    ['AT', 1, 'text', details],
    ['read back', { address: 0, length: 1, differingBytes: 1, differences: [] }, details],
    ['rig.config.ts', [], 'bench-x'],
  ];

  async function rigErrorClasses(): Promise<Map<string, new (...a: unknown[]) => Error>> {
    const { RigError } = await import('../rig/errors.ts');
    const files = (await readdir(path.join(root, 'rig'), { recursive: true }))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts') && !f.split(path.sep).includes('testing'));
    const out = new Map<string, new (...a: unknown[]) => Error>();
    for (const f of files) {
      const text = await readFile(path.join(root, 'rig', f), 'utf8');
      if (!/export (abstract )?class \w+ extends \w*Error\b/.test(text)) continue;
      const mod = (await import(pathToFileURL(path.join(root, 'rig', f)).href)) as Record<string, unknown>;
      for (const [name, v] of Object.entries(mod)) {
        if (typeof v === 'function' && v.prototype instanceof RigError) out.set(`${f}:${name}`, v as new (...a: unknown[]) => Error);
      }
    }
    return out;
  }

  test('every RigError subclass exported under rig/ lands in the category of its kind', async () => {
    const { matchCategory, normalizeCategoriesConfig } = await import('@allurereport/core-api');
    const { processError } = await import('@vitest/utils/error');
    const rules = normalizeCategoriesConfig(JSON.parse(await readFile(path.join(root, 'reports', 'categories.json'), 'utf8')) as never);
    const classes = await rigErrorClasses();
    // The hierarchy as it is today, so that a broken enumeration cannot pass on an empty list.
    expect([...classes.keys()]).toEqual(expect.arrayContaining(['at/errors.ts:AtTimeoutError', 'at/errors.ts:AtPortError', 'quecthing/cursor.ts:EventTimeoutError', 'errors.ts:InternalError']));
    const landed: Record<string, string> = {};
    const wanted: Record<string, string> = {};
    for (const [where, C] of classes) {
      let err: (Error & { kind?: string }) | undefined;
      for (const args of SHAPES) {
        try {
          err = new C(...args);
          break;
        } catch {
          // The next shape.
        }
      }
      if (!err) throw new Error(`${where}: none of the argument shapes builds it; add its shape to SHAPES`);
      const serialized = processError(err) as { message?: string; stack?: string };
      const category = matchCategory(rules, { status: 'failed', labels: [], message: serialized.message, trace: serialized.stack } as never);
      landed[where] = category?.id ?? '(none)';
      wanted[where] = err.name === 'AbortedError' ? 'aborted' : (KIND_CATEGORY[err.kind ?? ''] ?? `(no category for kind ${err.kind})`);
    }
    expect(landed).toEqual(wanted);
  });

  test('a programming error that is not a RigError is a rig bug', async () => {
    const { matchCategory, normalizeCategoriesConfig } = await import('@allurereport/core-api');
    const rules = normalizeCategoriesConfig(JSON.parse(await readFile(path.join(root, 'reports', 'categories.json'), 'utf8')) as never);
    const err = new TypeError("Cannot read properties of undefined (reading 'size')");
    expect(matchCategory(rules, { status: 'broken', labels: [], message: err.message, trace: err.stack } as never)?.id).toBe('internal');
  });
});
