// Power-fail and fault sweeps (rig sweep, suites/sweep.test.ts): a clean run calibrates the upgrade's
// windows, then the same flow runs again with one fault aimed at each of N moments spread over them, each
// ending in its own verdict read over SWD; bisection narrows a failing stretch; the matrix, the heat strip
// and the kept records say what was found.
//
//   const subject = { mode: 'dut', package, from, bootloader, firmware, allow: ['upgraded', 'rolled-back', 'failed-intact'], nextCheck: true };
//   const flows = sweepFlows(station, { signal });
//   const cal = await calibrate(station, subject, flows);                  // 3 clean runs: cal.timeline.windows, .marks
//   const points = planPoints(cal.timeline, ['swap', 'trial'], ['power-cycle-target=500'], { points: 50 });
//   const { result } = await runPoint(station, { ...subject, reportWithinMs: cal.reportWithinMs, settleMs: cal.settleMs }, cal.timeline, points[0], flows);
//   result.status   // 'pass' | 'fail' | 'not-fired' | 'error'; result.landed: where the fault hit, calibrated ms
//   // or, kept on disk and resumable: runSweep(state, SweepDir.create(...), { runPoint, budgetMs, hooks })
export * from './model.ts';
export { WINDOWS, describeMoment, landedAt, marksOf, mergeTimelines, timelineOf, triggerAt, triggerMoment, windowAt } from './timeline.ts';
export type { Mark, SweepMode, SweepWindow, Timeline } from './timeline.ts';
export { boundaries, chosenWindows, failingStretches, planMoments, planPoints, pointsAt, refinePoints } from './plan.ts';
export type { Boundary, FailingStretch, Spread } from './plan.ts';
export { boundsFromCalibration, calibrate, nextUpgrade, runPoint, sweepFlows } from './point.ts';
export type { CalibrateOptions, Calibration, PointRun, SweepFlows, SweepSubject } from './point.ts';
export { applyCalibration, formatDuration, newSweepState, parseSweepState, progressOf, runSweep, SweepDir } from './sweep.ts';
export type { SweepHooks, SweepProgress, SweepRunOptions } from './sweep.ts';
export { cellOf, heatStrip, matrixCells, matrixOf } from './report.ts';
export type { Matrix, MatrixRow } from './report.ts';
