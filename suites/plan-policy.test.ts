// Plan policy (protocol §7): the blacklist beats the whitelist; a plan whose battery or signal minimum the
// device does not meet is refused by the MCU (the module does not enforce them, §5); a refused plan is not
// pushed again within its rejection period, and is pushed again after it.
//
// Nothing is downloaded here, so the built-in virtual station runs its clock 100× faster: the 10 min
// rejection period and the 10 min push cadence take 6 s each. Blacklists, whitelists and rejection
// periods are set through the plan API; a station whose plans are declared (a bench on the real Developer
// Center, which has no plan API) fails those tests saying so.
import { describe, expect } from 'vitest';
import { EventTimeoutError, isEvent, UpdateAction } from '../rig/quecthing/index.ts';
import type { EventCursor, OtaPlanEvent } from '../rig/quecthing/index.ts';
import type { Sota } from './fixtures.ts';
import { expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

const { test, budget, retry, suite } = await sotaSuite({ feature: 'Plan policy', speed: { timeScale: 0.01 } });
const o = { timeout: budget.upgrade, retry };
/** The console's minimum "Effective Period for Push Rejection" and its push cadence (protocol §7). */
const REJECTION_MINUTES = 10;
const PUSH_INTERVAL_MINUTES = 10;

/** The next 10700 within `ms`, or undefined when none came. */
async function planWithin(sota: Sota, events: EventCursor, ms: number, what: string): Promise<OtaPlanEvent | undefined> {
  return sota.recorder.step(what, () =>
    events.next(isEvent('ota-plan'), { timeoutMs: Math.max(1, Math.round(ms)), signal: sota.signal, expected: '+QIOTEVT: 7,10700' }).then(
      (e) => e as OtaPlanEvent,
      (err: unknown) => {
        if (err instanceof EventTimeoutError) return undefined;
        throw err;
      },
    ),
  );
}

function requireApi(sota: Sota, what: string): void {
  sota.require(what, sota.station.plans.kind === 'api', `its plans are declared in the config (Developer Center has no plan API), so the rig cannot ${what} itself`);
}

describe('plan policy', () => {
  test('the blacklist beats the whitelist', o, async ({ sota, station, qt, images }) => {
    requireApi(sota, 'put its device on a plan blacklist');
    const v1 = images.image('1_0_0');
    const pkg = images.package('full_2_0_0');
    await sota.baseline(v1);
    await sota.describeUpgrade(pkg, v1);
    const imei = await qt.imei(sota.cmd);
    const T = station.timeouts;
    const events = qt.events();
    try {
      await sota.recorder.step(`plan with ${imei} on both lists`, () => station.plans.prepare(sota.spec(pkg, { whitelist: [imei], blacklist: [imei] }), { signal: sota.signal }));
      await qt.otaRequest({ sha256: true, ...sota.cmd });
      const blocked = await planWithin(sota, events, T.planWaitMs + T.marginMs, 'no 10700 for a blacklisted device');
      expect(blocked?.raw, `${station.name}: a device on the blacklist was offered the plan`).toBeUndefined();

      // The control: the same device on the whitelist alone is offered the plan.
      await sota.recorder.step('end the plan', () => station.plans.clear({ signal: sota.signal }));
      await sota.recorder.step(`plan with ${imei} on the whitelist only`, () => station.plans.prepare(sota.spec(pkg, { whitelist: [imei] }), { signal: sota.signal }));
      await qt.otaRequest({ sha256: true, ...sota.cmd });
      const offered = await planWithin(sota, events, T.planWaitMs + T.marginMs, '10700 for a whitelisted device');
      expect(offered?.target, `${station.name}: a whitelisted device was not offered the plan`).toBe(pkg.version);
      await sota.recorder.step('refuse it (nothing is to be installed here)', () => qt.otaUpdate(UpdateAction.refuse, sota.cmd));
    } finally {
      events.close();
    }
    await sota.readback(v1);
  });

  test('battery below the plan minimum: refused', o, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0'), { minBattery: 30 }), current: v1, battery: 20, expect: 'refused' });
    expectOutcome(run, 'refused', 'refused');
    expect(run.refusal).toMatch(/battery 20% below the plan's minimum 30%/);
    expect(run.transcript.some((l) => l.dir === 'TX' && l.text === 'AT+QIOTUPDATE=0')).toBe(true);
    await sota.readback(v1);
  });

  test('signal below the plan minimum: refused', o, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    // -50 dBm is above the best reading AT+CSQ can give (31: -51 dBm or more), so no device meets it.
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0'), { minSignal: -50 }), current: v1, expect: 'refused' });
    expectOutcome(run, 'refused', 'refused');
    expect(run.refusal).toMatch(/signal .* below the plan's minimum -50 dBm/);
    expect(run.transcript.some((l) => l.dir === 'TX' && l.text === 'AT+CSQ')).toBe(true);
    await sota.readback(v1);
  });

  const minute = 60_000 * suite.timeScale;
  test(
    'a refused plan is pushed again after its rejection period',
    { timeout: budget.upgrade + (REJECTION_MINUTES + 2 * PUSH_INTERVAL_MINUTES) * minute, retry },
    async ({ sota, station, qt, images }) => {
      requireApi(sota, 'set a plan rejection period');
      const v1 = images.image('1_0_0');
      const pkg = images.package('full_2_0_0');
      await sota.baseline(v1);
      await sota.describeUpgrade(pkg, v1);
      const T = station.timeouts;
      const events = qt.events();
      try {
        await sota.recorder.step(`plan pushed actively, rejection period ${REJECTION_MINUTES} min`, () =>
          station.plans.prepare(sota.spec(pkg, { pushActively: true, rejectionPeriodMinutes: REJECTION_MINUTES }), { signal: sota.signal }),
        );
        // No AT+QIOTOTAREQ in this test: every 10700 is a push.
        const pushed = await planWithin(sota, events, T.planWaitMs + T.marginMs, 'the plan is pushed');
        expect(pushed?.target, `${station.name}: the plan was not pushed`).toBe(pkg.version);
        await sota.recorder.step('refuse (AT+QIOTUPDATE=0)', () => qt.otaUpdate(UpdateAction.refuse, sota.cmd));
        const period = REJECTION_MINUTES * minute;
        const early = await planWithin(sota, events, period * 0.9, `no push within the rejection period (${Math.round(period)} ms)`);
        expect(early?.raw, `${station.name}: the refused plan was pushed again within its rejection period`).toBeUndefined();
        const again = await planWithin(sota, events, period * 0.1 + PUSH_INTERVAL_MINUTES * minute + T.planWaitMs + T.marginMs, 'pushed again after it');
        expect(again?.target, `${station.name}: the refused plan was not pushed again after its rejection period`).toBe(pkg.version);
        await sota.recorder.step('refuse again', () => qt.otaUpdate(UpdateAction.refuse, sota.cmd));
      } finally {
        events.close();
      }
      await sota.readback(v1);
    },
  );
});
