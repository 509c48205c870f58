// The sweep runner on a made-up device: a point fails when its fault lands inside [1300, 1460) of the
// calibrated timeline, and each point takes 10 s of a clock the test owns. What is checked is the runner's
// part: order, saving after each point, the records kept, the budget, resume, bisection rounds, Ctrl-C and
// a broken station.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, InfrastructureError } from '../../errors.ts';
import type { PlannedPoint, PointResult, SweepSettings, SweepState } from './model.ts';
import { failingStretches, planPoints } from './plan.ts';
import type { PointRun } from './point.ts';
import { heatStrip, matrixCells, matrixOf } from './report.ts';
import { formatDuration, newSweepState, parseSweepState, progressOf, runSweep, SweepDir } from './sweep.ts';
import { dutRecord, result } from './testing/records.ts';
import { timelineOf } from './timeline.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-sweep-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const record = dutRecord();
const tl = timelineOf(record);
const ACTION = 'power-cycle-target=500';

function sweep(o: Partial<SweepSettings> = {}): SweepState {
  const settings: SweepSettings = {
    mode: 'dut',
    station: 'virtual',
    manifest: 'fixtures/mcu/manifest.json',
    package: { name: 'full_2_0_0', sha256: 'a' },
    from: { key: '1_0_0', version: '1_0_0', sha256: 'b' },
    bootloader: null,
    actions: [ACTION],
    windows: ['swap'],
    points: 8,
    everyMs: null,
    refine: 0,
    allow: ['upgraded', 'rolled-back', 'failed-intact'],
    nextCheck: true,
    calibrationRuns: 1,
    reportWithinMs: null,
    settleMs: null,
    ...o,
  };
  const s = newSweepState(settings);
  s.calibration = { records: ['records/calibration.json'], verdict: 'upgraded', durationMs: 5000, timeline: tl };
  s.points = planPoints(tl, settings.windows, settings.actions, { points: settings.points ?? 8 });
  return s;
}

/** The made-up device: lands each fault 2 ms after it was aimed; the clock advances 10 s a point. */
function device(clock: { t: number }, o: { throwAt?: number[]; errorAt?: number[]; onPoint?: (p: PlannedPoint) => void } = {}) {
  const ran: number[] = [];
  return {
    ran,
    runPoint: async (p: PlannedPoint): Promise<PointRun> => {
      ran.push(p.id);
      o.onPoint?.(p);
      clock.t += 10_000;
      if (o.throwAt?.includes(p.id)) throw new InfrastructureError('OpenOCD died', { station: 'virtual' });
      const landed = p.at + 2;
      const fails = landed >= 1300 && landed < 1460;
      const r: PointResult = result(p.id, landed, o.errorAt?.includes(p.id) ? 'error' : fails ? 'fail' : 'pass', { fault: p.fault, at: p.at, window: p.window, durationMs: 10_000 });
      return { result: r, record, next: fails ? undefined : record };
    },
  };
}

describe('runSweep', () => {
  test('every point once, in order, saved after each; failing points keep their record', async () => {
    const dir = SweepDir.make(path.join(tmp, 'all'));
    const clock = { t: 0 };
    const d = device(clock);
    const seen: number[] = [];
    const s = await runSweep(sweep(), dir, { runPoint: d.runPoint, now: () => clock.t, hooks: { finished: () => seen.push(parseSweepState(readFileSync(dir.stateFile, 'utf8'), 'x').results.length) } });
    expect(s.status).toBe('complete');
    expect(d.ran).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Saved before the hook heard of each point.
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const failing = s.results.filter((r) => r.status === 'fail');
    expect(failing.length).toBeGreaterThan(0);
    for (const r of failing) expect(r.record).toMatch(/^records\/point-00\d-bricked\.json$/);
    expect(readdirSync(path.join(dir.path, 'records')).sort()).toEqual(failing.map((r) => path.basename(r.record!)).sort());
    expect(s.sessions).toHaveLength(1);
    expect(s.sessions[0]).toMatchObject({ points: 8, ms: 80_000 });
    expect(() => SweepDir.make(dir.path)).toThrow(ConfigError);
  });

  test('--budget: no point starts that would end after it; --resume carries on where it stopped', async () => {
    const dir = SweepDir.make(path.join(tmp, 'budget'));
    const clock = { t: 0 };
    const first = device(clock);
    const s = await runSweep(sweep(), dir, { runPoint: first.runPoint, now: () => clock.t, budgetMs: 35_000 });
    // The first point's estimate is the calibration's (5 s, twice with the next upgrade); then 10 s each.
    expect(first.ran).toEqual([1, 2, 3]);
    expect(s.status).toBe('stopped-budget');
    expect(s.stoppedWhy).toMatch(/5 points left/);
    expect(progressOf(s)).toMatchObject({ done: 3, total: 8, etaMs: 50_000, pointMs: 10_000 });
    const again = dir.load();
    const second = device(clock);
    const done = await runSweep(again, dir, { runPoint: second.runPoint, now: () => clock.t });
    expect(second.ran).toEqual([4, 5, 6, 7, 8]);
    expect(done.status).toBe('complete');
    expect(done.sessions).toHaveLength(2);
    expect(done.results.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // What the calibration spent counts against the budget too.
    const late = await runSweep(sweep(), undefined, { runPoint: device(clock).runPoint, now: () => clock.t, budgetMs: 35_000, spentMs: 30_000 });
    expect([late.status, late.results.length]).toEqual(['stopped-budget', 0]);
  });

  test('--refine: bisection rounds close in on both edges of the failing stretch', async () => {
    const clock = { t: 0 };
    const widths: [number, number][] = [];
    for (const refine of [0, 3]) {
      const s = await runSweep(sweep({ refine, points: 6 }), undefined, { runPoint: device(clock).runPoint, now: () => clock.t });
      const [st] = failingStretches(tl, s.results, [ACTION]);
      widths.push([st!.first.landed - st!.before!.landed, st!.after!.landed - st!.last.landed]);
      if (refine === 3) {
        expect(s.refineRounds).toBe(3);
        expect(s.points.filter((p) => p.round > 0).length).toBe(6);
        // Both edges bracket the device's true ones.
        expect(st!.before!.landed).toBeLessThan(1300);
        expect(st!.first.landed).toBeGreaterThanOrEqual(1300);
        expect(st!.last.landed).toBeLessThan(1460);
        expect(st!.after!.landed).toBeGreaterThanOrEqual(1460);
      }
    }
    expect(widths[1]![0]).toBeLessThan(widths[0]![0] / 4);
    expect(widths[1]![1]).toBeLessThan(widths[0]![1] / 4);
  });

  test('no neighbours that differ: no bisection round is planned', async () => {
    const clock = { t: 0 };
    const s = await runSweep(sweep({ refine: 2, windows: ['trial'], points: 3 }), undefined, { runPoint: device(clock).runPoint, now: () => clock.t });
    expect(s.status).toBe('complete');
    expect(s.points).toHaveLength(3);
  });

  test('Ctrl-C: the state is saved as interrupted, the point that was cut runs again on resume', async () => {
    const dir = SweepDir.make(path.join(tmp, 'abort'));
    const clock = { t: 0 };
    const ac = new AbortController();
    const d = device(clock, { onPoint: (p) => p.id === 3 && ac.abort(new Error('interrupted (SIGINT)')) });
    await expect(runSweep(sweep(), dir, { runPoint: d.runPoint, now: () => clock.t, signal: ac.signal })).rejects.toThrow('SIGINT');
    const saved = dir.load();
    expect(saved.status).toBe('stopped-interrupted');
    expect(saved.results.map((r) => r.id)).toEqual([1, 2]);
    const again = device(clock);
    await runSweep(saved, dir, { runPoint: again.runPoint, now: () => clock.t });
    expect(again.ran[0]).toBe(3);
  });

  test('the rig’s own trouble: a point that threw counts as an error; three in a row stop the sweep as broken, and they run again on resume', async () => {
    const clock = { t: 0 };
    const s = await runSweep(sweep(), undefined, { runPoint: device(clock, { throwAt: [2], errorAt: [4, 5, 6] }).runPoint, now: () => clock.t });
    expect(s.status).toBe('stopped-broken');
    expect(s.stoppedWhy).toMatch(/3 points in a row/);
    expect(s.results.map((r) => [r.id, r.status])).toEqual([
      [1, 'pass'],
      [2, 'error'],
      [3, 'fail'],
    ]);
    expect(s.results[1]!.why).toContain('OpenOCD died');
    const again = device(clock);
    const done = await runSweep(s, undefined, { runPoint: again.runPoint, now: () => clock.t });
    expect(again.ran).toEqual([2, 4, 5, 6, 7, 8]);
    expect(done.status).toBe('complete');
  });

  test('a sweep.json of another kind is refused, naming what it is', () => {
    expect(() => parseSweepState('{"format":"sota-rig/run-record","version":1}', 'x.json')).toThrow(/not a sota-rig\/sweep v1/);
    expect(() => parseSweepState('nope', 'x.json')).toThrow(ConfigError);
    expect(formatDuration(61_000)).toBe('1 min 01 s');
    expect(formatDuration(3_720_000)).toBe('1 h 02 min');
  });
});

describe('what a sweep reports', () => {
  const s = sweep({ actions: [ACTION, 'reset-target=100'] });
  s.results = [
    result(1, 1250, 'pass'),
    result(2, 1350, 'fail', { record: 'records/point-002-bricked.json' }),
    result(3, 1450, 'fail', { verdict: 'upgraded', outcome: 'upgraded', next: { package: 'full_1_0_0', verdict: 'failure (plan-not-answered)', ok: false, summary: '' } }),
    result(4, 1700, 'pass', { action: 'reset-target=100', landedWindow: 'trial', verdict: 'rolled-back' }),
    result(5, 1300, 'not-fired', { landed: null, landedWindow: null }),
  ];

  test('the matrix: window where the fault landed × action → verdict counts', () => {
    const m = matrixOf(s);
    expect(m.columns).toEqual(['upgraded', 'rolled-back', 'bricked', 'upgraded, next failed', 'not fired']);
    expect(matrixCells(m)).toEqual([
      ['window', 'action', 'points', ...m.columns],
      ['swap', ACTION, '4', '1', '0', '1', '1', '1'],
      ['trial', 'reset-target=100', '1', '0', '1', '0', '0', '0'],
    ]);
    expect(m.rows[0]!.failing).toBe(2);
  });

  test('the heat strip: a mark per point, failing ones linked to their records, text escaped', () => {
    const svg = heatStrip(s, (r) => (r.record ? `records/${path.basename(r.record)}` : undefined));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<a /g)).toHaveLength(1);
    expect(svg).toContain('href="records/point-002-bricked.json"');
    expect(svg.match(/<title>point \d/g)).toHaveLength(5);
    expect(svg).not.toMatch(/<title>[^<]*[&][^a-z#]/);
    // Both actions have a row.
    expect(svg).toContain('>reset-target=100</text>');
  });
});
