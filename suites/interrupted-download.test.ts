// Interrupted download: the module loses power or network while it downloads or while the MCU reads the
// blocks; the flow recovers as a real MCU would (register again, request again, read from byte 0 —
// protocol §4.4) and the upgrade still completes. After more than 5 failed downloads the module gives up
// (10706) and the flash must be untouched.
//
// The faults during the download trigger on 10701, which a module always sends when the download starts
// (§4.1), not on 10702: that comes 0..n times, about every 5 s (§5), and an LTE download of 25 KiB usually
// ends before the first. The virtual module downloads at 10 kB/s (2.5 s of protocol time for 25 KiB, less
// than one 10702 period), as a good LTE link would, so the virtual station tests the same moment as a bench.
//
// The tests go back and forth between 1_0_0 and 2_0_0 (the second one is a downgrade plan), so that each
// baseline finds its image already in flash: programming the virtual STM32 is the slowest part of a test.
import { describe, expect } from 'vitest';
import { parseFault } from '../rig/sota/index.ts';
import { expectFaultsFired, expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

const { test, budget, retry } = await sotaSuite({ feature: 'Interrupted download', sim: { downloadRate: 10_000 } });
const o = { timeout: budget.disturbed, retry };

describe('interrupted download', () => {
  test('module power cut while downloading (1_0_0 → 2_0_0)', o, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const faults = [parseFault('event=10701:power-cycle-module=500')];
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0')), current: v1, faults });
    expectFaultsFired(run, faults);
    expectOutcome(run, 'upgraded');
    expect(run.fired.map((f) => f.phase)).toEqual(['download']);
    expect(run.events.some((e) => e.kind === 'reboot'), 'no RDY after the power cut').toBe(true);
    await sota.readback(images.image('2_0_0'));
  });

  test('module power cut during the block reads (2_0_0 → 1_0_0)', o, async ({ sota, images }) => {
    const v2 = images.image('2_0_0');
    const pkg = images.package('full_1_0_0');
    await sota.baseline(v2);
    const faults = [parseFault('offset=8192:power-cycle-module=500')];
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v2, faults });
    expectFaultsFired(run, faults);
    expectOutcome(run, 'upgraded');
    expect(run.fired.map((f) => f.phase)).toEqual(['download']);
    // §4.4: no resume — the file is read again from byte 0 after the reboot.
    const fromZero = run.transcript.filter((l) => l.dir === 'TX' && l.text.startsWith('AT+QIOTOTARD=0,')).length;
    expect(fromZero, 'the reads did not restart from 0').toBe(2);
    expect(run.read.bytes).toBeGreaterThan(pkg.size);
    await sota.readback(images.image('1_0_0'));
  });

  test('network loss (AT+CFUN=4) during the download (1_0_0 → 2_0_0)', o, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const faults = [parseFault('event=10701:network-cut=1000')];
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0')), current: v1, faults });
    expectFaultsFired(run, faults);
    expectOutcome(run, 'upgraded');
    expect(run.transcript.some((l) => l.dir === 'TX' && l.text === 'AT+CFUN=4')).toBe(true);
    expect(run.transcript.some((l) => l.dir === 'TX' && l.text === 'AT+CFUN=1')).toBe(true);
    await sota.readback(images.image('2_0_0'));
  });

  test('more than 5 failed downloads: 10706, flash untouched (2_0_0 stays)', o, async ({ sota, station, images }) => {
    const v2 = images.image('2_0_0');
    sota.require('make downloads fail', station.plans.cloudFaults.includes('download-error'), `its plan source (${station.plans.kind}) injects ${station.plans.cloudFaults.join(', ') || 'no cloud faults'}`);
    await sota.baseline(v2);
    const run = await sota.upgrade({
      plan: sota.spec(images.package('full_1_0_0')),
      current: v2,
      cloudFaults: [{ kind: 'download-error', params: { count: 6 } }],
      expect: 'failed-intact',
    });
    expectOutcome(run, 'failed-intact', 'module-failed');
    expect(run.events.at(-1)?.code).toBe(10706);
    expect(run.events.some((e) => e.code === 10703), 'a piece was delivered although every download failed').toBe(false);
    await sota.readback(v2);
  });
});
