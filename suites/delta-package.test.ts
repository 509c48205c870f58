// Delta package: the module delivers a VCDIFF delta from v1_0_0; the MCU rebuilds v2_0_0 from the image it
// runs. The cloud offers a delta only to a device on its source version.
import { describe, expect } from 'vitest';
import { EventTimeoutError, isEvent, UpdateAction } from '../rig/quecthing/index.ts';
import { expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

const { test, budget, retry } = await sotaSuite({ feature: 'Delta package' });

describe('delta package', () => {
  test('v1_0_0 → v2_0_0 through a delta', { timeout: budget.upgrade, retry }, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('delta_1_0_0_to_2_0_0');
    expect(pkg.type).toBe('delta');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v1 });
    expectOutcome(run, 'upgraded');
    // Only the delta crossed the UART, yet the whole new image is in flash.
    expect(run.read.bytes).toBe(pkg.size);
    expect(run.package.targetSha256).toBe(images.image('2_0_0').sha256);
    await sota.readback(images.image('2_0_0'));
  });

  test('a device at v1_1_0 gets no plan for the v1_0_0 delta; announcing 1_0_0 gets it', { timeout: budget.upgrade, retry }, async ({ sota, station, qt, images }) => {
    const v11 = images.image('1_1_0');
    const pkg = images.package('delta_1_0_0_to_2_0_0');
    const sent: string[] = [];
    const off = station.module.at.on('transcript', (e) => {
      if (e.dir === 'TX') sent.push(e.text);
    });
    await sota.baseline(v11);
    await sota.describeUpgrade(pkg, v11);
    const plan = await sota.recorder.step('prepare the delta plan', () => station.plans.prepare(sota.spec(pkg), { signal: sota.signal }));
    expect(plan.expected.sourceVersion).toBe('1_0_0');
    const T = station.timeouts;
    const events = qt.events();
    try {
      await sota.recorder.step('AT+QIOTOTAREQ=1 as a device at 1_1_0', () => qt.otaRequest({ sha256: true, ...sota.cmd }));
      // The cloud answers a request within its plan wait; nothing may come for this device.
      const offered = await sota.recorder.step(`no 10700 within ${T.planWaitMs + T.marginMs} ms`, () =>
        events
          .next(isEvent('ota-plan'), { timeoutMs: T.planWaitMs + T.marginMs, signal: sota.signal, expected: 'no +QIOTEVT: 7,10700 for a device on another source version' })
          .then(
            (e) => e.raw,
            (err: unknown) => {
              if (err instanceof EventTimeoutError) return undefined;
              throw err;
            },
          ),
      );
      expect(offered, `${station.name}: the cloud offered a delta from 1_0_0 to a device at 1_1_0`).toBeUndefined();
      // The silence means something only if the module was told 1_1_0 …
      const announced = sent.filter((l) => l.startsWith(`AT+QIOTMCUVER="${station.component}",`));
      expect(announced.at(-1), `${station.name}: the version the device announced before the request`).toBe(`AT+QIOTMCUVER="${station.component}","1_1_0"`);
      // … and if the same plan does reach a device on its source version.
      await sota.recorder.step('AT+QIOTOTAREQ=1 as a device at 1_0_0', async () => {
        await qt.setMcuVersion(station.component, '1_0_0', sota.cmd);
        await qt.otaRequest({ sha256: true, ...sota.cmd });
      });
      const plan10700 = await sota.recorder.step(`10700 within ${T.planWaitMs + T.marginMs} ms`, () =>
        events.next(isEvent('ota-plan'), { timeoutMs: T.planWaitMs + T.marginMs, signal: sota.signal, expected: `+QIOTEVT: 7,10700,"${station.component}","1_0_0","2_0_0",… for a device at 1_0_0` }),
      );
      expect(plan10700).toMatchObject({ component: station.component, source: '1_0_0', target: '2_0_0', size: pkg.size });
      // Refused, so that the module leaves RECEIVED_PLAN; the flash still holds 1_1_0.
      await qt.otaUpdate(UpdateAction.refuse, sota.cmd);
      await qt.setMcuVersion(station.component, '1_1_0', sota.cmd);
    } finally {
      events.close();
      off();
    }
    await sota.readback(v11);
  });
});
