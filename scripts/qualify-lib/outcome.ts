// Whose fault a qualification case's result is. A release is judged only by what the image can cause: a case
// that failed because the station failed (a port vanished, OpenOCD died, the module left the protocol while
// the rig played the MCU, a fault whose moment never came) says nothing about the image, so it is
// INCONCLUSIVE, not a failure, and the whole run ends with its own exit code instead of "not qualified".
import type { FailureKind } from '../../rig/errors.ts';
import type { RunRecord } from '../../rig/sota/record.ts';

/** passed / failed: the image's; inconclusive: the station's; skipped: the station cannot do it; config: the config's. */
export type CaseStatus = 'passed' | 'failed' | 'inconclusive' | 'skipped' | 'config';

/**
 * How a case ran. proxy: the rig plays the MCU (rig/sota/proxy.ts), so the image only matters through its
 * bytes; dut: the image under test drives the dialogue itself, so a protocol failure is the image's.
 */
export type QualifyMode = 'proxy' | 'dut';

export interface CaseError {
  name: string;
  kind: FailureKind | string;
  message: string;
}

export interface Judgement {
  status: CaseStatus;
  /** The verdict's outcome ('upgraded', 'failed-intact' …) or what ended the case ('failure (timeout)', 'error'). */
  outcome: string;
  detail: string;
  /** The typed error that decided it, first line of the story, for reports. */
  error?: CaseError;
  /** Worth running again on a reopened station (the station's equipment failed). */
  retry: boolean;
}

export interface CaseExpectation {
  /** The read-back must hold this version: the target, or the starting image (refusal cases). */
  holds: 'target' | 'current';
  holdsVersion: string;
  faults: readonly string[];
}

const INCONCLUSIVE_KINDS: ReadonlySet<string> = new Set(['infrastructure', 'internal']);

export const DOCTOR_HINT = (station: string): string => `the station failed, not the image: run rig doctor ${station}, then qualify again`;

/** A case that ran to a verdict. */
export function judgeRun(run: RunRecord, expect: CaseExpectation, mode: QualifyMode): Judgement {
  const v = run.verdict;
  const rb = run.readback;
  const outcome = v.outcome ?? `failure (${v.failure?.type ?? 'unknown'})`;
  const decisive = [...run.errors].reverse().find((e) => !e.recovered) ?? run.errors.at(-1);
  const error: CaseError | undefined = decisive ? { name: decisive.name, kind: decisive.kind, message: decisive.message } : v.failure ? { name: 'VerdictFailure', kind: v.failure.kind, message: v.failure.message } : undefined;
  if (v.failure?.kind === 'config') return { status: 'config', outcome: 'config error', detail: v.summary, retry: false, ...(error ? { error } : {}) };
  // dut: several outcomes may be allowed (a power cut may leave either image): the slot must hold the one the
  // verdict names.
  const holds = mode === 'dut' && v.outcome !== undefined ? (v.outcome === 'upgraded' ? 'target' : 'current') : expect.holds;
  const readbackOk = rb !== null && rb !== undefined && (holds === 'current' ? rb.matchesCurrent : rb.matchesTarget);
  const unfired = expect.faults.filter((f) => !run.fired.some((x) => x.fault === f));
  if (v.ok && readbackOk) {
    if (unfired.length > 0) {
      return { status: 'inconclusive', outcome, detail: `the fault ${unfired.join(', ')} never fired: the run did not test what the case asks`, retry: false };
    }
    return { status: 'passed', outcome, detail: rb.comparison, retry: false };
  }
  if (v.ok) return { status: 'failed', outcome, detail: `read-back does not hold ${expect.holdsVersion}: ${rb ? rb.identity : 'no read-back'}`, retry: false, ...(error ? { error } : {}) };
  // An outcome the protocol foresees, but not the expected one: a firm answer about the image.
  if (v.outcome !== undefined) return { status: 'failed', outcome, detail: v.summary, retry: false, ...(error ? { error } : {}) };
  const f = v.failure;
  if (f && (f.type === 'wrong-image' || f.type === 'hash-mismatch-accepted' || f.kind === 'firmware')) return { status: 'failed', outcome, detail: v.summary, retry: false, ...(error ? { error } : {}) };
  if (f && (INCONCLUSIVE_KINDS.has(f.kind) || (f.kind === 'protocol' && mode === 'proxy'))) {
    const why = f.kind === 'protocol' ? 'the module or Developer Center left the protocol while the rig played the MCU: nothing the image did' : DOCTOR_HINT(run.station.name);
    return { status: 'inconclusive', outcome, detail: `${v.summary}\n${why}`, retry: f.kind === 'infrastructure', ...(error ? { error } : {}) };
  }
  return { status: 'failed', outcome, detail: v.summary, retry: false, ...(error ? { error } : {}) };
}

/** A case that threw before or instead of a verdict (the baseline, opening the station, a refused config). */
export function judgeError(err: unknown, station: string): Judgement {
  const e = err as { name?: string; kind?: string; message?: string };
  const error: CaseError = { name: e?.name ?? 'Error', kind: e?.kind ?? 'internal', message: String(e?.message ?? err) };
  if (error.kind === 'config' || error.kind === 'usage') return { status: 'config', outcome: 'config error', detail: error.message, error, retry: false };
  // The case never reached the image (it failed setting up the starting image or the station): not the image's.
  return { status: 'inconclusive', outcome: 'error', detail: `${error.message}\n${DOCTOR_HINT(station)}`, error, retry: error.kind === 'infrastructure' };
}

export type Verdict = 'QUALIFIED' | 'NOT QUALIFIED' | 'INCONCLUSIVE' | 'CONFIG ERROR';

/** Exit codes of qualify, documented in the README. */
export const QUALIFY_EXIT = { qualified: 0, notQualified: 1, config: 2, inconclusive: 4, usage: 64 } as const;

export interface Overall {
  verdict: Verdict;
  exitCode: number;
  counts: Record<CaseStatus, number>;
  /** Cases that count against the image (failed, and skipped unless allowed). */
  against: number;
}

export function overall(statuses: readonly CaseStatus[], opts: { allowSkip: boolean }): Overall {
  const counts: Record<CaseStatus, number> = { passed: 0, failed: 0, inconclusive: 0, skipped: 0, config: 0 };
  for (const s of statuses) counts[s]++;
  const against = counts.failed + (opts.allowSkip ? 0 : counts.skipped);
  if (counts.config > 0) return { verdict: 'CONFIG ERROR', exitCode: QUALIFY_EXIT.config, counts, against };
  if (against > 0) return { verdict: 'NOT QUALIFIED', exitCode: QUALIFY_EXIT.notQualified, counts, against };
  if (counts.inconclusive > 0 || statuses.length === 0) return { verdict: 'INCONCLUSIVE', exitCode: QUALIFY_EXIT.inconclusive, counts, against };
  return { verdict: 'QUALIFIED', exitCode: QUALIFY_EXIT.qualified, counts, against };
}
