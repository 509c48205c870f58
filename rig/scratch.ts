// Scratch directories (OpenOCD's read-back files, the virtual station's ptys, xdelta3's inputs) carry the pid
// of the rig process that made them: `sota-rig-<pid>-<what>-XXXXXX` in the temp dir. Each is removed when its
// owner is done with it, and at exit; a rig killed outright (SIGKILL, the OOM killer, the Pi losing power)
// cannot, so the next rig to open a station sweeps those whose process is gone. The pid is the whole test: a
// directory of a live process (any process: pids are reused) is left alone until that process has gone too.
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const OWNED = /^sota-rig-(\d+)-/;

/** The `mkdtemp` prefix for a scratch directory of this process: `<parent>/sota-rig-<pid>-<what>-`. */
export function scratchPrefix(what: string, parent: string = os.tmpdir()): string {
  return path.join(parent, `sota-rig-${process.pid}-${what}-`);
}

/** True while a process with this pid exists (EPERM: it exists, as another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the entries of `dir` named `sota-rig-<pid>-…` (and `<prefix><pid>` for `owned`) whose process is
 * gone; returns the paths removed. Never throws: a sweep that cannot read or remove something leaves it.
 */
export function sweepScratch(dir: string = os.tmpdir(), owned: RegExp = OWNED): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = owned.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    const full = path.join(dir, name);
    try {
      rmSync(full, { recursive: true, force: true });
      removed.push(full);
    } catch {
      // Another user's, or being removed by another sweeper: left for later.
    }
  }
  return removed;
}
