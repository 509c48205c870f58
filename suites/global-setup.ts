// Once per `vitest run` of the suites project: a directory the suite files (separate worker processes)
// share for the run, where each station's health ledger lives (support/health.ts). Removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    sotaRunDir: string;
  }
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sota-suites-'));
  project.provide('sotaRunDir', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
