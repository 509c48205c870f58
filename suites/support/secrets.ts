// Every output of a suite run, checked for the station's ProductSecret: the Allure results and attachments
// the run wrote (AT transcripts, run records, OpenOCD logs, step parameters). The secret is masked where it
// is handled (rig/at's Secrets); this is the check from the outside that nothing found another way out.
// The suites' global teardown runs it and fails the run, naming the file, when a secret is there.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, resolveSecret } from '../../rig/config/index.ts';

/** The secrets the suites' station may hand the module: its ProductSecret (virtual: its configured value). */
export async function stationSecrets(root: string, station: string): Promise<string[]> {
  const config = await loadConfig({ cwd: root });
  const entry = Object.hasOwn(config.stations, station) ? config.stations[station] : undefined;
  if (!entry) return [];
  if (entry.kind === 'virtual') return [entry.productSecret];
  const ref = entry.module.productSecret;
  if (ref === undefined) return [];
  try {
    return [resolveSecret(ref, { station, key: `stations.${station}.module.productSecret`, dotenv: config.dotenv })];
  } catch {
    // Not set: the suites fail on it themselves; there is nothing to look for.
    return [];
  }
}

/** Files under `dir` written since `sinceMs` that contain one of `secrets`, as `<file>: <n> occurrence(s)`. */
export function secretLeaks(dir: string, sinceMs: number, secrets: readonly string[]): string[] {
  const wanted = secrets.filter((s) => s.length >= 4);
  if (wanted.length === 0) return [];
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.mtimeMs < sinceMs) continue;
    const text = readFileSync(file, 'latin1');
    const n = wanted.reduce((k, s) => k + text.split(s).length - 1, 0);
    if (n > 0) out.push(`${file}: ${n} occurrence(s)`);
  }
  return out;
}
