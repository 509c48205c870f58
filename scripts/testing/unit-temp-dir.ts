// vitest globalSetup of the unit project: the run gets a temp dir of its own (TMPDIR for every worker and
// every process they start), and at the end whatever the tests left in it is listed and fails the run
// (exit code 1): the unit tests leave nothing in the temp dir, and a new test that does is named at once.
// The directory is removed either way, so the system's temp dir stays clean even then.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive } from '../../rig/scratch.ts';

/** Caches tools keep in the temp dir across runs (tsx's compiled files, jiti's): linked, not left behind. */
const CACHES = /^(tsx-\d+|jiti)$/;
/** A rig process's scratch directory (rig/scratch.ts); while that process lives, removing it is its job. */
const SCRATCH = /^sota-rig-(\d+)-/;

export default function setup(): () => void {
  const system = os.tmpdir();
  const root = mkdtempSync(path.join(system, 'sota-rig-unit-tmp-'));
  // Some tests run helpers as another user (rig/power's EACCES case): like /tmp, anyone may write here.
  chmodSync(root, 0o1777);
  for (const name of ['jiti', `tsx-${os.userInfo().uid}`]) {
    const shared = path.join(system, name);
    // A cold tsx cache costs every sim and helper process its compile time again: keep the shared one.
    if (!existsSync(shared)) mkdirSync(shared, { recursive: true });
    symlinkSync(shared, path.join(root, name));
  }
  // Station locks stay where every rig process on this machine looks for them.
  process.env.RIG_LOCK_DIR ??= path.join(system, 'sota-rig-locks');
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    const left = readdirSync(root).filter((name) => {
      if (CACHES.test(name)) return false;
      const owner = SCRATCH.exec(name);
      return !(owner && processAlive(Number(owner[1])));
    });
    rmSync(root, { recursive: true, force: true });
    if (left.length > 0) {
      process.stderr.write(`\nthe unit tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in their temp dir (each test removes what it makes): ${left.join(', ')}\n`);
      process.exitCode = 1;
    }
  };
}
