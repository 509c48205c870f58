// Process-table checks for the probe's tests: "no OpenOCD of ours remains" is read from /proc, not
// taken from the driver's word for it.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/**
 * The listening sockets a process holds (TCP, TCP6, Unix), as `tcp 127.0.0.1:4444`: its open sockets'
 * inodes matched against the kernel's tables, so "nothing another local user could connect to" is checked,
 * not assumed.
 */
export function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // st 0A = LISTEN; local address as hex ip:port.
      if (f[3] === '0A' && inodes.has(f[9]!)) out.push(`${table} ${f[1]}`);
    }
  }
  for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Flags 00010000 = __SO_ACCEPTCON: a listening socket.
    if (f[3] === '00010000' && inodes.has(f[6]!)) out.push(`unix ${f[7] ?? '(unnamed)'}`);
  }
  return out;
}
