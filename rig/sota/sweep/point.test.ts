// calibrate() over recorded runs: what a sweep needs of its clean runs, and what it says when one ends early.
import { describe, expect, test } from 'vitest';
import { FirmwareError } from '../../errors.ts';
import type { Station } from '../../station/station.ts';
import type { RunRecord } from '../record.ts';
import { calibrate } from './point.ts';
import type { SweepFlows, SweepSubject } from './point.ts';
import { dutRecord } from './testing/records.ts';

const station = { name: 'bench-4', component: 'MCU1', timeouts: { marginMs: 500 } } as unknown as Station;
const subject = { mode: 'dut', package: { name: 'full_2_0_0' }, from: { key: '1_0_0' }, allow: ['upgraded', 'rolled-back', 'failed-intact'], nextCheck: false } as unknown as SweepSubject;

/** Flows that hand out the given records in turn, as clean runs would. */
function replaying(records: RunRecord[]): SweepFlows {
  let i = 0;
  const next = () => Promise.resolve(records[i++]!);
  return { dut: next, proxy: next, baseline: () => Promise.resolve() };
}

describe('calibrate', () => {
  test('clean runs through every chosen window: the timeline has them and each record was kept as it ended', async () => {
    const kept: number[] = [];
    const cal = await calibrate(station, subject, replaying([dutRecord(), dutRecord({ shift: 20, shiftFrom: 1300 })]), undefined, 2, {
      windows: ['swap', 'trial'],
      keep: (_r, i) => (kept.push(i), `records/calibration-${i}.json`),
    });
    expect(cal.timeline.windows.map((w) => w.name)).toEqual(expect.arrayContaining(['swap', 'trial']));
    expect(kept).toEqual([1, 2]);
  });

  test('a clean run that ended before a chosen window (in a verdict the sweep allows) is a finding about the upgrade, named with its verdict, its windows and its record', async () => {
    const early: RunRecord = { ...dutRecord({ cutAt: 1000 }), verdict: { outcome: 'failed-intact', ok: true, summary: 'failed-intact: the MCU gave up the download' } } as RunRecord;
    const err = await calibrate(station, subject, replaying([dutRecord(), early]), undefined, 3, { windows: ['swap'], keep: (_r, i) => `records/calibration-${i}.json` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirmwareError);
    const e = err as FirmwareError;
    expect(e.message).toMatch(/clean calibration run 2 of 3 ended before window swap/);
    expect(e.station).toBe('bench-4');
    expect(e.message).toContain('failed-intact: the MCU gave up the download');
    expect(e.message).toMatch(/the run went through plan, download;/);
    expect(e.message).toContain('records/calibration-2.json');
  });

  test('without chosen windows a short clean run is kept as it is (the caller aims at what the runs show)', async () => {
    const cal = await calibrate(station, subject, replaying([dutRecord({ cutAt: 1000 })]), undefined, 1);
    expect(cal.timeline.windows.map((w) => w.name)).not.toContain('swap');
  });
});
