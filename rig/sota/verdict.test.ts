import { describe, expect, test } from 'vitest';
import { judge } from './verdict.ts';
import type { Evidence, ReadbackResult } from './verdict.ts';

const flash = (which: 'target' | 'current' | 'other' | 'both'): ReadbackResult => ({
  address: 0x0800_0000,
  size: 25344,
  identified: which === 'other' ? undefined : { component: 'STM32', version: which === 'current' ? '1_0_0' : '2_0_0' },
  identity: which === 'other' ? 'no header (erased)' : 'intact',
  matchesTarget: which === 'target' || which === 'both',
  matchesCurrent: which === 'current' || which === 'both',
  firstDifference: which === 'other' ? 0x0800_0200 : null,
  comparison: which === 'other' ? 'differ: 64 bytes in 1 range' : 'equal (25344 bytes)',
});

const base: Evidence = {
  expected: ['upgraded'],
  decision: 'upgrade',
  moduleResult: 10705,
  downloadVerified: true,
  programmed: true,
  readback: flash('target'),
  error: undefined,
};

describe('verdicts', () => {
  test('upgraded: target in flash, 10705, download verified', () => {
    const v = judge(base);
    expect(v).toMatchObject({ outcome: 'upgraded', failure: undefined, ok: true });
  });

  test('refused: the MCU said no and the old image is intact', () => {
    const v = judge({ ...base, expected: ['refused'], decision: 'refused', moduleResult: undefined, downloadVerified: undefined, programmed: false, readback: flash('current') });
    expect(v).toMatchObject({ outcome: 'refused', reason: 'refused', ok: true });
  });

  test('a refusal where an upgrade was expected is an outcome, not ok', () => {
    const v = judge({ ...base, decision: 'refused', moduleResult: undefined, programmed: false, readback: flash('current') });
    expect(v.outcome).toBe('refused');
    expect(v.ok).toBe(false);
    expect(v.summary).toMatch(/expected upgraded/);
  });

  test('failed-intact: download rejected, 10706, old image intact', () => {
    const v = judge({ ...base, expected: ['failed-intact'], decision: 'download-rejected', moduleResult: 10706, downloadVerified: false, programmed: false, readback: flash('current') });
    expect(v).toMatchObject({ outcome: 'failed-intact', reason: 'download-rejected', ok: true });
  });

  test('failed-intact: the module gave up (10706)', () => {
    const v = judge({ ...base, expected: ['upgraded', 'failed-intact'], moduleResult: 10706, downloadVerified: undefined, programmed: false, readback: flash('current') });
    expect(v).toMatchObject({ outcome: 'failed-intact', reason: 'module-failed', ok: true });
  });

  test('wrong image: neither old nor new in flash, whatever the module said', () => {
    const v = judge({ ...base, readback: flash('other') });
    expect(v.outcome).toBeUndefined();
    expect(v.failure).toMatchObject({ type: 'wrong-image', kind: 'firmware' });
    expect(v.failure?.message).toMatch(/0x8000000 holds no header \(erased\)/);
  });

  test('wrong image: programmed, yet the old image is still there', () => {
    const v = judge({ ...base, readback: flash('current') });
    expect(v.failure?.type).toBe('wrong-image');
  });

  test('hash mismatch accepted: a download that failed its digest ended up in flash', () => {
    const v = judge({ ...base, downloadVerified: false });
    expect(v.failure).toMatchObject({ type: 'hash-mismatch-accepted', kind: 'firmware' });
  });

  test('10705 with the old image in flash is an unexpected event', () => {
    const v = judge({ ...base, programmed: false, readback: flash('current') });
    expect(v.failure).toMatchObject({ type: 'unexpected-event', kind: 'protocol' });
  });

  test('target in flash but 10706 is an unexpected event', () => {
    const v = judge({ ...base, moduleResult: 10706 });
    expect(v.failure?.type).toBe('unexpected-event');
  });

  test('a re-install (target = current) counts as upgraded only with 10705', () => {
    expect(judge({ ...base, readback: flash('both') }).outcome).toBe('upgraded');
    expect(judge({ ...base, moduleResult: 10706, readback: flash('both') }).outcome).toBe('failed-intact');
  });

  test('infrastructure errors stay apart from protocol failures', () => {
    const infra = judge({ ...base, readback: flash('current'), programmed: false, error: { kind: 'infrastructure', name: 'AtPortError', message: 'port vanished' } });
    expect(infra.failure).toMatchObject({ type: 'infrastructure', kind: 'infrastructure', message: 'port vanished' });
    const timeout = judge({ ...base, readback: flash('current'), programmed: false, error: { kind: 'protocol', name: 'EventTimeoutError', message: 'no 10703', timeout: true } });
    expect(timeout.failure).toMatchObject({ type: 'timeout', kind: 'protocol' });
    const proto = judge({ ...base, readback: flash('current'), programmed: false, error: { kind: 'protocol', name: 'ProtocolError', message: '10703 for another piece' } });
    expect(proto.failure).toMatchObject({ type: 'unexpected-event', kind: 'protocol' });
    const config = judge({ ...base, readback: undefined, error: { kind: 'config', name: 'ConfigError', message: 'no target reset line' } });
    expect(config.failure).toMatchObject({ type: 'config', kind: 'config' });
  });

  test('a rig bug is its own failure, not an infrastructure one (which would be retried)', () => {
    const bug = judge({ ...base, readback: flash('current'), programmed: false, error: { kind: 'internal', name: 'TypeError', message: "Cannot read properties of undefined (reading 'size')" } });
    expect(bug.failure).toMatchObject({ type: 'internal', kind: 'internal' });
  });

  test('a wrong image outranks the error that ended the run', () => {
    const v = judge({ ...base, readback: flash('other'), error: { kind: 'infrastructure', name: 'X', message: 'probe died' } });
    expect(v.failure?.type).toBe('wrong-image');
  });

  test('a usage error is a config failure; a firmware error that ended the run is a wrong image', () => {
    const usage = judge({ ...base, readback: undefined, error: { kind: 'usage', name: 'UsageError', message: 'bad fault' } });
    expect(usage.failure).toMatchObject({ type: 'config', kind: 'usage', message: 'bad fault' });
    const firmware = judge({ ...base, readback: flash('current'), programmed: false, error: { kind: 'firmware', name: 'FirmwareError', message: 'the image read back is not the image programmed' } });
    expect(firmware.failure).toMatchObject({ type: 'wrong-image', kind: 'firmware', message: 'the image read back is not the image programmed' });
  });

  test('each way to end says what it saw', () => {
    expect(judge({ ...base, moduleResult: undefined }).failure?.message).toBe('the target image is in flash but the module ended with no result instead of 10705');
    expect(judge({ ...base, moduleResult: 10706 }).failure?.message).toBe('the target image is in flash but the module ended with 10706 instead of 10705');
    expect(judge({ ...base, programmed: false, readback: flash('current') }).failure?.message).toBe('the module reported 10705 but the flash still holds the old image');
    const silent = judge({ ...base, moduleResult: undefined, programmed: false, readback: flash('current') });
    expect(silent.failure).toMatchObject({ type: 'unexpected-event', kind: 'protocol', message: 'the run ended without a result from the module' });
    expect(silent.outcome).toBeUndefined();
  });

  test('a verdict keeps what was expected, whichever way it ends', () => {
    expect(judge({ ...base, expected: ['upgraded', 'refused'] }).expected).toEqual(['upgraded', 'refused']);
    expect(judge({ ...base, expected: ['upgraded', 'refused'], readback: undefined }).expected).toEqual(['upgraded', 'refused']);
  });

  test('no read-back, no verdict but an infrastructure failure', () => {
    const v = judge({ ...base, readback: undefined });
    expect(v.failure).toMatchObject({ type: 'infrastructure' });
    expect(v.ok).toBe(false);
  });
});
