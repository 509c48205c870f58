// Turning what the rig saw into the test's verdict. A run's verdict that is not an Outcome becomes the
// rig's own typed error (so the report's categories and the infrastructure-only retry see its kind); an
// Outcome other than the expected one is an assertion; and every test ends by reading the slot back over
// SWD and comparing it with the image it must hold.
import { expect } from 'vitest';
import { ConfigError, FirmwareError, InfrastructureError, InternalError, ProtocolError } from '../../rig/errors.ts';
import type { FailureKind, RigError } from '../../rig/errors.ts';
import { compareImages, describeComparison, identifyContent } from '../../rig/images/index.ts';
import type { Image } from '../../rig/images/index.ts';
import { formatFault } from '../../rig/sota/index.ts';
import type { FailureType, Fault, IntactReason, Outcome, ProxyRun, Recorder } from '../../rig/sota/index.ts';
import { whyNotFired } from '../../rig/sota/schedule.ts';
import type { Station } from '../../rig/station/index.ts';

const ERRORS: Record<FailureKind, new (summary: string, details: ConstructorParameters<typeof InfrastructureError>[1]) => RigError> = {
  infrastructure: InfrastructureError,
  protocol: ProtocolError,
  firmware: FirmwareError,
  config: ConfigError,
  usage: ConfigError,
  internal: InternalError,
};

/**
 * The error that ended a failed run, as the rig's own typed error: the class of its kind (so the report's
 * categories and the infrastructure-only retry see it), named and worded as the error the flow recorded
 * ("AtCommandError [protocol]: virtual: AT+QIOTOTARD=…: ERROR"), so that a failed test's status message is
 * its root cause and not a wrapper's. A verdict failure without an error (a wrong image read back, a module
 * that contradicts the flash) is worded from the verdict. Undefined when the run did not fail.
 */
export function runFailure(run: ProxyRun, expected?: string): RigError | undefined {
  const v = run.verdict;
  if (!v.failure) return undefined;
  const Err = ERRORS[v.failure.kind];
  const cause = run.errors.filter((e) => !e.recovered).at(-1);
  const recovered = run.errors.filter((e) => e.recovered).map((e) => `recovered earlier: ${e.name} in ${e.phase}: ${e.message.split('\n')[0]}`);
  const err = new Err(`the upgrade ended in a ${v.failure.type} failure: ${v.failure.message.split('\n')[0]}`, {
    station: run.station.name,
    expected: expected ?? v.expected.join(' or '),
    seen: v.summary,
    lastLines: [...recovered, ...run.events.slice(-6).map((e) => e.raw)],
  });
  if (cause && cause.message.length > 0) {
    // The recorded error is the root cause: its own name and words, the verdict's facts after them.
    const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    err.name = cause.name;
    err.message = `${cause.message}\n  (in ${cause.phase}; the run's verdict: failure (${v.failure.type}))`;
    err.stack = [`${err.name}: ${err.message}`, ...frames].join('\n');
  }
  return err;
}

/** The run's verdict as the test's verdict: its root-cause error for a failure, an assertion for another outcome. */
export function expectOutcome(run: ProxyRun, outcome: Outcome, reason?: IntactReason): void {
  const v = run.verdict;
  const failure = runFailure(run, `${outcome}${reason ? ` (${reason})` : ''}`);
  if (failure) throw failure;
  expect(v.outcome, `${run.station.name}: ${v.summary}`).toBe(outcome);
  if (reason) expect(v.reason, `${run.station.name}: ${v.summary}`).toBe(reason);
  // The verdict rests on the flash the flow read back itself.
  expect(run.readback, `${run.station.name}: the flow did not read the slot back`).not.toBeNull();
  if (outcome === 'upgraded') expect(run.readback?.matchesTarget, run.readback?.comparison).toBe(true);
  else expect(run.readback?.matchesCurrent, run.readback?.comparison).toBe(true);
}

/**
 * Every fault of the run fired, once each. A fault that never fired means the test did not test what it
 * says: the failure names the station, the fault and the moment that never came.
 */
export function expectFaultsFired(run: ProxyRun, faults: readonly Fault[]): void {
  const texts = faults.map(formatFault);
  const missing = faults.filter((f) => !run.fired.some((x) => x.fault === formatFault(f)));
  // A fault that did not fire in a run that failed: the run ended before the fault's moment, and the error
  // that ended it is the finding, not the silent fault. (A failure with every fault fired may be exactly
  // what the test expects, as the planted defects of dut mode are.)
  if (missing.length > 0 || run.fired.length !== texts.length) {
    const failure = runFailure(run);
    if (failure) throw failure;
  }
  const why = missing.map((f) => `fault ${formatFault(f)} never fired: ${whyNotFired(f, run)}`).join('; ');
  expect(run.fired.map((f) => f.fault), `${run.station.name}: ${why || 'a fault fired more than once'}`).toEqual(texts);
}

export interface ReadbackOptions {
  signal?: AbortSignal;
  recorder: Recorder;
}

/**
 * Reads the slot back over SWD and requires it to hold `image` byte for byte (FirmwareError otherwise,
 * naming the first differing address). Attaches the comparison.
 */
export async function readbackVerdict(station: Station, image: Image, o: ReadbackOptions): Promise<void> {
  await o.recorder.step(`read back: slot must hold ${image.component} ${image.version}`, async () => {
    const address = station.layout.slotAddress;
    const flash = await station.probe.readRegion(address, image.size, { ...(o.signal ? { signal: o.signal } : {}) });
    const c = compareImages(image.bytes, flash, { baseAddress: address });
    const identity = identifyContent(flash, { known: [image] }).text;
    const text = [
      `slot 0x${address.toString(16)}, ${flash.length} bytes read over SWD`,
      `holds: ${identity}`,
      `expected ${image.component} ${image.version} (sha256 ${image.sha256}): ${describeComparison(c)}`,
    ].join('\n');
    o.recorder.attach('read-back comparison', `${text}\n`, 'text/plain');
    if (c.firstDifference !== null) {
      throw new FirmwareError(`the slot does not hold ${image.component} ${image.version}`, {
        station: station.name,
        expected: `${image.size} bytes equal to ${image.version} at 0x${address.toString(16)}`,
        seen: `${describeComparison(c)}; the flash holds ${identity}`,
      });
    }
  });
}

/**
 * A dut run's verdict as the test's verdict: the outcome it must end in and, for a planted defect, the finding
 * it must carry beside it (fixtures/README.md names both). The rig's own trouble (infrastructure, a rig bug,
 * config) becomes its typed error, so it is retried or reported as such. Either way the verdict must rest on
 * slot A and slot B read back over SWD by the flow.
 */
export function expectDut(run: ProxyRun, outcome: Outcome, finding?: FailureType): void {
  const v = run.verdict;
  const want = `${outcome}${finding ? `, failure (${finding})` : ''}`;
  if (v.failure && v.failure.kind !== 'firmware' && v.failure.kind !== 'protocol') {
    const Err = ERRORS[v.failure.kind];
    throw new Err(`the dut run ended in a ${v.failure.type} failure: ${v.failure.message.split('\n')[0]}`, {
      station: run.station.name,
      expected: want,
      seen: v.summary,
      lastLines: [...run.errors.filter((e) => !e.recovered).map((e) => `${e.name} in ${e.phase}: ${e.message.split('\n')[0]}`), ...(run.dut?.tap.slice(-6).map((l) => `[${l.dir}] ${l.text}`) ?? [])],
    });
  }
  expect(run.dut?.slots.a, `${run.station.name}: the flow did not read slot A back`).toBeTruthy();
  expect(run.dut?.slots.b, `${run.station.name}: the flow did not read slot B back`).toBeTruthy();
  expect({ outcome: v.outcome ?? null, finding: v.failure?.type ?? null }, `${run.station.name}: ${v.summary}`).toEqual({ outcome, finding: finding ?? null });
}
