// Running a sweep's points to the end, or to its budget, and keeping everything on disk as it goes: after
// each point `sweep.json` is rewritten (atomically) with the result, and every point that did not pass keeps
// its run record under `records/`, so `rig repro` replays exactly that point and `--resume` carries on from
// the first point without a result. When the planned points are done, `--refine` adds bisection rounds
// between neighbours that differ. Station-agnostic: the caller hands in how to run one point.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, isRigError } from '../../errors.ts';
import type { RunRecord } from '../record.ts';
import { serializeRunRecord } from '../record.ts';
import { SWEEP_FORMAT, SWEEP_VERSION } from './model.ts';
import type { PlannedPoint, PointResult, SweepSettings, SweepState } from './model.ts';
import { planPoints, refinePoints } from './plan.ts';
import type { Calibration, PointRun } from './point.ts';
import type { Timeline } from './timeline.ts';

/** A sweep's directory: `sweep.json`, the calibration's record, the kept records, and what the CLI writes beside them. */
export class SweepDir {
  constructor(readonly path: string) {}

  /** `<parent>/sweep-<station>-<UTC time>`, created. */
  static create(parent: string, station: string, now = new Date()): SweepDir {
    return SweepDir.make(path.join(parent, `sweep-${station}-${now.toISOString().replace(/[:.]/g, '-')}`));
  }

  /** A new sweep's directory at `dir` (created); one that holds a sweep already is refused, not overwritten. */
  static make(dir: string): SweepDir {
    const d = new SweepDir(dir);
    if (existsSync(d.stateFile)) throw new ConfigError(`${dir} holds a sweep already`, { expected: 'a new directory, or --resume to carry on with that sweep', seen: d.stateFile });
    mkdirSync(path.join(dir, 'records'), { recursive: true });
    return d;
  }

  get stateFile(): string {
    return path.join(this.path, 'sweep.json');
  }

  load(): SweepState {
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`no sweep in ${this.path}`, { expected: `${this.stateFile}, written by rig sweep`, seen: (err as Error).message });
    }
    return parseSweepState(text, this.stateFile);
  }

  /** Written whole to a temporary file and renamed over the old one: a kill mid-write never leaves half a state. */
  save(state: SweepState): void {
    const tmp = `${this.stateFile}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(tmp, this.stateFile);
  }

  /** Writes a run record under the directory and returns its path relative to it. */
  keep(name: string, record: RunRecord): string {
    const rel = path.join('records', `${name}.json`);
    mkdirSync(path.join(this.path, 'records'), { recursive: true });
    writeFileSync(path.join(this.path, rel), serializeRunRecord(record));
    return rel;
  }

  write(name: string, content: string): string {
    const file = path.join(this.path, name);
    writeFileSync(file, content);
    return file;
  }
}

/** Parses `sweep.json`; a ConfigError says what is wrong with it. */
export function parseSweepState(text: string, origin: string): SweepState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${origin} is not JSON`, { expected: 'a sweep written by rig sweep', seen: (err as Error).message });
  }
  const s = raw as Partial<SweepState> | null;
  if (s?.format !== SWEEP_FORMAT || s.version !== SWEEP_VERSION) {
    throw new ConfigError(`${origin} is not a ${SWEEP_FORMAT} v${SWEEP_VERSION}`, { expected: `format "${SWEEP_FORMAT}", version ${SWEEP_VERSION}`, seen: `format ${JSON.stringify(s?.format)}, version ${JSON.stringify(s?.version)}` });
  }
  for (const key of ['settings', 'points', 'results', 'sessions'] as const) {
    if (s[key] === undefined || s[key] === null) throw new ConfigError(`${origin} lacks its ${key}`, { expected: `a "${key}" entry`, seen: 'none' });
  }
  return s as SweepState;
}

/** The sweep once calibrated: the clean runs' records kept, the dut bounds set, the points planned, saved. */
export function applyCalibration(state: SweepState, dir: SweepDir | undefined, cal: Calibration): void {
  const s = state.settings;
  const durations = cal.records.map((r) => r.durationMs).sort((a, b) => a - b);
  state.calibration = {
    records: dir ? cal.records.map((r, i) => dir.keep(i === 0 ? 'calibration' : `calibration-${i + 1}`, r)) : [],
    verdict: cal.records[0]!.verdict.summary,
    durationMs: Math.round(durations[Math.floor(durations.length / 2)]!),
    timeline: cal.timeline,
  };
  s.reportWithinMs = cal.reportWithinMs ?? null;
  s.settleMs = cal.settleMs ?? null;
  state.points = planPoints(cal.timeline, s.windows, s.actions, s.everyMs !== null ? { everyMs: s.everyMs } : { points: s.points ?? 20 });
  dir?.save(state);
}

export function newSweepState(settings: SweepSettings): SweepState {
  return { format: SWEEP_FORMAT, version: SWEEP_VERSION, createdAt: new Date().toISOString(), settings, calibration: null, points: [], results: [], refineRounds: 0, status: 'calibrating', stoppedWhy: null, sessions: [] };
}

export interface SweepProgress {
  /** Points with a result. */
  done: number;
  /** Points planned so far (a bisection round adds more). */
  total: number;
  failing: number;
  /** Estimated time left for the points planned so far, ms. */
  etaMs: number;
  /** Estimated time of one point, ms. */
  pointMs: number;
}

export interface SweepHooks {
  started?(point: PlannedPoint, progress: SweepProgress): void;
  finished?(result: PointResult, progress: SweepProgress): void;
  /** A bisection round was planned (its points are in the state already). */
  refined?(points: readonly PlannedPoint[], round: number): void;
}

export interface SweepRunOptions {
  runPoint(point: PlannedPoint): Promise<PointRun>;
  signal?: AbortSignal | undefined;
  /** Start no point that would, by the estimate, end later than this many ms after the run began. */
  budgetMs?: number | undefined;
  /** Of the budget, what was spent before the first point (the calibration). */
  spentMs?: number | undefined;
  hooks?: SweepHooks | undefined;
  /** Consecutive points ending in the rig's own trouble after which the station counts as broken. */
  brokenAfter?: number;
  now?: () => number;
}

/** The mean time of the points done so far, else the calibration's (twice, with the next upgrade). */
function pointEstimate(state: SweepState): number {
  const done = state.results.map((r) => r.durationMs).filter((d) => d > 0);
  if (done.length > 0) return done.reduce((a, b) => a + b, 0) / done.length;
  const cal = state.calibration?.durationMs ?? 60_000;
  return cal * (state.settings.nextCheck ? 2 : 1);
}

export function progressOf(state: SweepState): SweepProgress {
  const done = new Set(state.results.map((r) => r.id));
  const left = state.points.filter((p) => !done.has(p.id)).length;
  const pointMs = pointEstimate(state);
  return { done: done.size, total: state.points.length, failing: state.results.filter((r) => r.status === 'fail').length, etaMs: Math.round(left * pointMs), pointMs: Math.round(pointMs) };
}

/** `12 min 40 s`, `8 s`, `1 h 02 min`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function errorResult(p: PlannedPoint, err: unknown, ms: number): PointResult {
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  const kind = isRigError(err) ? err.kind : 'internal';
  return {
    id: p.id,
    fault: p.fault,
    action: p.action,
    window: p.window,
    at: p.at,
    landed: null,
    landedWindow: null,
    status: 'error',
    verdict: `failure (${kind === 'infrastructure' ? 'infrastructure' : 'internal'})`,
    outcome: null,
    summary: message,
    why: `${kind}: ${message}`,
    next: null,
    record: null,
    nextRecord: null,
    durationMs: Math.round(ms),
    finishedAt: new Date().toISOString(),
  };
}

/**
 * Runs the sweep's points that have no result yet, then its bisection rounds; saves after each point.
 * Returns the state with its status: complete, or stopped by the budget or a broken station. Ctrl-C (the
 * signal) leaves the state saved as stopped-interrupted and rethrows; so does a config error (nothing will
 * run better on the next point).
 */
export async function runSweep(state: SweepState, dir: SweepDir | undefined, o: SweepRunOptions): Promise<SweepState> {
  const now = o.now ?? (() => performance.now());
  const tl: Timeline | undefined = state.calibration?.timeline;
  if (!tl) throw new ConfigError('the sweep has no calibration', { expected: 'a calibrated sweep (rig sweep calibrates first)', seen: 'calibration: null' });
  const save = () => dir?.save(state);
  const t0 = now();
  const session = { startedAt: new Date().toISOString(), endedAt: null as string | null, points: 0, ms: 0 };
  state.sessions.push(session);
  const end = (status: SweepState['status'], why: string | null): SweepState => {
    state.status = status;
    state.stoppedWhy = why;
    session.endedAt = new Date().toISOString();
    session.ms = Math.round(now() - t0);
    save();
    return state;
  };
  state.status = 'running';
  state.stoppedWhy = null;
  save();
  // A point that ended in the rig's own trouble said nothing about the image: it runs again.
  state.results = state.results.filter((r) => r.status !== 'error');
  const brokenAfter = o.brokenAfter ?? 3;
  let troubleInARow = 0;
  const { settings } = state;
  for (;;) {
    const done = new Set(state.results.map((r) => r.id));
    const point = state.points.find((p) => !done.has(p.id));
    if (!point) {
      if (state.refineRounds >= settings.refine) return end('complete', null);
      const round = state.refineRounds + 1;
      const added = refinePoints(tl, state.results, state.points, settings.actions, round);
      // No neighbours that differ (or none left to split): later rounds would find none either.
      state.refineRounds = added.length === 0 ? settings.refine : round;
      state.points.push(...added);
      save();
      if (added.length > 0) o.hooks?.refined?.(added, round);
      continue;
    }
    if (o.signal?.aborted) {
      end('stopped-interrupted', 'interrupted before a point started');
      throw o.signal.reason instanceof Error ? o.signal.reason : new Error('interrupted');
    }
    const estimate = pointEstimate(state);
    if (o.budgetMs !== undefined && (o.spentMs ?? 0) + now() - t0 + estimate > o.budgetMs) {
      const left = state.points.length - done.size;
      return end('stopped-budget', `the budget (${formatDuration(o.budgetMs)}) would be exceeded by the next point (about ${formatDuration(estimate)}); ${left} point${left === 1 ? '' : 's'} left`);
    }
    o.hooks?.started?.(point, progressOf(state));
    const p0 = now();
    let result: PointResult;
    try {
      const run = await o.runPoint(point);
      result = run.result;
      if (result.status !== 'pass' && dir) {
        const name = `point-${String(point.id).padStart(3, '0')}-${result.status === 'fail' ? result.verdict.replace(/[^a-z0-9-]+/gi, '-').replace(/-+$/, '') : result.status}`;
        result.record = dir.keep(name, run.record);
        if (run.next) result.nextRecord = dir.keep(`${name}-next`, run.next);
      }
    } catch (err) {
      if (o.signal?.aborted) {
        end('stopped-interrupted', `interrupted during point ${point.id}; it runs again on --resume`);
        throw err;
      }
      if (isRigError(err) && (err.kind === 'config' || err.kind === 'usage')) {
        end('stopped-broken', `point ${point.id}: ${err.message.split('\n')[0]}`);
        throw err;
      }
      result = errorResult(point, err, now() - p0);
    }
    if (o.signal?.aborted) {
      // The flow saw the abort and ended early: its verdict says nothing about the point.
      end('stopped-interrupted', `interrupted during point ${point.id}; it runs again on --resume`);
      throw o.signal.reason instanceof Error ? o.signal.reason : new Error('interrupted');
    }
    state.results.push(result);
    session.points++;
    session.ms = Math.round(now() - t0);
    save();
    o.hooks?.finished?.(result, progressOf(state));
    troubleInARow = result.status === 'error' ? troubleInARow + 1 : 0;
    if (troubleInARow >= brokenAfter) {
      // They run again on --resume: drop them, so the sweep's results hold only points that ran.
      const trouble = state.results.splice(-troubleInARow);
      return end('stopped-broken', `${troubleInARow} points in a row ended in the rig's own trouble (last: ${trouble.at(-1)!.why}); the station looks broken; they run again on --resume`);
    }
  }
}
