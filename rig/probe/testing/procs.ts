// Process-table checks for the probe's tests: "no OpenOCD of ours remains" is read from /proc, not
// taken from the driver's word for it.

import { readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  comm: string;
  state: string;
}

function stat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may contain spaces: split after the last ')'.
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const rest = s.slice(close + 2).split(' ');
    return { pid, comm, state: rest[0] as string, ppid: Number(rest[1]), pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      const s = stat(Number(d));
      return s ? [s] : [];
    });
}

/** Processes (zombies included) that are `pid` itself or members of its process group. */
export function groupMembers(pid: number): ProcStat[] {
  return allStats().filter((s) => s.pid === pid || s.pgrp === pid);
}

/** OpenOCD processes whose parent is `parent` (this test process by default). */
export function openOcdChildrenOf(parent = process.pid): ProcStat[] {
  return allStats().filter((s) => s.ppid === parent && (s.comm === 'openocd' || s.comm === 'setpriv'));
}
