// Power-fail sweeps (rig/sota/sweep): a clean dut run calibrates the upgrade's windows, then the same upgrade
// runs once per point with the MCU's supply cut at a moment of the bootloader's swap or of the trial boot,
// each point a test of its own ending in its verdict read over SWD, and the device then offered the next
// upgrade as the point left it. The last test draws the matrix and the heat strip. A second sweep finds the
// virtual MCU's unsafe-swap bootloader bricking, and narrows its failing window by bisection.
//
// RIG_SWEEP_POINTS (default 4) sets the points of the first sweep; `rig sweep` runs long sweeps.
import path from 'node:path';
import * as allure from 'allure-js-commons';
import { describe, expect } from 'vitest';
import { ConfigError, InfrastructureError } from '../rig/errors.ts';
import type { FirmwareSet } from '../rig/images/index.ts';
import { parseFault } from '../rig/sota/index.ts';
import { applyCalibration, calibrate, failingStretches, heatStrip, matrixCells, matrixOf, newSweepState, runPoint, runSweep, SweepDir } from '../rig/sota/sweep/index.ts';
import type { Calibration, PointResult, SweepFlows, SweepSettings, SweepState, SweepSubject } from '../rig/sota/sweep/index.ts';
import type { Station } from '../rig/station/index.ts';
import { sotaSuite } from './fixtures.ts';
import type { Sota } from './fixtures.ts';
import { expectDut, expectFaultsFired } from './support/evidence.ts';
import { ROOT } from './support/station-config.ts';

// The built-in station at a quarter of real time: the swap of an 8–9 KiB image takes ~0.3 s, a step of it
// ~20 ms, coarser than the rig's reaction to a console line even on a loaded machine.
const { test, budget, retry, suite } = await sotaSuite({ feature: 'Power-fail sweep', manifest: 'fixtures/mcu/manifest.json', startImage: 'vbl-1.0', speed: { timeScale: 0.25 }, sim: { mcu: true } });
const POINTS = Math.max(1, Number(process.env.RIG_SWEEP_POINTS ?? 4));
const ACTION = 'power-cycle-target=200';
const ALLOW: SweepSettings['allow'] = ['upgraded', 'rolled-back', 'failed-intact'];
const RUNS = path.join(ROOT, 'reports', 'runs');
/** Clean runs per calibration: their median timeline is what the points aim at. */
const CALIBRATION_RUNS = 3;

/** The suite's flows: the sota fixture's, which attach each run's timeline picture to the report. */
const flowsOf = (sota: Sota): SweepFlows => ({ dut: (o) => sota.dut(o), proxy: (o) => sota.upgrade(o), baseline: (image) => sota.baseline(image) });

function subjectOf(images: FirmwareSet, bootloader: string, nextCheck: boolean): SweepSubject {
  return { mode: 'dut', package: images.package('full_2_0_0'), from: images.image('1_0_0'), bootloader: images.image(bootloader), firmware: images, allow: ALLOW, nextCheck };
}

function settingsOf(station: Station, s: SweepSubject, windows: string[], points: number, refine: number): SweepSettings {
  const key = (img: { version: string; sha256: string }) => [...s.firmware.images].find(([, i]) => i.sha256 === img.sha256)?.[0] ?? img.version;
  return {
    mode: s.mode,
    station: station.name,
    manifest: s.firmware.manifestPath,
    package: { name: s.package.name, sha256: s.package.sha256 },
    from: { key: key(s.from), version: s.from.version, sha256: s.from.sha256 },
    bootloader: s.bootloader ? { key: key(s.bootloader), version: s.bootloader.version, sha256: s.bootloader.sha256 } : null,
    actions: [ACTION],
    windows,
    points,
    everyMs: null,
    refine,
    allow: [...s.allow],
    nextCheck: s.nextCheck,
    calibrationRuns: CALIBRATION_RUNS,
    reportWithinMs: null,
    settleMs: null,
  };
}

/** A calibrated sweep kept in a directory of reports/runs, its points planned. */
function startSweep(station: Station, subject: SweepSubject, cal: Calibration, windows: string[], points: number, refine: number): { state: SweepState; dir: SweepDir } {
  const state = newSweepState(settingsOf(station, subject, windows, points, refine));
  const dir = SweepDir.create(RUNS, station.name);
  applyCalibration(state, dir, cal);
  return { state, dir };
}

/** The matrix, the heat strip (failing points linked to their records on disk) and the state, into the report. */
async function attachSweep(state: SweepState, dir: SweepDir, attach: (name: string, content: string, type: string) => void): Promise<void> {
  const svg = heatStrip(state, (r) => (r.record ? `file://${path.join(dir.path, r.record)}` : undefined));
  dir.write('heat-strip.svg', svg);
  attach('heat strip (window × action along the upgrade)', svg, 'image/svg+xml');
  const cells = matrixCells(matrixOf(state));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  attach('matrix (window × action → verdict counts)', `${cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`, 'text/plain');
  attach('sweep.json', `${JSON.stringify(state, null, 2)}\n`, 'application/json');
  for (const r of state.results.filter((x) => x.status === 'fail' && x.record)) {
    await allure.link(`file://${path.join(dir.path, r.record!)}`, `point ${r.id} record (${r.verdict})`);
  }
}

/** A point's result as the test's verdict: the rig's own trouble is its typed error (retried), the rest an assertion. */
function expectPoint(r: PointResult, station: string, record: string | null): void {
  if (r.status === 'error') throw new InfrastructureError(`sweep point ${r.id} ended in the rig's own trouble`, { station, expected: 'a verdict about the image', seen: r.why });
  const where = r.landed === null ? `aimed at ${r.window} @${Math.round(r.at)} ms` : `landed in ${r.landedWindow} @${Math.round(r.landed)} ms`;
  expect(r.status, `${station}: point ${r.id} ${r.fault} (${where}): ${r.why}${record ? `; record ${record}` : ''}`).toBe('pass');
}

describe('power cuts across the swap and the trial boot of the reference MCU', () => {
  let sweep: { state: SweepState; dir: SweepDir; subject: SweepSubject } | undefined;
  const need = () => {
    if (!sweep) throw new ConfigError('the sweep was not calibrated', { expected: 'the calibration test to pass first', seen: 'no calibration' });
    return sweep;
  };

  test('calibrate: clean runs measure the windows', { timeout: 3 * budget.disturbed, retry }, async ({ sota, images, station, recorder }) => {
    const subject = subjectOf(images, 'vbl-1.0', true);
    const cal = await calibrate(station, subject, flowsOf(sota), recorder, CALIBRATION_RUNS);
    const windows = cal.timeline.windows.map((w) => w.name);
    expect(windows).toEqual(expect.arrayContaining(['reads', 'install', 'swap', 'trial']));
    const swap = cal.timeline.windows.find((w) => w.name === 'swap')!;
    // The swap's steps are marks to aim from: five units of three steps.
    expect(cal.timeline.marks.filter((m) => m.t >= swap.start && m.t <= swap.end && /swap unit \d\/\d step/.test(m.trigger))).toHaveLength(15);
    sweep = { ...startSweep(station, subject, cal, ['swap', 'trial'], POINTS, 0), subject: { ...subject, reportWithinMs: cal.reportWithinMs, settleMs: cal.settleMs } };
    expect(sweep.state.points).toHaveLength(POINTS);
    recorder.attach('windows and points', [...cal.timeline.windows.map((w) => `window ${w.name.padEnd(9)} ${Math.round(w.start)}–${Math.round(w.end)} ms (${Math.round(w.end - w.start)} ms): ${w.what}`), ...sweep.state.points.map((p) => `point ${p.id}: ${p.window} @${Math.round(p.at)} ms ${p.fault}`)].join('\n'), 'text/plain');
  });

  for (let i = 0; i < POINTS; i++) {
    test(`point ${i + 1} of ${POINTS}: a power cut, a verdict over SWD, then the next upgrade`, { timeout: 2 * budget.disturbed, retry }, async ({ sota, station, recorder }) => {
      const { state, dir, subject } = need();
      const p = state.points[i]!;
      await allure.displayName(`point ${i + 1} of ${POINTS}: ${p.window} @${Math.round(p.at - state.calibration!.timeline.windows.find((w) => w.name === p.window)!.start)} ms — ${p.fault}`);
      await allure.parameter('window', p.window);
      await allure.parameter('fault', p.fault);
      const run = await runPoint(station, subject, state.calibration!.timeline, p, flowsOf(sota), recorder);
      const r = run.result;
      if (r.status !== 'pass') {
        r.record = dir.keep(`point-${String(p.id).padStart(3, '0')}-${r.status}`, run.record);
        if (run.next) r.nextRecord = dir.keep(`point-${String(p.id).padStart(3, '0')}-next`, run.next);
      }
      // A retried attempt replaces the one before.
      state.results = [...state.results.filter((x) => x.id !== p.id), r].sort((a, b) => a.id - b.id);
      dir.save(state);
      recorder.attach('point', `${JSON.stringify(r, null, 2)}\n`, 'application/json');
      expectPoint(r, station.name, r.record && path.join(dir.path, r.record));
    });
  }

  test('matrix and heat strip: every point judged, none bricked', { timeout: budget.smoke, retry }, async ({ recorder }) => {
    const { state, dir } = need();
    await attachSweep(state, dir, (n, c, t) => recorder.attach(n, c, t));
    expect(state.results.map((r) => r.id)).toEqual(state.points.map((p) => p.id));
    const m = matrixOf(state);
    expect(m.rows.reduce((n, r) => n + r.points, 0)).toBe(POINTS);
    expect(state.results.filter((r) => r.verdict === 'bricked' || r.verdict === 'inconsistent')).toEqual([]);
  });
});

describe('the end of a window', () => {
  // The trial window ends with the module's 10705, a few ms after the MCU confirmed: a point aimed there has
  // its trigger before the upgrade settles and its moment after.
  test('a cut 15 ms after the MCU confirmed still fires (the run waits for it); the confirmed image stays', { timeout: budget.disturbed, retry }, async ({ sota, images }) => {
    const T = suite.timeouts;
    const faults = [parseFault('console=^\\[app\\] confirmed$+15ms:power-cycle-target=200')];
    const run = await sota.dut({ plan: sota.spec(images.package('full_2_0_0')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), faults, reportWithinMs: T.bootMs + Math.round(T.updateWaitMs / 10) + T.marginMs });
    expectFaultsFired(run, faults);
    expectDut(run, 'upgraded');
    // The cut was a start of its own, and the MCU reported the new image after it.
    expect(run.dut.starts.at(-1)?.why).toMatch(/^fault console=/);
    expect(run.dut.starts.at(-1)?.reported).toBe(true);
  });
});

describe('a sweep finds the unsafe-swap bootloader', () => {
  test('power cuts across its swap brick the MCU; bisection narrows the failing window', { timeout: 8 * budget.disturbed, retry }, async ({ sota, images, station, recorder, signal }) => {
    // The next upgrade is not the question here: the bricked points are.
    const subject = subjectOf(images, 'vbl-1.0-unsafe', false);
    const flows = flowsOf(sota);
    const cal = await calibrate(station, subject, flows, recorder, CALIBRATION_RUNS);
    // A clean run may end in a verdict the design allows before any swap (failed-intact: on a loaded machine
    // the MCU can give up a download): it measured nothing of the swap, so this attempt found no window to
    // sweep — the run's circumstance, not the bootloader's, and tried again.
    if (!cal.timeline.windows.some((w) => w.name === 'swap')) {
      throw new InfrastructureError('the calibration run did not reach the swap', { station: station.name, expected: 'a clean run through the swap (upgraded)', seen: cal.records.map((r) => r.verdict.summary).join('; ') });
    }
    const { state, dir } = startSweep(station, subject, cal, ['swap'], 3, 2);
    const bounded = { ...subject, reportWithinMs: cal.reportWithinMs, settleMs: cal.settleMs };
    const final = await runSweep(state, dir, { signal, runPoint: (p) => runPoint(station, bounded, cal.timeline, p, flows, recorder) });
    await attachSweep(final, dir, (n, c, t) => recorder.attach(n, c, t));
    expect(final.status).toBe('complete');
    const trouble = final.results.filter((r) => r.status === 'error');
    if (trouble.length > 0) throw new InfrastructureError('sweep points ended in the rig’s own trouble', { station: station.name, expected: 'a verdict for every point', seen: trouble.map((r) => r.why).join('; ') });
    const bricked = final.results.filter((r) => r.verdict === 'bricked');
    expect(bricked.length, final.results.map((r) => `${r.id} ${r.fault} → ${r.verdict}`).join('\n')).toBeGreaterThan(0);
    for (const r of bricked) expect(r.record, `point ${r.id}: its record is kept`).toMatch(/^records\/point-\d{3}-bricked\.json$/);
    const [stretch] = failingStretches(cal.timeline, final.results, [ACTION]);
    const swap = cal.timeline.windows.find((w) => w.name === 'swap')!;
    recorder.attach('failing window', `${stretch!.text}\n`, 'text/plain');
    // Bricking needs the swap under way: its first failing point landed inside the swap.
    expect(stretch!.first.landed).toBeGreaterThanOrEqual(swap.start);
    expect(stretch!.first.landed).toBeLessThanOrEqual(swap.end);
  });
});
