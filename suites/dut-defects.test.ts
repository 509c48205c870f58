// Every planted defect of the virtual MCU caught with the verdict fixtures/README.md names for it: the
// scenario that shows the defect (starting image, package, cloud fault, fault) and the outcome a correct rig
// reports, with the finding beside it where the old image survived but the MCU misbehaved on the way. One
// row per defect, plus the controls that tell a defect from the scenario (the same cut with the safe
// bootloader, the unsafe bootloader without a cut).
import { describe } from 'vitest';
import { parseFault } from '../rig/sota/index.ts';
import type { FailureType, Outcome } from '../rig/sota/index.ts';
import { sotaSuite } from './fixtures.ts';
import { expectDut, expectFaultsFired } from './support/evidence.ts';

const { test, budget, retry, suite } = await sotaSuite({ feature: 'dut mode: planted defects', manifest: 'fixtures/mcu/manifest.json', startImage: 'vbl-1.0', sim: { mcu: true } });
const T = suite.timeouts;
// From any start to the version report: a boot, the 5-unit swap (~1.1 s of protocol time), a watchdog window
// (10 s); the station's boot time covers them at any time scale the suites use, and a bricked MCU costs no more.
const bounds = { reportWithinMs: T.bootMs + Math.round(T.updateWaitMs / 100) + T.marginMs, settleMs: Math.round(budget.upgrade / 2) };

interface Row {
  defect: string;
  bootloader?: string;
  from: string;
  pkg: string;
  cloudFault?: string;
  fault?: string;
  outcome: Outcome;
  finding?: FailureType;
}

// fixtures/README.md: early in the swap, so that the cut's latency (wall time) still lands inside it.
const SWAP_CUT = 'console=swap unit 2/5 step 1:power-cycle-target=200';
const rows: Row[] = [
  { defect: 'never-confirms', from: '1_0_0', pkg: 'full_2_0_0-never-confirms', outcome: 'rolled-back' },
  { defect: 'crash-at-boot', from: '1_0_0', pkg: 'full_2_0_0-crash-at-boot', outcome: 'rolled-back' },
  { defect: 'wrong-version', from: '1_0_0', pkg: 'full_2_0_0-wrong-version', outcome: 'inconsistent' },
  { defect: 'skip-md5', from: '1_0_0-skip-md5', pkg: 'full_2_0_0', cloudFault: 'corrupt-next-download', outcome: 'failed-intact', finding: 'hash-mismatch-accepted' },
  { defect: 'wrong-offset', from: '1_0_0-wrong-offset', pkg: 'full_2_0_0', outcome: 'failed-intact', finding: 'slot-b-mismatch' },
  { defect: 'no-restart', from: '1_0_0-no-restart', pkg: 'full_2_0_0', fault: 'offset=2048:power-cycle-module=300', outcome: 'failed-intact', finding: 'download-not-restarted' },
  { defect: 'unsafe-swap', bootloader: 'vbl-1.0-unsafe', from: '1_0_0', pkg: 'full_2_0_0', fault: SWAP_CUT, outcome: 'bricked' },
  { defect: 'none (control: the same cut with the safe bootloader)', from: '1_0_0', pkg: 'full_2_0_0', fault: SWAP_CUT, outcome: 'upgraded' },
  { defect: 'unsafe-swap (control: no cut)', bootloader: 'vbl-1.0-unsafe', from: '1_0_0', pkg: 'full_2_0_0', outcome: 'upgraded' },
];

describe('planted defects of the virtual MCU → their verdicts', () => {
  for (const r of rows) {
    const what = `${r.defect}: ${r.from} + ${r.pkg}${r.cloudFault ? ` (${r.cloudFault})` : ''}${r.fault ? `, ${r.fault}` : ''} → ${r.outcome}${r.finding ? `, ${r.finding}` : ''}`;
    test(what, { timeout: budget.disturbed, retry }, async ({ sota, images }) => {
      const faults = r.fault ? [parseFault(r.fault)] : [];
      const run = await sota.dut({
        plan: sota.spec(images.package(r.pkg)),
        from: images.image(r.from),
        bootloader: images.image(r.bootloader ?? 'vbl-1.0'),
        faults,
        ...(r.cloudFault ? { cloudFaults: [{ kind: r.cloudFault }] } : {}),
        ...bounds,
      });
      expectFaultsFired(run, faults);
      expectDut(run, r.outcome, r.finding);
    });
  }

  // The stuck state is the MCU's RAM: the second plan comes without a reset, as in the field.
  test('ignores-10706: after a rejected download (10706) the next plan is never answered → failed-intact, plan-not-answered', { timeout: 2 * budget.disturbed, retry }, async ({ sota, images }) => {
    const first = await sota.dut({ plan: sota.spec(images.package('full_2_0_0')), from: images.image('1_0_0-ignores-10706'), bootloader: images.image('vbl-1.0'), cloudFaults: [{ kind: 'corrupt-next-download' }], ...bounds });
    expectDut(first, 'failed-intact');
    const next = await sota.dut({ plan: sota.spec(images.package('full_1_1_0'), { pushActively: true }), from: images.image('1_0_0-ignores-10706'), fresh: false, ...bounds });
    expectDut(next, 'failed-intact', 'plan-not-answered');
  });
});
