// Temporary directories for tests, made in the temp dir and removed with everything in them by one call, so
// that a test file can leave nothing behind: `const tmp = tempDirs(); afterAll(tmp.remove);`.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TempDirs {
  /** A fresh directory `<temp dir>/<prefix>XXXXXX`. */
  make(prefix: string): string;
  /** Removes every directory made so far. */
  remove(): void;
}

export function tempDirs(): TempDirs {
  const made: string[] = [];
  return {
    make(prefix) {
      const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    remove() {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
