// judgeDut as a table: one row per way a dut run can end, the evidence that shows it and the verdict.
import { describe, expect, it } from 'vitest';
import type { BootRecord } from './boot-record.ts';
import { judgeDut } from './dut-verdict.ts';
import type { DutEvidence, SlotEvidence } from './dut-verdict.ts';

const slot = (holds: SlotEvidence['holds'], over: Partial<SlotEvidence> = {}): SlotEvidence => ({
  address: 0x0802_0000,
  size: 0x20000,
  holds,
  identified: holds === 'from' ? { component: 'STM32', version: '1_0_0' } : holds === 'target' ? { component: 'STM32', version: '2_0_0' } : holds === 'other' ? { component: 'STM32', version: '1_1_0' } : undefined,
  identity: holds === 'erased' ? 'erased' : 'valid',
  against: '2_0_0 (target)',
  firstDifference: holds === 'target' ? null : 0x0802_0200,
  comparison: '…',
  ...over,
});

const record = (phase: BootRecord['phase']): BootRecord => ({ decoder: 'vmcu-1', phase, summary: `seq 9 ${phase}`, fields: {} });

const upgraded: DutEvidence = {
  expected: ['upgraded'],
  fromVersion: '1_0_0',
  targetVersion: '2_0_0',
  decision: 'confirmed',
  moduleResult: 10705,
  lastReport: '2_0_0',
  silentAfterStart: false,
  trialSeen: true,
  downloadRejected: undefined,
  installRequested: true,
  installedBadDownload: undefined,
  downloadNotRestarted: undefined,
  planNotAnswered: undefined,
  slotA: slot('target'),
  slotB: slot('from'),
  bootRecord: record('confirmed'),
  error: undefined,
};

const rolledBack: DutEvidence = { ...upgraded, moduleResult: 10706, lastReport: '1_0_0', slotA: slot('from'), slotB: slot('target') };
const intact: DutEvidence = { ...rolledBack, trialSeen: false, installRequested: false, slotB: slot('other') };

describe('judgeDut', () => {
  it.each<[string, DutEvidence, string, RegExp]>([
    ['the whole upgrade', upgraded, 'upgraded', /^upgraded: slot A = 2_0_0 by read-back, boot record confirmed, the MCU reports 2_0_0, module said 10705$/],
    ['the same without a boot-record decoder', { ...upgraded, bootRecord: undefined }, 'upgraded', /^upgraded: slot A = 2_0_0 by read-back, the MCU reports 2_0_0/],
    ['a never-confirming image reverted by the bootloader', rolledBack, 'rolled-back', /^rolled-back: the new image ran in trial and was reverted: slot A = 1_0_0 .* module said 10706/],
    ['a download the MCU rejected', { ...intact, downloadRejected: 'md5 mismatch' }, 'failed-intact', /^failed-intact \(download-rejected\): the old image never left: .* the MCU rejected the download \(md5 mismatch\)/],
    ['the module gave up', intact, 'failed-intact', /^failed-intact \(module-failed\): .* module said 10706/],
    ['a plan refused by the MCU', { ...intact, decision: 'refused', moduleResult: undefined }, 'refused', /^refused: the MCU refused the plan/],
    ['a torn slot A', { ...upgraded, slotA: slot('other', { identified: undefined, identity: 'bad-body-crc', tapLine: 'the last tap line before fault after-update3:power-cycle-target (12.345 s [mcu] AT+QIOTUPDATE=3)' }) }, 'bricked', /^bricked: slot A at 0x8020000 holds no valid image \(bad-body-crc\); first difference at 0x8020200 against 2_0_0 \(target\), from the last tap line/],
    ['an erased slot A', { ...upgraded, slotA: slot('erased') }, 'bricked', /^bricked: slot A at 0x8020000 holds no valid image \(erased\)/],
    ['an MCU silent after its last start', { ...upgraded, silentAfterStart: true, lastReport: undefined }, 'bricked', /^bricked: the MCU reported no version after its last start; slot A holds the new image 2_0_0/],
    ['an MCU reporting a version its flash does not hold', { ...upgraded, lastReport: '2_0_0_x', moduleResult: 10706 }, 'inconsistent', /^inconsistent: the MCU reports 2_0_0_x but slot A holds the new image 2_0_0 —/],
    ['10705 over the old image', { ...intact, moduleResult: 10705 }, 'inconsistent', /^inconsistent: the module said 10705 but slot A still holds the old image 1_0_0/],
    ['10706 over the new image', { ...upgraded, moduleResult: 10706 }, 'inconsistent', /^inconsistent: slot A holds the new image 2_0_0 but the module said 10706 \(upgrade failed\); boot record seq 9 confirmed —/],
    ['the new image, but the module never settled the OTA', { ...upgraded, moduleResult: undefined }, 'inconsistent', /^inconsistent: slot A holds the new image 2_0_0 but the module never settled the OTA \(no 10705\)/],
    ['the new image and 10705, but no version report tapped', { ...upgraded, lastReport: undefined }, 'inconsistent', /^inconsistent: slot A holds the new image 2_0_0 and the module said 10705, but no version report was tapped/],
    ['an MCU silent after its last start on the old image', { ...intact, silentAfterStart: true, lastReport: undefined }, 'bricked', /^bricked: the MCU reported no version after its last start; slot A holds the old image 1_0_0; boot record seq 9 confirmed —/],
    ['the old image with the boot record mid-swap', { ...intact, bootRecord: record('swapping') }, 'inconsistent', /^inconsistent: slot A holds the old image 1_0_0 but the boot record is not settled \(seq 9 swapping\)/],
    ['a revert whose MCU was not heard after it', { ...rolledBack, lastReport: undefined }, 'rolled-back', /slot A = 1_0_0 by read-back, the MCU reports 1_0_0, module said 10706; boot record seq 9 confirmed —/],
    ['no result from the module and no finding', { ...intact, moduleResult: undefined }, 'failed-intact', /^failed-intact: the old image never left: slot A = 1_0_0 by read-back, no result from the module —/],
    // The flash decides by bytes; a header that spells the version otherwise does not make the report wrong.
    ['the old image named otherwise by its header', { ...rolledBack, slotA: slot('from', { identified: { component: 'STM32', version: '1.0.0' } }) }, 'rolled-back', /^rolled-back: /],
    ['the new image named otherwise by its header', { ...upgraded, slotA: slot('target', { identified: { component: 'STM32', version: '2.0.0' } }) }, 'upgraded', /^upgraded: /],
    ['an install whose slot B holds the download', { ...intact, installRequested: true, slotB: slot('target') }, 'failed-intact', /^failed-intact \(module-failed\): the old image never left/],
    ['an install whose slot B holds the old image (swapped there)', { ...intact, installRequested: true, slotB: slot('from') }, 'failed-intact', /^failed-intact \(module-failed\): the old image never left/],
    ['an install with no read-back of slot B', { ...intact, installRequested: true, slotB: undefined }, 'failed-intact', /^failed-intact \(module-failed\): the old image never left/],
    ['the new image left in trial', { ...upgraded, bootRecord: record('trial') }, 'inconsistent', /boot record is not confirmed \(seq 9 trial\): the next reset reverts it/],
    ['a third image in slot A', { ...upgraded, lastReport: '1_1_0', slotA: slot('other') }, 'inconsistent', /^inconsistent: slot A holds STM32 1_1_0, neither the old nor the new image; first difference at 0x8020200/],
    ['a revert the module never heard of', { ...rolledBack, moduleResult: undefined }, 'inconsistent', /never said 10706/],
  ])('%s', (_name, e, outcome, summary) => {
    const v = judgeDut(e);
    expect(v.failure).toBeUndefined();
    expect(v.outcome).toBe(outcome);
    expect(v.summary).toMatch(summary);
    expect(v.ok).toBe(e.expected.includes(v.outcome!));
  });

  it('an expected finding passes: a planted defect whose verdict is bricked', () => {
    const v = judgeDut({ ...upgraded, expected: ['bricked'], slotA: slot('erased') });
    expect(v).toMatchObject({ outcome: 'bricked', ok: true });
  });

  it.each<[string, Partial<DutEvidence>, string, RegExp]>([
    ['an install of a download that does not match 10701 (skip-md5)', { installRequested: true, installedBadDownload: 'md5 aaaa of the 8960 bytes it read, 10701 says bbbb' }, 'hash-mismatch-accepted', /^failed-intact, failure \(hash-mismatch-accepted\): the MCU asked to install \(AT\+QIOTUPDATE=3\) a download that does not match 10701: md5 aaaa/],
    [
      'an install with slot B written otherwise than downloaded (wrong-offset)',
      { installRequested: true, slotB: slot('other', { identified: undefined, identity: 'no image header', address: 0x0804_0000, firstDifference: 0x0804_0000, tapLine: 'tap line 40 (4.231 [mod→mcu] +QIOTOTARD: 0,1024 …)' }) },
      'slot-b-mismatch',
      /failure \(slot-b-mismatch\): the MCU asked to install 2_0_0 but slot B holds no image header; first difference at 0x8040000 against 2_0_0 \(target\), from tap line 40/,
    ],
    ['an install with slot B erased', { installRequested: true, slotB: slot('erased', { address: 0x0804_0000, firstDifference: 0x0804_0000 }) }, 'slot-b-mismatch', /failure \(slot-b-mismatch\): the MCU asked to install 2_0_0 but slot B holds erased flash; first difference at 0x8040000/],
    ['a download not restarted after the module rebooted (no-restart)', { downloadNotRestarted: 'after RDY the piece starts at 0, the MCU read at 3072' }, 'download-not-restarted', /failure \(download-not-restarted\): after RDY/],
    ['a plan never answered (ignores-10706)', { moduleResult: undefined, planNotAnswered: '10700 at 1.2 s: no AT+QIOTUPDATE within 16000 ms' }, 'plan-not-answered', /failure \(plan-not-answered\): 10700 at 1\.2 s.*no result from the module/],
  ])('%s: the old image stayed, and the finding fails the run', (_name, more, type, summary) => {
    const v = judgeDut({ ...intact, ...more });
    expect(v.outcome).toBe('failed-intact');
    expect(v.failure).toMatchObject({ type, kind: 'firmware' });
    expect(v.expected).toEqual(['upgraded']);
    expect(v.ok).toBe(false);
    expect(v.summary).toMatch(summary);
  });

  it('the rig’s own trouble is a failure, not a finding about the image', () => {
    expect(judgeDut({ ...upgraded, error: { kind: 'infrastructure', name: 'InfrastructureError', message: 'tap vanished' } }).failure).toMatchObject({ type: 'infrastructure' });
    expect(judgeDut({ ...upgraded, error: { kind: 'internal', name: 'TypeError', message: 'x is undefined' } }).failure).toMatchObject({ type: 'internal', kind: 'internal' });
    expect(judgeDut({ ...upgraded, slotA: undefined }).failure).toMatchObject({ type: 'infrastructure', message: 'slot A was not read back, so nothing can be concluded' });
    expect(judgeDut({ ...upgraded, error: { kind: 'config', name: 'ConfigError', message: 'no console' } }).failure).toMatchObject({ type: 'config', kind: 'config', message: 'no console' });
    expect(judgeDut({ ...upgraded, error: { kind: 'usage', name: 'UsageError', message: 'bad fault' } }).failure).toMatchObject({ type: 'config', kind: 'usage' });
  });

  it('a protocol error (a wait that ran out) still ends in what the flash shows', () => {
    expect(judgeDut({ ...intact, error: { kind: 'protocol', name: 'DutTimeoutError', message: 'no 10705 within 60000 ms', timeout: true } }).outcome).toBe('failed-intact');
  });
});
