// What a sweep is made of, as it is kept on disk (`sweep.json` in its directory) so that a stopped sweep can
// be resumed and read without the process that ran it: its settings, the calibration's timeline, the points
// planned (those of the bisection included) and the result of each point run so far.
import type { Outcome } from '../verdict.ts';
import type { SweepMode, Timeline } from './timeline.ts';

export const SWEEP_FORMAT = 'sota-rig/sweep';
export const SWEEP_VERSION = 1;

/** One run of the sweep: a fault aimed at a calibrated moment. */
export interface PlannedPoint {
  id: number;
  /** The window it was aimed at. */
  window: string;
  /** The calibrated run time it was aimed at, ms. */
  at: number;
  /** `<trigger>:<action>` in the fault model's text form. */
  fault: string;
  action: string;
  /** 0 for the sweep's own points, n for the n-th bisection round. */
  round: number;
}

export type PointStatus =
  /** The verdict is one the station's design allows, and the device then took the next upgrade. */
  | 'pass'
  /** Bricked, inconsistent, another failure of the image, or the next upgrade failed. */
  | 'fail'
  /** The trigger never came: the point did not test what it aimed at. */
  | 'not-fired'
  /** The rig's own trouble (a port, OpenOCD, the simulator): says nothing about the image. */
  | 'error';

export interface PointResult {
  id: number;
  fault: string;
  action: string;
  window: string;
  at: number;
  /** Where the fault landed on the calibrated timeline (the point run's own marks), null when it did not fire. */
  landed: number | null;
  landedWindow: string | null;
  status: PointStatus;
  /** verdictLabel(): `upgraded`, `bricked`, `failure (timeout)`. */
  verdict: string;
  outcome: Outcome | null;
  /** The verdict's one line. */
  summary: string;
  /** Why the point passed or failed, in one line. */
  why: string;
  /** The upgrade offered after the point, when it was: could the device take it? */
  next: { package: string; verdict: string; ok: boolean; summary: string } | null;
  /** Run records kept for this point (relative to the sweep directory): every point that did not pass. */
  record: string | null;
  nextRecord: string | null;
  durationMs: number;
  finishedAt: string;
}

export type SweepStatus = 'calibrating' | 'running' | 'complete' | 'stopped-budget' | 'stopped-interrupted' | 'stopped-broken';

/** What a sweep is of: enough to run it again or resume it (images by manifest key and sha256). */
export interface SweepSettings {
  mode: SweepMode;
  station: string;
  /** The firmware set the images come from (a path). */
  manifest: string;
  package: { name: string; sha256: string };
  from: { key: string; version: string; sha256: string };
  bootloader: { key: string; version: string; sha256: string } | null;
  /** Actions in the fault model's text form (`power-cycle-target=500`). */
  actions: string[];
  windows: string[];
  points: number | null;
  everyMs: number | null;
  /** Bisection rounds between neighbouring points that differ (pass ↔ fail). */
  refine: number;
  /** Verdicts the station's design allows. */
  allow: Outcome[];
  /** Offer the next upgrade after each point whose verdict is allowed. */
  nextCheck: boolean;
  /** Clean runs the calibration merges. */
  calibrationRuns: number;
  /** dut bounds for every point run (from the calibration unless given). */
  reportWithinMs: number | null;
  settleMs: number | null;
}

export interface SweepState {
  format: typeof SWEEP_FORMAT;
  version: typeof SWEEP_VERSION;
  createdAt: string;
  settings: SweepSettings;
  /** The clean runs' records (relative paths), the first one's verdict, their median length and merged timeline. */
  calibration: { records: string[]; verdict: string; durationMs: number; timeline: Timeline } | null;
  points: PlannedPoint[];
  results: PointResult[];
  /** Bisection rounds planned so far. */
  refineRounds: number;
  status: SweepStatus;
  stoppedWhy: string | null;
  /** Each invocation that worked on the sweep (the first, and every --resume). */
  sessions: { startedAt: string; endedAt: string | null; points: number; ms: number }[];
}
