// Once per `vitest run` of the suites project: a directory the suite files (separate worker processes)
// share for the run, where each station's health ledger lives (support/health.ts), removed at the end; and
// the ProductSecret check over every result the run wrote (support/secrets.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { allureResultsDir } from './support/allure.ts';
import { secretLeaks, stationSecrets } from './support/secrets.ts';
import { ROOT, STATION } from './support/station-config.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    sotaRunDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sota-suites-'));
  project.provide('sotaRunDir', dir);
  const started = Date.now();
  const secrets = await stationSecrets(ROOT, STATION);
  return () => {
    rmSync(dir, { recursive: true, force: true });
    // Every result and attachment the run wrote, read back: a ProductSecret there fails the run.
    const leaks = secretLeaks(allureResultsDir(ROOT), started, secrets);
    if (leaks.length > 0) {
      process.stderr.write(`\nthe station's ProductSecret is in ${leaks.length} file(s) the suites wrote:\n${leaks.map((l) => `  ${l}`).join('\n')}\n`);
      process.exitCode = 1;
    }
  };
}
