// `npm run soak`: `rig upgrade` on the virtual station stopped at each phase of an upgrade by each way a run
// gets stopped — a terminal's Ctrl-C (SIGINT to the whole job), its hang-up (SIGHUP to the job), `kill`
// (SIGTERM to the rig), and the death of its parent (the `npx` or shell a CI timeout kills: SIGKILL to a
// `sh` that stays its parent). For each: how the rig ended, the processes it started that are still running
// (0), the directories it left in the temp dir (0), whether its lock was freed only once every helper had
// stopped (yes), and what run record it wrote, if any (never one that passed: the run did not finish).
// Options: --signals SIGINT,SIGHUP,SIGTERM,parent  --phases <step>,…  --out FILE (reports/soak/latest.json).
// Exit 0 when every run passed, 1 otherwise, 64 for a usage error. Takes 20–40 minutes on a loaded Pi.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandLine, descendants, isGone } from '../rig/station/testing/procs.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const STOPS = ['SIGINT', 'SIGHUP', 'SIGTERM', 'parent'] as const;
type Stop = (typeof STOPS)[number];
/** Steps of `rig upgrade` (its `▸` lines): opening the station, then the flow. */
const PHASES = ['virtual: start the virtual station', 'virtual: probe (OpenOCD)', 'baseline', 'request plan', 'download', 'read blocks', 'program', 'read back', 'report version'];

const { values } = parseArgs({ options: { signals: { type: 'string' }, phases: { type: 'string' }, out: { type: 'string', default: 'reports/soak/latest.json' } } });
const stops = (values.signals?.split(',') ?? [...STOPS]) as Stop[];
const phases = values.phases?.split(',') ?? PHASES;
for (const s of stops) {
  if (!STOPS.includes(s)) {
    process.stderr.write(`soak: --signals: ${s} is none of ${STOPS.join(', ')}\n`);
    process.exit(64);
  }
}

interface Row {
  stop: Stop;
  phase: string;
  /** How the rig ended: its exit code or signal (unknown after its parent died: it is not our child). */
  ended: string;
  msToEnd: number;
  leftProcesses: string[];
  leftDirectories: string[];
  /** Helpers still running when the lock became free (must be none). */
  aliveAtLockRelease: string[] | 'lock never freed';
  /** The verdict of the record it wrote (`PASS …` must never be: the run was stopped), or none. */
  record: string | undefined;
  ok: boolean;
  note?: string;
}

function once<T>(fn: (resolve: (v: T) => void) => void, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    fn((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/** Waits, bounded, for processes that are not our children to go: /proc is all there is to read. */
async function stillRunningAfter(pids: number[], ms: number): Promise<number[]> {
  const end = performance.now() + ms;
  let left = pids.filter((p) => !isGone(p));
  while (left.length > 0 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter((p) => !isGone(p));
  }
  return left;
}

async function runOne(stop: Stop, phase: string): Promise<Row> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sota-rig-soak-'));
  const lockDir = path.join(work, 'locks');
  const record = path.join(work, 'run.json');
  const rigArgs = ['bin/rig.js', 'upgrade', 'virtual', '--package', 'full_2_0_0', '--from', '1_0_0', '-o', record];
  const env = { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_LOCK_DIR: lockDir, RIG_NO_STALE_CHECK: '1' };
  // A job of its own, as a shell starts one; for `parent`, under a shell that stays the rig's parent.
  const [cmd, args]: [string, string[]] = stop === 'parent' ? ['sh', ['-c', '"$0" "$@"; true', process.execPath, ...rigArgs]] : [process.execPath, rigArgs];
  const child: ChildProcess = spawn(cmd, args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const ended = new Promise<string>((resolve) => {
    if (stop === 'parent') child.stdout!.once('end', () => resolve('gone (not our child)'));
    else child.once('exit', (code, sig) => resolve(sig ? `killed by ${sig}` : `exit ${code}`));
  });
  child.stdout!.resume();
  const lines = createInterface({ input: child.stderr! });
  lines.on('line', (l) => (stderr += `${l}\n`));
  let row: Row;
  try {
    await once<void>((done) => lines.on('line', (l) => l === `▸ ${phase}` && done()), 300_000, `step "${phase}"`);
    const rig = stop === 'parent' ? descendants(child.pid!).find((p) => commandLine(p).includes('bin/rig.js'))! : child.pid!;
    const helpers = descendants(rig);
    // The lock holder (flock and the cat under it) goes as the lock goes: the others must be gone before.
    const safeState = helpers.filter((p) => !/^(flock |cat$|sh -c echo locked)/.test(commandLine(p)));
    const described = new Map(helpers.map((p) => [p, `${p} ${commandLine(p).slice(0, 60)}`]));
    const lockFile = path.join(lockDir, `process-${rig}`, 'virtual.lock');
    // Opened now, before the rig unlinks it: flock then waits on the very inode the rig holds.
    const waiter = existsSync(lockFile) ? spawn('sh', ['-c', 'exec 9<"$0"; flock -x -w 120 9', lockFile], { stdio: 'ignore' }) : undefined;
    const atRelease = new Promise<string[] | 'lock never freed'>((resolve) => {
      if (!waiter) return resolve([]);
      waiter.once('exit', (code) => resolve(code === 0 ? safeState.filter((p) => !isGone(p)).map((p) => described.get(p)!) : 'lock never freed'));
    });
    const t1 = performance.now();
    if (stop === 'SIGTERM') process.kill(rig, 'SIGTERM');
    else if (stop === 'parent') process.kill(child.pid!, 'SIGKILL');
    else process.kill(-child.pid!, stop);
    const how = await once<string>((done) => void ended.then(done), 120_000, 'the rig to end');
    const msToEnd = Math.round(performance.now() - t1);
    const left = await stillRunningAfter([rig, ...helpers], 10_000);
    const leftDirs = [...readdirSync(os.tmpdir()).filter((n) => n.startsWith(`sota-rig-${rig}-`)), ...(existsSync(path.join(lockDir, `process-${rig}`)) ? [`${lockDir}/process-${rig}`] : [])];
    const release = await atRelease;
    const verdict = existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { verdict: { ok: boolean; summary: string } }).verdict : undefined;
    // Interrupted: 130 once the station is safe, or the signal itself once the last handler re-raised it.
    const expectedEnd = stop === 'parent' || how === 'exit 130' || how === `killed by ${stop}`;
    const ok = left.length === 0 && leftDirs.length === 0 && Array.isArray(release) && release.length === 0 && verdict?.ok !== true && expectedEnd;
    row = {
      stop,
      phase,
      ended: how,
      msToEnd,
      leftProcesses: left.map((p) => described.get(p) ?? `${p}`),
      leftDirectories: leftDirs,
      aliveAtLockRelease: release,
      record: verdict ? `${verdict.ok ? 'PASS' : 'not passed'}: ${verdict.summary}` : undefined,
      ok,
      ...(ok ? {} : { note: stderr.split('\n').slice(-6).join(' | ') }),
    };
  } catch (err) {
    row = { stop, phase, ended: 'never reached the phase', msToEnd: 0, leftProcesses: [], leftDirectories: [], aliveAtLockRelease: [], record: undefined, ok: false, note: `${(err as Error).message}; ${stderr.split('\n').slice(-6).join(' | ')}` };
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  } finally {
    lines.close();
    rmSync(work, { recursive: true, force: true });
  }
  return row;
}

const load0 = os.loadavg()[0]!;
const rows: Row[] = [];
for (const stop of stops) {
  for (const phase of phases) {
    const r = await runOne(stop, phase);
    rows.push(r);
    const release = Array.isArray(r.aliveAtLockRelease) ? (r.aliveAtLockRelease.length === 0 ? 'after the safe state' : `EARLY (${r.aliveAtLockRelease.join(', ')})`) : r.aliveAtLockRelease;
    process.stdout.write(
      `${r.ok ? 'ok  ' : 'FAIL'} ${stop.padEnd(7)} at ${phase.padEnd(34)} ${r.ended.padEnd(20)} ${String(r.msToEnd).padStart(6)} ms  ` +
        `processes left ${r.leftProcesses.length}, directories left ${r.leftDirectories.length}, lock freed ${release}, record ${r.record?.split(':')[0] ?? 'none'}` +
        `${r.note ? `\n     ${r.note}` : ''}\n`,
    );
  }
}
const load1 = os.loadavg()[0]!;
const failed = rows.filter((r) => !r.ok).length;
process.stdout.write(`\n${rows.length - failed}/${rows.length} runs clean (load ${load0.toFixed(1)} → ${load1.toFixed(1)})\n`);
const out = path.resolve(values.out!);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), load: [load0, load1], rows }, null, 2)}\n`);
process.stdout.write(`written ${out}\n`);
process.exit(failed === 0 ? 0 : 1);
