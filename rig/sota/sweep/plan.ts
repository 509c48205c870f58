// Where a sweep aims: N moments spread over the chosen windows of the calibrated timeline (or one every
// <ms>), each turned into a trigger of the fault model and crossed with every action; then, between two
// neighbouring points of an action whose results differ (one passes, the other fails), a point in the middle
// (`--refine k`: k rounds of bisection) until the failing stretch's edges are known to a millisecond or the
// rounds are spent. Pure functions over the timeline and the results.
import { ConfigError } from '../../errors.ts';
import { formatFault, parseFault } from '../faults.ts';
import type { PlannedPoint, PointResult } from './model.ts';
import { describeMoment, triggerAt, windowAt } from './timeline.ts';
import type { SweepWindow, Timeline } from './timeline.ts';

export type Spread = { points: number } | { everyMs: number };

/** The chosen windows of the timeline, in timeline order; a ConfigError names one the calibration did not show. */
export function chosenWindows(tl: Timeline, names: readonly string[]): SweepWindow[] {
  const missing = names.filter((n) => !tl.windows.some((w) => w.name === n));
  if (missing.length > 0) {
    throw new ConfigError(`the calibration run did not go through window${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, {
      expected: `windows of this run: ${tl.windows.map((w) => `${w.name} (${Math.round(w.end - w.start)} ms)`).join(', ')}`,
      seen: names.join(','),
    });
  }
  return tl.windows.filter((w) => names.includes(w.name));
}

/** How many of `n` points each window gets: by its length, at least one each while there are enough. */
function allocate(windows: readonly SweepWindow[], n: number): number[] {
  const lengths = windows.map((w) => Math.max(w.end - w.start, 0));
  const total = lengths.reduce((a, b) => a + b, 0);
  const floor = n >= windows.length ? 1 : 0;
  const rest = n - floor * windows.length;
  const shares = lengths.map((l) => (total > 0 ? (rest * l) / total : rest / windows.length));
  const counts = shares.map((s) => floor + Math.floor(s));
  // Largest remainders take the points rounding left over.
  const order = shares.map((s, i) => ({ i, r: s - Math.floor(s) })).sort((a, b) => b.r - a.r || lengths[b.i]! - lengths[a.i]!);
  for (let k = 0, left = n - counts.reduce((a, b) => a + b, 0); left > 0; k++, left--) counts[order[k % order.length]!.i]!++;
  return counts;
}

/** The calibrated moments a sweep aims at, window by window. */
export function planMoments(tl: Timeline, names: readonly string[], spread: Spread): { window: string; at: number }[] {
  const windows = chosenWindows(tl, names);
  const out: { window: string; at: number }[] = [];
  const counts = 'points' in spread ? allocate(windows, spread.points) : windows.map((w) => Math.max(1, Math.round((w.end - w.start) / spread.everyMs)));
  windows.forEach((w, i) => {
    const n = counts[i]!;
    const step = (w.end - w.start) / Math.max(n, 1);
    // Centred in equal parts: evenly spread, and never twice on the edge two windows share.
    for (let k = 0; k < n; k++) out.push({ window: w.name, at: Math.round((w.start + (k + 0.5) * step) * 10) / 10 });
  });
  return out;
}

/** Points for moments × actions, numbered from `firstId`; a fault the same as one already planned is left out. */
export function pointsAt(tl: Timeline, moments: readonly { window: string; at: number }[], actions: readonly string[], round: number, firstId: number, planned: readonly PlannedPoint[] = []): PlannedPoint[] {
  const taken = new Set(planned.map((p) => p.fault));
  const out: PlannedPoint[] = [];
  let id = firstId;
  for (const m of moments) {
    const { trigger } = triggerAt(tl, m.at);
    for (const action of actions) {
      // The canonical text: what the flow records as fired, so results find their fault.
      const fault = formatFault(parseFault(`${trigger}:${action}`));
      if (taken.has(fault)) continue;
      taken.add(fault);
      out.push({ id: id++, window: m.window, at: m.at, fault, action, round });
    }
  }
  return out;
}

export function planPoints(tl: Timeline, names: readonly string[], actions: readonly string[], spread: Spread): PlannedPoint[] {
  return pointsAt(tl, planMoments(tl, names, spread), actions, 0, 1);
}

/** Results that say something about the image, placed where they landed, per action, in timeline order. */
function placed(results: readonly PointResult[], action: string): (PointResult & { landed: number })[] {
  return results
    .filter((r): r is PointResult & { landed: number } => r.action === action && r.landed !== null && (r.status === 'pass' || r.status === 'fail'))
    .sort((a, b) => a.landed - b.landed || a.id - b.id);
}

export interface Boundary {
  action: string;
  /** The neighbours that differ, in timeline order. */
  left: PointResult & { landed: number };
  right: PointResult & { landed: number };
}

/** Neighbouring points of one action where one passed and the other failed, further apart than 1 ms. */
export function boundaries(results: readonly PointResult[], actions: readonly string[]): Boundary[] {
  const out: Boundary[] = [];
  for (const action of actions) {
    const rs = placed(results, action);
    for (let i = 1; i < rs.length; i++) {
      const [left, right] = [rs[i - 1]!, rs[i]!];
      if (left.status !== right.status && right.landed - left.landed > 1) out.push({ action, left, right });
    }
  }
  return out;
}

/**
 * The next bisection round: a point between the two neighbours of every boundary. A fault lands a little
 * after its trigger (the rig must see the line, then switch a relay), so each point is aimed that much
 * earlier: the median lag (landed − aimed) of the points run so far.
 */
export function refinePoints(tl: Timeline, results: readonly PointResult[], planned: readonly PlannedPoint[], actions: readonly string[], round: number): PlannedPoint[] {
  const lags = results.filter((r) => r.landed !== null).map((r) => r.landed! - r.at).sort((a, b) => a - b);
  const lag = lags.length > 0 ? lags[Math.floor(lags.length / 2)]! : 0;
  const firstId = [...planned, ...results].reduce((m, p) => Math.max(m, p.id), 0) + 1;
  const out: PlannedPoint[] = [];
  for (const b of boundaries(results, actions)) {
    const mid = (b.left.landed + b.right.landed) / 2 - Math.max(lag, 0);
    const at = Math.round(Math.max(mid, tl.windows[0]?.start ?? mid) * 10) / 10;
    const window = windowAt(tl, at)?.name ?? b.left.window;
    out.push(...pointsAt(tl, [{ window, at }], [b.action], round, firstId + out.length, [...planned, ...out]));
  }
  return out;
}

/** A stretch of the timeline where one action's points failed, between the points that passed around it. */
export interface FailingStretch {
  action: string;
  /** What the failing points ended in (`bricked`, `inconsistent` …), with counts. */
  verdicts: Record<string, number>;
  points: number[];
  /** The first and last failing points: the failing window is at least this wide. */
  first: { id: number; landed: number; fault: string };
  last: { id: number; landed: number; fault: string };
  /** The passing points around it (null: none before, or none after): it is at most this wide. */
  before: { id: number; landed: number; fault: string } | null;
  after: { id: number; landed: number; fault: string } | null;
  /** One line with both edges. */
  text: string;
}

const ms = (n: number): string => `${Math.round(n)} ms`;

export function failingStretches(tl: Timeline, results: readonly PointResult[], actions: readonly string[]): FailingStretch[] {
  const out: FailingStretch[] = [];
  for (const action of actions) {
    const rs = placed(results, action);
    for (let i = 0; i < rs.length; i++) {
      if (rs[i]!.status !== 'fail') continue;
      let j = i;
      while (j + 1 < rs.length && rs[j + 1]!.status === 'fail') j++;
      const pick = (r: PointResult & { landed: number }) => ({ id: r.id, landed: r.landed, fault: r.fault });
      const first = pick(rs[i]!);
      const last = pick(rs[j]!);
      const before = i > 0 ? pick(rs[i - 1]!) : null;
      const after = j + 1 < rs.length ? pick(rs[j + 1]!) : null;
      const verdicts: Record<string, number> = {};
      for (const r of rs.slice(i, j + 1)) verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
      const edge = (pass: typeof before, fail: typeof first, side: 'starts' | 'ends') =>
        pass
          ? `${side} between ${describeMoment(tl, Math.min(pass.landed, fail.landed))} and ${describeMoment(tl, Math.max(pass.landed, fail.landed))} (points ${side === 'starts' ? `${pass.id} pass, ${fail.id} fail` : `${fail.id} fail, ${pass.id} pass`}; ${ms(Math.abs(fail.landed - pass.landed))} apart)`
          : `${side} at or ${side === 'starts' ? 'before' : 'after'} ${describeMoment(tl, fail.landed)} (point ${fail.id}, no passing point ${side === 'starts' ? 'before' : 'after'} it)`;
      const width = `failing for at least ${ms(last.landed - first.landed)}${before && after ? `, at most ${ms(after.landed - before.landed)}` : ''}`;
      out.push({
        action,
        verdicts,
        points: rs.slice(i, j + 1).map((r) => r.id),
        first,
        last,
        before,
        after,
        text: `${action}: ${Object.entries(verdicts).map(([v, n]) => `${n} ${v}`).join(', ')}; ${edge(before, first, 'starts')}; ${edge(after, last, 'ends')}; ${width}`,
      });
      i = j;
    }
  }
  return out;
}
