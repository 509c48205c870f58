// A station brought to its safe state from outside any run: what a CI job's clean-up step does after the
// suites, whether they passed, failed, timed out or were cancelled (`rig power <station> safe`). Unlike
// openStation it needs nothing but the power lines to work, so a station whose module or probe is dead is
// still made safe: every line is opened straight at its safe level (no glitch through the configured
// initial level) and released there, and an OpenOCD left behind for this station's probe is stopped, so
// the next job finds the adapter free.
import { readdirSync, readFileSync } from 'node:fs';
import type { HardwareStationConfig, StationConfig } from '../config/schema.ts';
import { InfrastructureError } from '../errors.ts';
import { openPowerLines } from '../power/open.ts';
import { buildProbeArgs } from '../probe/args.ts';
import { lockStation } from './lock.ts';

export interface SafeReport {
  station: string;
  kind: 'virtual' | 'hardware';
  /** Every power line and the level it was left at. */
  lines: { name: string; level: 'on' | 'off' }[];
  /** OpenOCD processes of this station's probe that were still running, and what became of them. */
  openocd: { pid: number; stopped: boolean; how: string }[];
  /** For a virtual station: why there was nothing to do. */
  note?: string;
}

export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/** Running processes whose executable is `name` (from /proc; empty where there is no /proc). */
export function processesNamed(name: string, proc = '/proc'): ProcessInfo[] {
  let entries: string[];
  try {
    entries = readdirSync(proc).filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const out: ProcessInfo[] = [];
  for (const e of entries) {
    try {
      const argv = readFileSync(`${proc}/${e}/cmdline`, 'utf8').split('\0').filter((a) => a.length > 0);
      if (argv.length > 0 && argv[0]!.split('/').at(-1) === name) out.push({ pid: Number(e), argv });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

/**
 * Whether an OpenOCD command line is this station's: it carries every configuration item the rig passes for
 * the station's probe (interface and serial, target), in the rig's own order. An OpenOCD for another probe
 * on the same Pi differs at least in its `adapter serial`.
 */
export function isStationOpenocd(argv: readonly string[], hw: HardwareStationConfig): boolean {
  const wanted = buildProbeArgs(hw.probe).args;
  let at = 1;
  for (const item of wanted) {
    const found = argv.indexOf(item, at);
    if (found < 0) return false;
    at = found + 1;
  }
  return true;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL if it is still there once the grace is over; waits on its exit by pidfd-less polling of kill(0). */
async function stop(pid: number, graceMs: number): Promise<{ stopped: boolean; how: string }> {
  const gone = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      // No pidfd in Node: the process is watched through /proc at a short, bounded interval.
      const deadline = Date.now() + ms;
      const tick = (): void => {
        if (!alive(pid)) resolve(true);
        else if (Date.now() >= deadline) resolve(false);
        else setTimeout(tick, 50);
      };
      tick();
    });
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return { stopped: true, how: 'had already exited' };
  }
  if (await gone(graceMs)) return { stopped: true, how: 'stopped (SIGTERM)' };
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return { stopped: true, how: 'stopped (SIGTERM)' };
  }
  return (await gone(graceMs)) ? { stopped: true, how: 'killed (SIGKILL)' } : { stopped: false, how: `still running ${graceMs} ms after SIGKILL (stuck in the USB driver?)` };
}

/** Drives every line of the station to its safe level and releases it; stops an OpenOCD left for its probe. */
export async function makeSafe(name: string, entry: StationConfig, opts: { signal?: AbortSignal; lockDir?: string; graceMs?: number } = {}): Promise<SafeReport> {
  if (entry.kind === 'virtual') {
    return {
      station: name,
      kind: 'virtual',
      lines: [],
      openocd: [],
      note: 'a virtual station lives inside the rig process that started it: its simulator, lines and OpenOCD end with that process',
    };
  }
  // The lock keeps a clean-up from switching a station that another job is using right now.
  const lock = await lockStation(name, opts.lockDir === undefined ? {} : { dir: opts.lockDir });
  try {
    const openocd: SafeReport['openocd'] = [];
    for (const p of processesNamed('openocd').filter((x) => isStationOpenocd(x.argv, entry))) {
      openocd.push({ pid: p.pid, ...(await stop(p.pid, opts.graceMs ?? 3000)) });
    }
    const atSafe = Object.fromEntries(Object.entries(entry.power.lines).map(([k, l]) => [k, { ...l, initial: l.safe }]));
    const lines = await openPowerLines({ boards: entry.power.boards, lines: atSafe }, { station: name, ...(opts.signal ? { signal: opts.signal } : {}) });
    const levels: SafeReport['lines'] = [];
    try {
      for (const [lineName, line] of lines.lines) levels.push({ name: lineName, level: (await line.get()) ? 'on' : 'off' });
    } finally {
      await lines.close();
    }
    const stuck = openocd.filter((o) => !o.stopped);
    if (stuck.length > 0) {
      throw new InfrastructureError(`OpenOCD for this station's probe would not stop`, {
        station: name,
        expected: 'no OpenOCD left holding the probe',
        seen: stuck.map((o) => `pid ${o.pid}: ${o.how}`).join('; '),
      });
    }
    return { station: name, kind: 'hardware', lines: levels, openocd };
  } finally {
    await lock.release();
  }
}
