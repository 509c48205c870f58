// Process bookkeeping for station tests: which processes descend from a pid, and whether they are gone.
// Read from /proc, so a test can check "no sim, no socat, no openocd left" without knowing any names.
import { readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  /** Process group and session ids (proc(5) fields 5 and 6). */
  pgrp: number;
  session: number;
}

function stat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
  } catch {
    return undefined;
  }
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

// tsx compiles TypeScript through an `esbuild --service` child of whichever node process loads uncached
// .ts files (the holder, the sim). It is the loader's, not the station's, and it exits on its own only
// after its parent has gone, so counting it would make "nothing left behind" depend on tsx's cache.
const LOADER_SERVICE = /\/esbuild --service=/;

/** Every live process below `root` (children, grandchildren, …), leaving out the TypeScript loader's compiler service. */
export function descendants(root: number): number[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => stat(Number(d)))
    .filter((s): s is ProcStat => s !== undefined && s.state !== 'Z');
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const s of all) {
      if (s.ppid === parent && !out.includes(s.pid) && !LOADER_SERVICE.test(commandLine(s.pid))) {
        out.push(s.pid);
        queue.push(s.pid);
      }
    }
  }
  return out;
}

/** True when the process no longer runs (exited and reaped, or a zombie waiting for its reaper). */
export function isGone(pid: number): boolean {
  const s = stat(pid);
  return s === undefined || s.state === 'Z' || s.state === 'X';
}

/** The session a process belongs to (its leader's pid); undefined once it is gone. */
export function sessionOf(pid: number): number | undefined {
  return stat(pid)?.session;
}
