import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../errors.ts';
import { formatFault, parseFault } from '../faults.ts';
import { boundaries, failingStretches, planMoments, planPoints, refinePoints } from './plan.ts';
import { dutRecord, result } from './testing/records.ts';
import { timelineOf } from './timeline.ts';

const tl = timelineOf(dutRecord());

describe('planning a sweep', () => {
  test('N moments spread over the windows by their length, at least one each, centred in equal parts', () => {
    const m = planMoments(tl, ['swap', 'trial'], { points: 10 });
    expect(m).toHaveLength(10);
    // swap 410 ms, trial 130 ms: 7 and 3 (the largest remainder takes the rounding).
    expect(m.filter((x) => x.window === 'swap')).toHaveLength(7);
    const swap = m.filter((x) => x.window === 'swap').map((x) => x.at);
    expect(swap[0]).toBeCloseTo(1210 + 410 / 14, 1);
    expect(swap.every((t) => t > 1210 && t < 1620)).toBe(true);
    // A window of no length still gets its point, at its moment.
    expect(planMoments(tl, ['install', 'swap'], { points: 4 }).filter((x) => x.window === 'install').map((x) => x.at)).toEqual([1210]);
  });

  test('--every: one moment per <ms> of each window', () => {
    const m = planMoments(tl, ['swap'], { everyMs: 41 });
    expect(m).toHaveLength(10);
    expect(m[1]!.at - m[0]!.at).toBeCloseTo(41, 0);
  });

  test('a window the clean run did not show is a ConfigError listing those it did', () => {
    // Cut during the trial boot: no module result, so no trial window.
    const noTrial = timelineOf(dutRecord({ cutAt: 1630 }));
    expect(() => planMoments(noTrial, ['trial'], { points: 3 })).toThrow(ConfigError);
    expect(() => planMoments(noTrial, ['trial'], { points: 3 })).toThrow(/swap \(\d+ ms\)/);
  });

  test('points are moments × actions, each fault in the model’s canonical text, the same fault never twice', () => {
    const pts = planPoints(tl, ['install', 'swap'], ['power-cycle-target=500', 'reset-target=100'], { points: 3 });
    expect(pts.map((p) => p.id)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const p of pts) expect(formatFault(parseFault(p.fault))).toBe(p.fault);
    expect(pts[0]!.fault).toBe('after-update3:power-cycle-target=500');
    expect(new Set(pts.map((p) => p.fault)).size).toBe(pts.length);
    // Two moments of a window of no length are one trigger: planned once.
    expect(planPoints(tl, ['install'], ['reset-target=100'], { points: 3 })).toHaveLength(1);
  });
});

describe('bisection and failing windows', () => {
  const results = [result(1, 1250, 'pass'), result(2, 1350, 'fail'), result(3, 1450, 'fail'), result(4, 1550, 'pass'), result(5, 1300.5, 'pass', { status: 'not-fired', landed: null })];

  test('boundaries between neighbours that differ; points that say nothing about the image are left out', () => {
    expect(boundaries(results, ['power-cycle-target=500']).map((b) => [b.left.id, b.right.id])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    // A millisecond apart is as close as a sweep gets.
    expect(boundaries([result(1, 1300, 'pass'), result(2, 1300.8, 'fail')], ['power-cycle-target=500'])).toEqual([]);
  });

  test('a round aims between each pair, earlier by the median lag between aimed and landed', () => {
    const lagged = results.map((r) => ({ ...r, at: r.landed === null ? r.at : r.landed - 4 }));
    const pts = refinePoints(tl, lagged, [], ['power-cycle-target=500'], 1);
    expect(pts.map((p) => p.at)).toEqual([1296, 1496]);
    expect(pts.map((p) => p.round)).toEqual([1, 1]);
    expect(pts.map((p) => p.id)).toEqual([6, 7]);
    expect(pts[0]!.fault).toBe('console=^\\[boot\\] swap unit 1/2 step 1$+56ms:power-cycle-target=500');
  });

  test('the failing stretch with both edges: the points that failed and the passing ones around them', () => {
    const [s] = failingStretches(tl, results, ['power-cycle-target=500']);
    expect(s).toMatchObject({ points: [2, 3], first: { id: 2, landed: 1350 }, last: { id: 3, landed: 1450 }, before: { id: 1 }, after: { id: 4 }, verdicts: { bricked: 2 } });
    expect(s!.text).toContain('starts between swap +40 ms and swap +140 ms');
    expect(s!.text).toContain('failing for at least 100 ms, at most 300 ms');
    const open = failingStretches(tl, [result(1, 1250, 'fail')], ['power-cycle-target=500']);
    expect(open[0]!.text).toContain('no passing point before it');
  });
});
