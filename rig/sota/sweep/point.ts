// One sweep point, and the calibration before them: each a whole run of the mode's own flow (runDutUpgrade
// or runProxyUpgrade, with their fault schedule, verdict and record), nothing of its own. A point passes
// when its verdict is one the station's design allows and the device then takes the next upgrade; it fails
// on any other verdict (bricked, inconsistent, a failure of the image) or when that next upgrade fails.
import { FirmwareError } from '../../errors.ts';
import type { Image } from '../../images/image.ts';
import type { FirmwareSet } from '../../images/manifest.ts';
import type { Package } from '../../images/package.ts';
import type { Station, UpgradeSpec } from '../../station/station.ts';
import { ensureBaseline } from '../baseline.ts';
import { runDutUpgrade } from '../dut.ts';
import type { DutUpgradeOptions } from '../dut.ts';
import { formatFault, formatTrigger, parseFault } from '../faults.ts';
import { runProxyUpgrade } from '../proxy.ts';
import type { ProxyUpgradeOptions } from '../proxy.ts';
import type { RunRecord } from '../record.ts';
import type { Recorder } from '../recorder.ts';
import { silentRecorder } from '../recorder.ts';
import { verdictLabel } from '../replay.ts';
import { whyNotFired } from '../schedule.ts';
import type { Outcome } from '../verdict.ts';
import type { PlannedPoint, PointResult, PointStatus } from './model.ts';
import { landedAt, mergeTimelines, timelineOf, triggerMoment, windowAt } from './timeline.ts';
import type { SweepMode, Timeline } from './timeline.ts';

/** What a sweep upgrades, resolved to bytes. */
export interface SweepSubject {
  mode: SweepMode;
  package: Package;
  from: Image;
  /** dut: the bootloader arranged at the flash base (none: the station's own stays). */
  bootloader?: Image | undefined;
  /** Where the package back to `from` comes from, for the next upgrade after a point that installed the new image. */
  firmware: FirmwareSet;
  allow: readonly Outcome[];
  nextCheck: boolean;
  /** dut bounds of every point run; the calibration sets them when they are not given. */
  reportWithinMs?: number | undefined;
  settleMs?: number | undefined;
}

/**
 * How the sweep runs a flow. The default calls rig/sota's flows with the sweep's recorder and signal; the
 * suites pass theirs, which add the report's pictures.
 */
export interface SweepFlows {
  dut(o: DutUpgradeOptions): Promise<RunRecord>;
  proxy(o: ProxyUpgradeOptions): Promise<RunRecord>;
  baseline(image: Image): Promise<unknown>;
}

export function sweepFlows(station: Station, o: { signal?: AbortSignal | undefined; recorder?: Recorder | undefined } = {}): SweepFlows {
  const common = { ...(o.signal ? { signal: o.signal } : {}), recorder: o.recorder ?? silentRecorder };
  return {
    dut: (opts) => runDutUpgrade(station, { ...opts, ...common }),
    proxy: (opts) => runProxyUpgrade(station, { ...opts, ...common }),
    baseline: (image) => ensureBaseline(station, image, common),
  };
}

const spec = (station: Station, pkg: Package, extra: Partial<UpgradeSpec> = {}): UpgradeSpec => ({ component: station.component, package: pkg, ...extra });

function dutBounds(s: SweepSubject): Pick<DutUpgradeOptions, 'reportWithinMs' | 'settleMs'> {
  return { ...(s.reportWithinMs !== undefined ? { reportWithinMs: s.reportWithinMs } : {}), ...(s.settleMs !== undefined ? { settleMs: s.settleMs } : {}) };
}

export interface CalibrateOptions {
  /** The windows the sweep aims at: every clean run must go through them (a FirmwareError names the one that did not). */
  windows?: readonly string[];
  /** Keeps a clean run's record as soon as it ends (numbered from 1); returns where, for the error above. */
  keep?: (record: RunRecord, run: number) => string | undefined;
}

/** Clean runs of the subject: their timeline (merged) and the dut bounds the points get. */
export interface Calibration {
  /** Every clean run, in order. */
  records: RunRecord[];
  timeline: Timeline;
  reportWithinMs: number | undefined;
  settleMs: number | undefined;
}

/**
 * The bounds a dut point run gets, from the clean runs: a start (the rig's reset, a cut, the MCU's own reset
 * to install) has three times the longest any clean run needed to its version report, plus twice the
 * station's margin; the whole run six times the clean observation plus three such bounds. A point that
 * bricks the MCU then costs seconds, not the protocol's worst case (minutes), and one that merely recovers
 * slowly (a swap resumed, a revert) stays well inside.
 */
export function boundsFromCalibration(records: readonly RunRecord[], marginMs: number): { reportWithinMs: number; settleMs: number } {
  let longest = 0;
  let observe = 0;
  for (const record of records) {
    const reports = record.dut?.reports ?? [];
    for (const s of record.dut?.starts ?? []) {
      const r = reports.find((x) => x.t >= s.t);
      if (r) longest = Math.max(longest, r.t - s.t);
    }
    observe = Math.max(observe, record.phases.find((p) => p.name === 'observe the upgrade')?.durationMs ?? record.durationMs);
  }
  const reportWithinMs = Math.round(3 * longest + 2 * marginMs);
  return { reportWithinMs, settleMs: Math.round(6 * observe + 3 * reportWithinMs) };
}

/**
 * `runs` clean runs of the subject (default 3), each of which must end in a verdict the sweep allows; their
 * timelines merged (mergeTimelines), so that one run's late console lines do not misplace the marks.
 */
export async function calibrate(station: Station, subject: SweepSubject, flows: SweepFlows, recorder: Recorder = silentRecorder, runs = 3, o: CalibrateOptions = {}): Promise<Calibration> {
  const records: RunRecord[] = [];
  for (let i = 1; i <= runs; i++) {
    const record = await recorder.step(`calibrate: clean run ${i} of ${runs} measures the windows`, async () => {
      if (subject.mode === 'dut') {
        return flows.dut({ plan: spec(station, subject.package), from: subject.from, ...(subject.bootloader ? { bootloader: subject.bootloader } : {}), expect: [...subject.allow], ...dutBounds(subject) });
      }
      await flows.baseline(subject.from);
      return flows.proxy({ plan: spec(station, subject.package), current: subject.from, expect: [...subject.allow] });
    });
    const kept = o.keep?.(record, i);
    if (!record.verdict.ok) {
      throw new FirmwareError(`clean calibration run ${i} did not end in a verdict the sweep allows`, {
        station: station.name,
        expected: `${subject.allow.join(' or ')} without a fault (the sweep aims at the windows of those runs)`,
        seen: `${record.verdict.summary}${kept ? `; its record: ${kept}` : ''}`,
      });
    }
    const through = timelineOf(record).windows.map((w) => w.name);
    const missing = (o.windows ?? []).filter((n) => !through.includes(n));
    if (missing.length > 0) {
      // Not a wrong option (the window names were checked against the mode): the upgrade itself ended early
      // without any fault, and a sweep of a window no clean run reaches has nothing to aim at.
      throw new FirmwareError(`clean calibration run ${i} of ${runs} ended before window${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, {
        station: station.name,
        expected: `a clean ${subject.mode} run through ${o.windows!.join(', ')} (the windows the sweep aims at)`,
        seen: `${record.verdict.summary}; the run went through ${through.join(', ') || 'no window'}${kept ? `; its record: ${kept}` : ''}`,
      });
    }
    records.push(record);
  }
  const timeline = mergeTimelines(records.map(timelineOf));
  if (timeline.windows.length === 0 || timeline.marks.length === 0) {
    throw new FirmwareError('the clean calibration run showed no window of the upgrade', { station: station.name, expected: 'a plan, a download, block reads and an install seen by the rig', seen: records[0]!.phases.map((p) => p.name).join(', ') || 'no phases' });
  }
  const bounds = subject.mode === 'dut' ? boundsFromCalibration(records, station.timeouts.marginMs) : undefined;
  return { records, timeline, reportWithinMs: subject.reportWithinMs ?? bounds?.reportWithinMs, settleMs: subject.settleMs ?? bounds?.settleMs };
}

/** The upgrade offered after a point: back to `from` when slot A holds the new image, else the sweep's own again. */
export function nextUpgrade(subject: SweepSubject, holds: 'from' | 'target'): { pkg: Package; current: Image } | undefined {
  const target = subject.package.apply(subject.from);
  if (holds === 'from') return { pkg: subject.package, current: subject.from };
  const back = [...subject.firmware.packages.values()].find((p) => p.type === 'full' && p.target.sha256 === subject.from.sha256);
  if (back) return { pkg: back, current: target };
  return subject.package.type === 'full' ? { pkg: subject.package, current: target } : undefined;
}

function holdsOf(run: RunRecord): 'from' | 'target' | undefined {
  if (run.dut) {
    const h = run.dut.slots.a?.holds;
    return h === 'from' || h === 'target' ? h : undefined;
  }
  if (run.readback?.matchesTarget) return 'target';
  return run.readback?.matchesCurrent ? 'from' : undefined;
}

export interface PointRun {
  result: PointResult;
  record: RunRecord;
  next: RunRecord | undefined;
}

export async function runPoint(station: Station, subject: SweepSubject, tl: Timeline, point: PlannedPoint, flows: SweepFlows, recorder: Recorder = silentRecorder): Promise<PointRun> {
  const t0 = performance.now();
  const fault = parseFault(point.fault);
  const text = formatFault(fault);
  const record = await recorder.step(`point ${point.id}: ${text}`, async () => {
    if (subject.mode === 'dut') {
      return flows.dut({ plan: spec(station, subject.package), from: subject.from, ...(subject.bootloader ? { bootloader: subject.bootloader } : {}), faults: [fault], expect: [...subject.allow], ...dutBounds(subject) });
    }
    await flows.baseline(subject.from);
    return flows.proxy({ plan: spec(station, subject.package), current: subject.from, faults: [fault], expect: [...subject.allow] });
  });
  const v = record.verdict;
  const fired = record.fired.find((f) => f.fault === text);
  const landed = fired ? (landedAt(tl, record, fired.t) ?? null) : null;
  let status: PointStatus;
  let why: string;
  if (v.failure && (v.failure.kind === 'infrastructure' || v.failure.kind === 'internal' || v.failure.kind === 'config')) {
    status = 'error';
    why = `${v.failure.kind}: ${v.failure.message.split('\n')[0]}`;
  } else if (!v.ok) {
    status = 'fail';
    why = v.summary.split('\n')[0]!;
  } else if (!fired) {
    status = 'not-fired';
    why = `never fired: ${whyNotFired(fault, record)}`;
    const offset = fault.trigger.afterMs;
    const came = offset ? triggerMoment(record, formatTrigger({ ...fault.trigger, afterMs: 0 })) : undefined;
    // The trigger came, but the flow had finished before its time offset was over.
    if (offset && came !== undefined) why = `never fired: its trigger came at ${Math.round(came)} ms of the run, which ended before the +${offset} ms were over`;
  } else {
    status = 'pass';
    why = verdictLabel(v);
  }
  let next: RunRecord | undefined;
  let nextSummary: PointResult['next'] = null;
  if (status === 'pass' && subject.nextCheck) {
    const holds = holdsOf(record);
    const n = holds ? nextUpgrade(subject, holds) : undefined;
    if (!n) {
      why += '; the next upgrade was not offered (no package from the image slot A holds)';
    } else {
      next = await recorder.step(`point ${point.id}: the next upgrade (${n.pkg.name} from ${n.current.version})`, async () => {
        if (subject.mode === 'dut') {
          // The MCU as the point left it (no halt, no flash arranged, no reset): a client stuck after the
          // fault must show here. An idle MCU asks for no plan, so the cloud pushes it.
          return flows.dut({ plan: spec(station, n.pkg, { pushActively: true }), from: n.current, ...(subject.bootloader ? { bootloader: subject.bootloader } : {}), expect: ['upgraded'], fresh: false, ...dutBounds(subject) });
        }
        return flows.proxy({ plan: spec(station, n.pkg), current: n.current, expect: ['upgraded'] });
      });
      const nv = next.verdict;
      nextSummary = { package: n.pkg.name, verdict: verdictLabel(nv), ok: nv.ok, summary: nv.summary };
      if (nv.failure && (nv.failure.kind === 'infrastructure' || nv.failure.kind === 'internal' || nv.failure.kind === 'config')) {
        status = 'error';
        why = `${why}; the next upgrade (${n.pkg.name}) ended in the rig's own ${nv.failure.kind} trouble: ${nv.failure.message.split('\n')[0]}`;
      } else if (!nv.ok) {
        status = 'fail';
        why = `${why}, but the device could not take the next upgrade (${n.pkg.name}): ${nv.summary.split('\n')[0]}`;
      } else why = `${why}; the next upgrade (${n.pkg.name}) upgraded`;
    }
  }
  const result: PointResult = {
    id: point.id,
    fault: text,
    action: point.action,
    window: point.window,
    at: point.at,
    landed,
    landedWindow: landed === null ? null : (windowAt(tl, landed)?.name ?? null),
    status,
    verdict: verdictLabel(v),
    outcome: v.outcome ?? null,
    summary: v.summary,
    why,
    next: nextSummary,
    record: null,
    nextRecord: null,
    durationMs: Math.round(performance.now() - t0),
    finishedAt: new Date().toISOString(),
  };
  return { result, record, next };
}
