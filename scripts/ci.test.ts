// The farm's CI templates and the merge job's script, as CI runs them: the templates through their
// ecosystems' own checkers (npm run lint:ci), and `npm run farm:merge` on the artifacts two Pis' station
// jobs would upload (real allure-vitest results of the report fixture project, and inventories).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runProcess, type Ran } from './testing/run.ts';
import type { Inventory } from '../rig/station/inventory.ts';
import { embeddedJson, readEmbeddedReportData } from './report-lib/report-data.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string): string => path.join(root, 'node_modules', '.bin', name);

function run(cmd: string, args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  return runProcess(cmd, args, { cwd: root, env, timeoutMs: 120_000 });
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'sota-ci-'));
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('npm run lint:ci', () => {
  test('the GitHub workflow and the GitLab pipeline pass actionlint and GitLab’s CI schema', async () => {
    const r = await run(process.execPath, ['scripts/ci-lint.mjs']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('ci/gitlab/farm.gitlab-ci.yml: GitLab CI schema and pipeline clean');
    expect(r.stdout).toMatch(/ci\/github\/farm\.yml: actionlint/);
  });

  test('a workflow with a typo in a matrix property or an undeclared runner label is rejected, with its line', async () => {
    const workflow = (await readFile(path.join(root, 'ci', 'github', 'farm.yml'), 'utf8'))
      .replace('--expect "${{ matrix.station }}"', '--expect "${{ matrix.staton }}"')
      .replace('[self-hosted, linux, sota-rig,', '[self-hosted, linux, sota-rigs,');
    const file = path.join(scratch, 'broken.yml');
    await writeFile(file, workflow);
    const r = await run(process.execPath, ['scripts/ci-lint.mjs', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/broken\.yml:\d+:\d+: property "staton" is not defined/);
    expect(r.stderr).toMatch(/broken\.yml:\d+:\d+: label "sota-rigs" is unknown/);
  });

  test('a pipeline with a key GitLab does not know, or a need of a job that does not exist, is rejected', async () => {
    const pipeline = await readFile(path.join(root, 'ci', 'gitlab', 'farm.gitlab-ci.yml'), 'utf8');
    const unknownKey = path.join(scratch, 'unknown-key.yml');
    await writeFile(unknownKey, pipeline.replace('  resource_group: sota-rig-station-$STATION', '  resource_groups: sota-rig-station-$STATION'));
    const badNeed = path.join(scratch, 'bad-need.yml');
    await writeFile(badNeed, pipeline.replace('needs: [station]', 'needs: [stations]'));
    const r = await run(process.execPath, ['scripts/ci-lint.mjs', '--gitlab', unknownKey, badNeed]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown-key\.yml: gitlab-ci-local \(GitLab's CI schema\) rejects it:[\s\S]*resource_groups/);
    expect(r.stderr).toMatch(/bad-need\.yml: gitlab-ci-local \(GitLab's CI schema\) rejects it:[\s\S]*stations/);
  });
});

describe('npm run farm:merge', () => {
  // Two Pis, as their station jobs leave their artifacts: pi-1 has bench-a, pi-2 has bench-b; both have a
  // station called "virtual".
  const layout = [
    { host: 'pi-1', station: 'bench-a' },
    { host: 'pi-1', station: 'virtual' },
    { host: 'pi-2', station: 'bench-b' },
    { host: 'pi-2', station: 'virtual' },
  ];
  let artifacts: string;
  let merged: Ran;

  beforeAll(async () => {
    artifacts = path.join(scratch, 'farm-artifacts');
    for (const { host, station } of layout) {
      const out = path.join(artifacts, `farm-${host}-${station}`, station);
      const results = path.join(out, 'allure-results');
      const fixture = await run(bin('vitest'), ['run', '--root', 'scripts/report-lib/fixture'], { SOTA_FIXTURE_RESULTS: results, SOTA_FIXTURE_STATION: station, ALLURE_HOST_NAME: host });
      if (!existsSync(results)) throw new Error(`fixture project for ${station}@${host} left no results (exit ${fixture.status}): ${fixture.stderr.slice(-400)}`);
      const inventory: Inventory = {
        host,
        generatedAt: '2026-12-07T02:00:00.000Z',
        rig: '0.1.0',
        node: 'v20.20.2',
        stations: [{ station, kind: 'hardware', host, health: { station, host, at: '2026-12-07T01:31:00.000Z', ok: station !== 'bench-b', summary: 'x', steps: [] } }],
      };
      await writeFile(path.join(out, 'inventory.json'), JSON.stringify(inventory));
    }
    await mkdir(path.join(scratch, 'history'), { recursive: true });
    merged = await run(bin('tsx'), ['scripts/farm-merge.mjs', artifacts, '--history', path.join(scratch, 'history', 'history.jsonl'), '--output', path.join(scratch, 'farm-report'), '--summary', path.join(scratch, 'summary.md')]);
  }, 150_000);

  test('one report: an environment per station, "virtual" split per Pi, nothing counted as a retry', async () => {
    expect(merged.status, merged.stderr + merged.stdout).toBe(0);
    expect(merged.stdout).toContain('farm:merge: 4 results directories, 4 inventories');
    const summary = JSON.parse(await readFile(path.join(scratch, 'farm-report', 'summary.json'), 'utf8')) as { stats: Record<string, number> };
    expect(summary.stats.retries ?? 0).toBe(0);
    const { byId } = JSON.parse(await readFile(path.join(scratch, 'farm-report', 'test-results.json'), 'utf8')) as { byId: Record<string, { environment: string }> };
    const perEnvironment: Record<string, number> = {};
    for (const { environment } of Object.values(byId)) perEnvironment[environment] = (perEnvironment[environment] ?? 0) + 1;
    expect(perEnvironment).toEqual({ 'bench-a': 5, 'bench-b': 5, 'virtual@pi-1': 5, 'virtual@pi-2': 5 });
    // Each station's table says how its last health check went, from its Pi's inventory.
    const files = readEmbeddedReportData(await readFile(path.join(scratch, 'farm-report', 'index.html'), 'utf8'));
    expect(embeddedJson<Record<string, string>>(files, 'widgets/bench-b/variables.json')).toMatchObject({ station: 'bench-b', host: 'pi-2', 'last health': 'FAILED 2026-12-07 01:31' });
    expect(embeddedJson<Record<string, string>>(files, 'widgets/virtual-pi-1/variables.json')).toMatchObject({ station: 'virtual', host: 'pi-1' });
  });

  test('JUnit XML with a suite per environment, and a Markdown summary', async () => {
    const xml = await readFile(path.join(scratch, 'farm-report', 'junit.xml'), 'utf8');
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="sota-rig farm" tests="20" failures="16" errors="0" skipped="0">')).toBe(true);
    const suites = [...xml.matchAll(/<testsuite name="([^"]+)" tests="(\d+)" failures="(\d+)"/g)].map((m) => [m[1], Number(m[2]), Number(m[3])]);
    expect(suites).toEqual([['bench-a', 5, 4], ['bench-b', 5, 4], ['virtual@pi-1', 5, 4], ['virtual@pi-2', 5, 4]]);
    expect(xml).toMatch(/<failure message="bench-a: serial port \/dev\/ttyUSB2 vanished after 1024 bytes" type="InfrastructureError \[infrastructure\]">/);
    expect(await readFile(path.join(scratch, 'summary.md'), 'utf8')).toContain('| virtual@pi-2 | 5 | 1 | 4 | 0 | 0 |');
  });

  test('a second night appends to the history the CI keeps; no artifacts is a one-line failure', async () => {
    const again = await run(bin('tsx'), ['scripts/farm-merge.mjs', artifacts, '--history', path.join(scratch, 'history', 'history.jsonl'), '--output', path.join(scratch, 'farm-report')]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('history holds 2 run(s)');
    const empty = path.join(scratch, 'no-artifacts');
    await mkdir(empty);
    const none = await run(bin('tsx'), ['scripts/farm-merge.mjs', empty]);
    expect(none.status).toBe(1);
    expect(none.stderr.trim()).toBe(`farm:merge: no allure-results under ${empty} (expected the station jobs' artifacts: <station>/allure-results/*-result.json)`);
    expect(await readdir(empty)).toEqual([]);
  });
});
