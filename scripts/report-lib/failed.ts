// The failed tests of a night, for `npm run nightly -- --rerun-failed <report or results dir>`: read from
// an allure-results directory (the last attempt of each test) or from a built single-file report (its
// embedded test results, retries left out), each with the station and host it ran on and the vitest file
// and full name that select it again.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { HOST_LABEL, STATION_LABEL } from './environments.ts';
import { readEmbeddedReportData } from './report-data.ts';

export interface FailedTest {
  station: string | undefined;
  host: string | undefined;
  /** The test file, relative to the project ("suites/full-package.test.ts"). */
  file: string;
  /** vitest's full name: describe blocks and test, space-separated ("full package v1_0_0 → v2_0_0"). */
  name: string;
  status: string;
}

interface ResultLike {
  fullName?: string;
  historyId?: string;
  status?: string;
  stop?: number;
  isRetry?: boolean;
  labels?: { name: string; value?: string }[];
}

const FAILED = new Set(['failed', 'broken']);

/** allure-vitest's fullName: "<project>:<file>#<describe … test>". */
export function splitFullName(fullName: string): { file: string; name: string } | undefined {
  const m = /^[^:#]*:(.+?)#(.+)$/.exec(fullName);
  return m ? { file: m[1]!, name: m[2]! } : undefined;
}

function toFailed(r: ResultLike): FailedTest | undefined {
  if (!FAILED.has(r.status ?? '') || !r.fullName) return undefined;
  const where = splitFullName(r.fullName);
  if (!where) return undefined;
  const label = (n: string) => r.labels?.find((l) => l.name === n)?.value;
  return { station: label(STATION_LABEL), host: label(HOST_LABEL), ...where, status: r.status! };
}

async function fromResults(dir: string): Promise<FailedTest[]> {
  // Retries are separate result files: the last attempt of each test (by its stop time) is its verdict.
  const latest = new Map<string, ResultLike>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('-result.json'))) {
    const r = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as ResultLike;
    const label = (n: string) => r.labels?.find((l) => l.name === n)?.value ?? '';
    const key = `${r.fullName}\n${label(STATION_LABEL)}\n${label(HOST_LABEL)}`;
    const seen = latest.get(key);
    if (!seen || (r.stop ?? 0) >= (seen.stop ?? 0)) latest.set(key, r);
  }
  return [...latest.values()].map(toFailed).filter((f): f is FailedTest => f !== undefined);
}

async function fromReport(index: string): Promise<FailedTest[]> {
  const files = readEmbeddedReportData(await readFile(index, 'utf8'));
  const out: FailedTest[] = [];
  for (const [name, text] of files) {
    if (!name.startsWith('data/test-results/')) continue;
    const r = JSON.parse(text) as ResultLike;
    if (r.isRetry) continue;
    const f = toFailed(r);
    if (f) out.push(f);
  }
  return out;
}

/** The failed tests recorded in `source`: a report directory (or its index.html) or an allure-results directory. */
export async function failedTests(source: string): Promise<FailedTest[]> {
  const index = source.endsWith('.html') ? source : path.join(source, 'index.html');
  if (existsSync(index)) return fromReport(index);
  if (existsSync(source) && (await readdir(source)).some((n) => n.endsWith('-result.json'))) return fromResults(source);
  throw new Error(`${source}: neither a report (no index.html) nor an allure-results directory (no *-result.json)`);
}

/** A vitest -t pattern that selects exactly these full names. */
export function namePattern(names: Iterable<string>): string {
  const escaped = [...new Set(names)].sort().map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return `^(?:${escaped.join('|')})$`;
}
