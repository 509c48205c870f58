// A run's verdict, decided from the evidence the rig gathered itself (docs/architecture.md §1): what the rig decided
// as the MCU, what the module said at the end (10705/10706), whether the download matched its digests, and
// above all what the flash holds when read back over SWD. A pure function, so every combination is tested
// without a station.
import type { FailureKind } from '../errors.ts';

/**
 * How an upgrade ended, when it ended in one of the ways the protocol foresees. A proxy run ends in the first
 * three; a dut run (dut-verdict.ts) may also find the image under test rolled back by its bootloader, the
 * device bricked, or its parts disagreeing (inconsistent): findings about the image, judged like the others.
 */
export type Outcome = 'upgraded' | 'refused' | 'failed-intact' | 'rolled-back' | 'bricked' | 'inconsistent';

export const OUTCOMES: readonly Outcome[] = ['upgraded', 'refused', 'failed-intact', 'rolled-back', 'bricked', 'inconsistent'];

/** What went wrong when the run did not end in an Outcome. */
export type FailureType =
  /** The flash holds neither the old nor the new image (torn, erased, or another version). */
  | 'wrong-image'
  /** A download whose digest did not match was programmed anyway. */
  | 'hash-mismatch-accepted'
  /** The module said something the protocol does not allow here (or the cloud announced another plan). */
  | 'unexpected-event'
  /**
   * The module stayed silent beyond its own timer plus the station's margin, or the flow let one of the
   * module's timers run out (read inactivity, update wait: a ProtocolTimerError naming it).
   */
  | 'timeout'
  /** The rig's own equipment failed: a port vanished, OpenOCD died, the run was aborted. */
  | 'infrastructure'
  /** The run could not start: a fault the station cannot execute, a plan without a package … */
  | 'config'
  /** The rig's own code failed (a TypeError in the flow): a rig bug, never retried, never the station's. */
  | 'internal'
  /** dut: the MCU wrote slot B otherwise than what it downloaded (what it asked to install is not there). */
  | 'slot-b-mismatch'
  /** dut: after the module's reboot the MCU did not read the piece again from where the module announced it. */
  | 'download-not-restarted'
  /** dut: a 10700 the MCU never answered (AT+QIOTUPDATE=1 or =0) within its bound. */
  | 'plan-not-answered';

/** Why an upgrade that did not happen did not happen. */
export type IntactReason =
  /** The MCU refused the plan (battery, signal, component, source version). */
  | 'refused'
  /** The MCU checked the download (MD5, CRC, SHA-256, plan, rebuilt image) and gave up before programming. */
  | 'download-rejected'
  /** The module gave up (10706): a timer, too many download errors, a version mismatch. */
  | 'module-failed';

export interface ReadbackResult {
  address: number;
  /** Bytes read from the slot. */
  size: number;
  /** The known image (current, target, a release of the manifest) the flash holds byte for byte. */
  identified: { component: string; version: string } | undefined;
  /** What the flash holds, in words: the image, or erased, or unknown bytes and what their header names. */
  identity: string;
  /** The flash holds the target image byte for byte. */
  matchesTarget: boolean;
  /** The flash holds the image the run started from byte for byte. */
  matchesCurrent: boolean;
  /** First differing flash address against the image the flash should hold by now, null when equal. */
  firstDifference: number | null;
  /** describeComparison() against that image. */
  comparison: string;
}

export interface Evidence {
  /** Outcomes that count as a pass for this run. */
  expected: readonly Outcome[];
  /** What the rig, as the MCU, decided. */
  decision: 'upgrade' | 'refused' | 'download-rejected' | undefined;
  /** The module's last word on this OTA. */
  moduleResult: 10705 | 10706 | undefined;
  /** The download's digest check (undefined when no download finished). */
  downloadVerified: boolean | undefined;
  /** The rig wrote an image to flash. */
  programmed: boolean;
  readback: ReadbackResult | undefined;
  /** The error that ended the run early, if any. */
  error: { kind: FailureKind; name: string; message: string; timeout?: boolean } | undefined;
}

export interface Failure {
  type: FailureType;
  /** errors.ts kind: suites retry only 'infrastructure'. */
  kind: FailureKind;
  message: string;
}

export interface Verdict {
  /** Outcome when the run ended in a way the protocol foresees; undefined on failure. */
  outcome: Outcome | undefined;
  /** For failed-intact and refused: why nothing was installed. */
  reason: IntactReason | undefined;
  /** Present when the run failed. */
  failure: Failure | undefined;
  expected: Outcome[];
  /** outcome is one of the expected outcomes and there is no failure. */
  ok: boolean;
  /** One line for a report. */
  summary: string;
}

export function fail(e: Pick<Evidence, 'expected'>, type: FailureType, kind: FailureKind, message: string): Verdict {
  return { outcome: undefined, reason: undefined, failure: { type, kind, message }, expected: [...e.expected], ok: false, summary: `failure (${type}): ${message}` };
}

/**
 * An outcome that carries a finding about the image (dut mode: the old image stayed, but the MCU misbehaved
 * on the way): both are kept, and the run does not pass.
 */
export function endWithFinding(e: Pick<Evidence, 'expected'>, outcome: Outcome, reason: IntactReason | undefined, type: FailureType, message: string): Verdict {
  return { outcome, reason, failure: { type, kind: 'firmware', message }, expected: [...e.expected], ok: false, summary: `${outcome}, failure (${type}): ${message}` };
}

export function end(e: Pick<Evidence, 'expected'>, outcome: Outcome, reason: IntactReason | undefined, detail: string): Verdict {
  const ok = e.expected.includes(outcome);
  const summary = `${outcome}${reason && reason !== 'refused' ? ` (${reason})` : ''}: ${detail}${ok ? '' : ` — expected ${e.expected.join(' or ')}`}`;
  return { outcome, reason, failure: undefined, expected: [...e.expected], ok, summary };
}

export function judge(e: Evidence): Verdict {
  const rb = e.readback;
  // Flash contents first: whatever else happened, a wrong image in flash is the finding that matters most.
  if (rb && !rb.matchesTarget && !rb.matchesCurrent) {
    return fail(e, 'wrong-image', 'firmware', `flash at 0x${rb.address.toString(16)} holds ${rb.identified ? `${rb.identified.component} ${rb.identified.version}` : rb.identity}, neither the old nor the new image (${rb.comparison})`);
  }
  if (rb && e.programmed && rb.matchesCurrent && !rb.matchesTarget) {
    return fail(e, 'wrong-image', 'firmware', `the new image was programmed but the flash at 0x${rb.address.toString(16)} still holds the old one`);
  }
  if (rb?.matchesTarget && e.downloadVerified === false) {
    return fail(e, 'hash-mismatch-accepted', 'firmware', 'a download that did not match its digest was installed');
  }
  if (e.error) {
    if (e.error.kind === 'internal') return fail(e, 'internal', 'internal', e.error.message);
    if (e.error.kind === 'infrastructure') return fail(e, 'infrastructure', 'infrastructure', e.error.message);
    if (e.error.kind === 'config' || e.error.kind === 'usage') return fail(e, 'config', e.error.kind, e.error.message);
    if (e.error.timeout) return fail(e, 'timeout', 'protocol', e.error.message);
    if (e.error.kind === 'firmware') return fail(e, 'wrong-image', 'firmware', e.error.message);
    return fail(e, 'unexpected-event', e.error.kind, e.error.message);
  }
  if (!rb) return fail(e, 'infrastructure', 'infrastructure', 'the flash was not read back, so nothing can be concluded');
  if (rb.matchesTarget) {
    if (rb.matchesCurrent) {
      // Target and current are the same image (a re-install): only the module's word tells them apart.
      if (e.moduleResult === 10705) return end(e, 'upgraded', undefined, 'target image verified by read-back, module reported 10705');
    } else if (e.moduleResult === 10705) {
      return end(e, 'upgraded', undefined, 'target image verified by read-back, module reported 10705');
    } else {
      return fail(e, 'unexpected-event', 'protocol', `the target image is in flash but the module ended with ${e.moduleResult ?? 'no result'} instead of 10705`);
    }
  }
  // The old image is verified intact.
  if (e.decision === 'refused') return end(e, 'refused', 'refused', 'plan refused, old image verified intact by read-back');
  if (e.moduleResult === 10705) {
    return fail(e, 'unexpected-event', 'protocol', 'the module reported 10705 but the flash still holds the old image');
  }
  if (e.decision === 'download-rejected') return end(e, 'failed-intact', 'download-rejected', 'download rejected before programming, old image verified intact');
  if (e.moduleResult === 10706) return end(e, 'failed-intact', 'module-failed', 'module reported 10706, old image verified intact');
  return fail(e, 'unexpected-event', 'protocol', 'the run ended without a result from the module');
}
