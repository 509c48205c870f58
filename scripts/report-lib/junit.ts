// JUnit XML of a farm's night for CI dashboards (GitHub's and GitLab's test summaries read it), from the
// same allure-results the report is built from: one <testsuite> per environment (station, or station@host
// where a station name is on several hosts, exactly as the report's environments), one <testcase> per test
// with its last attempt's verdict, and the earlier attempts of a retried test counted, not listed.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { escapeXml as xmlEscape } from '../qualify-lib/junit.ts';
import { belongsTo, originOf, planEnvironments } from './environments.ts';

interface Result {
  name?: string;
  fullName?: string;
  historyId?: string;
  status?: string;
  start?: number;
  stop?: number;
  statusDetails?: { message?: string; trace?: string };
  labels?: { name: string; value?: string }[];
}

async function readResults(dirs: readonly string[]): Promise<Result[]> {
  const out: Result[] = [];
  for (const dir of dirs) {
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('-result.json')).sort()) {
      out.push(JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Result);
    }
  }
  return out;
}

export interface JunitSummary {
  xml: string;
  suites: { name: string; tests: number; failures: number; errors: number; skipped: number; retried: number }[];
}

/** The JUnit XML of the results in these allure-results directories. */
export async function junitFromResults(dirs: readonly string[], title = 'sota-rig farm'): Promise<JunitSummary> {
  const results = await readResults(dirs);
  const envs = planEnvironments(results.map((r) => originOf(r.labels ?? [])));
  const suites: JunitSummary['suites'] = [];
  const blocks: string[] = [];
  const groups = [...envs.map((e) => ({ name: e.name, has: (r: Result) => belongsTo(e, r.labels ?? []) })), { name: 'no station', has: (r: Result) => !envs.some((e) => belongsTo(e, r.labels ?? [])) }];
  for (const g of groups) {
    // The last attempt of each test is its verdict; the attempts before it were retries.
    const byTest = new Map<string, Result[]>();
    for (const r of results.filter(g.has)) {
      const key = r.historyId ?? r.fullName ?? r.name ?? '';
      byTest.set(key, [...(byTest.get(key) ?? []), r]);
    }
    if (byTest.size === 0) continue;
    const cases: string[] = [];
    const s = { name: g.name, tests: 0, failures: 0, errors: 0, skipped: 0, retried: 0 };
    let seconds = 0;
    for (const attempts of [...byTest.values()].sort((a, b) => (a[0]!.fullName ?? '').localeCompare(b[0]!.fullName ?? ''))) {
      attempts.sort((a, b) => (a.stop ?? 0) - (b.stop ?? 0));
      const r = attempts.at(-1)!;
      const time = Math.max(0, ((r.stop ?? 0) - (r.start ?? 0)) / 1000);
      seconds += time;
      s.tests++;
      if (attempts.length > 1) s.retried++;
      const file = /^[^:#]*:(.+?)#/.exec(r.fullName ?? '')?.[1] ?? 'suites';
      const feature = r.labels?.find((l) => l.name === 'feature')?.value;
      const classname = `${g.name}.${feature ?? file}`;
      const message = r.statusDetails?.message ?? '';
      const trace = r.statusDetails?.trace ?? message;
      const retries = attempts.length > 1 ? `\n      <system-out>${xmlEscape(`${attempts.length} attempts; the earlier ones: ${attempts.slice(0, -1).map((a) => a.status).join(', ')}`)}</system-out>` : '';
      let body = '';
      if (r.status === 'failed') {
        s.failures++;
        body = `\n      <failure message="${xmlEscape(message.split('\n')[0] ?? '')}" type="${xmlEscape(trace.split(/[:\n]/)[0] ?? 'failure')}">${xmlEscape(trace)}</failure>`;
      } else if (r.status === 'broken') {
        s.errors++;
        body = `\n      <error message="${xmlEscape(message.split('\n')[0] ?? '')}" type="${xmlEscape(trace.split(/[:\n]/)[0] ?? 'error')}">${xmlEscape(trace)}</error>`;
      } else if (r.status !== 'passed') {
        s.skipped++;
        body = '\n      <skipped/>';
      }
      cases.push(`    <testcase classname="${xmlEscape(classname)}" name="${xmlEscape(r.name ?? '')}" time="${time.toFixed(3)}">${body}${retries}${body || retries ? '\n    ' : ''}</testcase>`);
    }
    suites.push(s);
    blocks.push(`  <testsuite name="${xmlEscape(g.name)}" tests="${s.tests}" failures="${s.failures}" errors="${s.errors}" skipped="${s.skipped}" time="${seconds.toFixed(3)}">\n${cases.join('\n')}\n  </testsuite>`);
  }
  const total = (k: 'tests' | 'failures' | 'errors' | 'skipped') => suites.reduce((n, s) => n + s[k], 0);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${xmlEscape(title)}" tests="${total('tests')}" failures="${total('failures')}" errors="${total('errors')}" skipped="${total('skipped')}">\n${blocks.join('\n')}\n</testsuites>\n`;
  return { xml, suites };
}
