// dut mode: the MCU image under test upgrades itself (the virtual MCU's reference client and A/B bootloader
// on the virtual station, the real firmware on a bench), the rig arranges the flash, listens on the taps and
// the console, cuts power at the moments it sees, and judges by reading slot A, slot B and the boot record
// back over SWD. Images come from fixtures/mcu (linked for slot A, the virtual bootloader at the flash base).
import { describe, expect } from 'vitest';
import { InfrastructureError } from '../rig/errors.ts';
import { parseFault } from '../rig/sota/index.ts';
import type { DutRun, Fault, Outcome } from '../rig/sota/index.ts';
import { sotaSuite } from './fixtures.ts';
import { expectDut, expectFaultsFired } from './support/evidence.ts';

// A fresh virtual station starts with the bootloader at the flash base: the first arrange only writes slot A.
const { test, budget, retry, suite } = await sotaSuite({ feature: 'dut mode', manifest: 'fixtures/mcu/manifest.json', startImage: 'vbl-1.0', sim: { mcu: true } });
const o = { timeout: budget.disturbed, retry };
const T = suite.timeouts;
// From any start to the version report: a boot, the 5-unit swap (~1.1 s of protocol time), a watchdog window
// (10 s); the station's boot time covers them at any time scale the suites use, and a bricked MCU costs no more.
const bounds = { reportWithinMs: T.bootMs + Math.round(T.updateWaitMs / 100) + T.marginMs, settleMs: Math.round(budget.upgrade / 2) };

describe('dut mode on the virtual MCU', () => {
  test('full package 1_0_0 → 2_0_0: upgraded, confirmed, slot B holds the old image', o, async ({ sota, images }) => {
    const run = await sota.dut({ plan: sota.spec(images.package('full_2_0_0')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), ...bounds });
    expectDut(run, 'upgraded');
    expect(run.dut.bootRecord.after?.phase).toBe('confirmed');
    // The swap exchanged the slots: the old image waits in slot B.
    expect(run.dut.slots.b?.holds).toBe('from');
    expect(run.dut.reports.map((r) => r.version)).toEqual(['1_0_0', '2_0_0']);
    expect(run.phases.map((p) => p.name)).toEqual(expect.arrayContaining(['block reads', 'swap', 'trial boot', 'confirmation']));
  });

  test('delta package 1_0_0 → 2_0_0: applied by the MCU as it writes slot B', o, async ({ sota, images }) => {
    const run = await sota.dut({ plan: sota.spec(images.package('delta_1_0_0_to_2_0_0')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), ...bounds });
    expectDut(run, 'upgraded');
    expect(run.package.type).toBe('delta');
    expect(run.read.bytes).toBe(images.package('delta_1_0_0_to_2_0_0').size);
  });

  test('the next upgrade is taken by the image just installed (1_0_0 → 1_1_0 → 2_0_0, no re-arranging)', { ...o, timeout: 2 * budget.disturbed }, async ({ sota, images }) => {
    const first = await sota.dut({ plan: sota.spec(images.package('full_1_1_0')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), ...bounds });
    expectDut(first, 'upgraded');
    const next = await sota.dut({ plan: sota.spec(images.package('full_2_0_0')), from: images.image('1_1_0'), bootloader: images.image('vbl-1.0'), ...bounds });
    // Slot A already held 1_1_0, put there by the MCU itself: nothing was programmed over SWD.
    expect(next.dut.arrange.slotA).toBe('kept');
    expectDut(next, 'upgraded');
  });

  /**
   * `window`: where the fault must take effect for the case to test what it says. A cut aimed at the swap
   * lands a relay switch after the console line that triggered it; on a loaded machine the rest of the swap
   * can finish first (the record's `landed` says so, from the MCU's last line before it restarted): then the
   * run tested the trial boot, not the resume — the rig's miss, an infrastructure error the suite retries.
   */
  const faulted = (name: string, fault: string, expected: Outcome, check?: (run: DutRun) => void, window?: string) => ({ name, fault, expected, check, window });
  const cases = [
    // The MCU is reading blocks: after RDY it registers again and reads the piece the module serves anew from 0.
    faulted('module power cut during the download: the MCU reads it again from 0', 'offset=2048:power-cycle-module=300', 'upgraded', (run) => {
      expect(run.dut.moduleEvents.filter((e) => e.raw === 'RDY').length).toBeGreaterThanOrEqual(1);
    }),
    // The MCU restarts, reports the version it runs while the module holds the download: §4.3 settles it as 10706.
    faulted('MCU power cut while it writes blocks: the old image stays', 'offset=4096:power-cycle-target=200', 'failed-intact'),
    faulted('MCU power cut during the bootloader’s swap: the swap resumes from its status log', 'console=swap unit 3/\\d+ step 2:power-cycle-target=200', 'upgraded', (run) => {
      expect(run.dut.console.some((l) => /resume swap/.test(l.text))).toBe(true);
    }, 'swap'),
    faulted('reset during the trial boot: the unconfirmed image is reverted', 'console=start trial:reset-target=50', 'rolled-back', (run) => {
      expect(run.dut.slots.b?.holds).toBe('target');
    }, 'trial'),
    faulted('power cut 30 ms after AT+QIOTUPDATE=3 (time offset after a trigger)', 'after-update3+30ms:power-cycle-target=200', 'upgraded'),
  ];
  for (const c of cases) {
    test(c.name, o, async ({ sota, images, station }) => {
      const faults: Fault[] = [parseFault(c.fault)];
      sota.require(`execute ${c.fault}`, faults.every((f) => f.action.kind !== 'power-cycle' || station.power.can('cycle', f.action.part)), 'no supply line for it');
      const run = await sota.dut({ plan: sota.spec(images.package('full_2_0_0')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), faults, ...bounds });
      expectFaultsFired(run, faults);
      const landed = run.fired[0]?.landed;
      if (c.window !== undefined && landed?.window !== c.window) {
        const seen = `it took effect ${landed ? `at ${(landed.t / 1000).toFixed(3)} s, in window ${landed.window ?? '(before the plan)'}` : 'at no known moment'}`;
        throw new InfrastructureError('the fault did not land in its window', { station: station.name, expected: `${c.fault} to take effect in window ${c.window}`, seen });
      }
      expectDut(run, c.expected);
      c.check?.(run);
    });
  }

  test('rollback of a never-confirming image (its self-test fails; the watchdog resets it)', o, async ({ sota, images }) => {
    const run = await sota.dut({ plan: sota.spec(images.package('full_2_0_0-never-confirms')), from: images.image('1_0_0'), bootloader: images.image('vbl-1.0'), ...bounds });
    expectDut(run, 'rolled-back');
    expect(run.dut.moduleEvents.at(-1)?.code).toBe(10706);
  });

  test('10706 and recovery: a download the MCU rejects (10706), then the next plan taken without a reset', { ...o, timeout: 2 * budget.disturbed }, async ({ sota, images }) => {
    // The cloud corrupts the download: the MCU's MD5 check rejects it and reports 1_0_0, the module says 10706.
    const failed = await sota.dut({
      plan: sota.spec(images.package('full_2_0_0')),
      from: images.image('1_0_0'),
      bootloader: images.image('vbl-1.0'),
      cloudFaults: [{ kind: 'corrupt-next-download' }],
      ...bounds,
    });
    expectDut(failed, 'failed-intact');
    // The MCU never asked to install what it rejected.
    expect(failed.dut.tap.some((l) => l.text === 'AT+QIOTUPDATE=3')).toBe(false);
    // The same MCU session, not reset: an idle client answers the next (pushed) plan and upgrades.
    const again = await sota.dut({ plan: sota.spec(images.package('full_1_1_0'), { pushActively: true }), from: images.image('1_0_0'), fresh: false, ...bounds });
    expectDut(again, 'upgraded');
    expect(again.dut.arrange.bootRecord).toMatch(/not arranged/);
  });
});
