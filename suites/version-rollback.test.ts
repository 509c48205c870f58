// Version rollback: a plan may take the MCU back to an older version; a package that does not rebuild into
// a valid image is refused and the running version stays; an MCU that reports a version other than the
// plan's target after updating makes the module fail the upgrade (10706, protocol §4.3).
import { describe, expect } from 'vitest';
import { isEvent } from '../rig/quecthing/index.ts';
import type { ModuleEvent } from '../rig/quecthing/index.ts';
import { UpdateAction } from '../rig/quecthing/index.ts';
import { expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

// A fresh virtual station starts at 2_0_0: the downgrade's baseline is already in flash.
const { test, budget, retry } = await sotaSuite({ feature: 'Version rollback', startImage: '2_0_0' });
const o = { timeout: budget.upgrade, retry };
const is10706 = (e: ModuleEvent) => 'code' in e && e.type === 7 && e.code === 10706;

describe('version rollback', () => {
  test('a downgrade plan v2_0_0 → v1_0_0', { timeout: budget.upgrade + budget.smoke, retry }, async ({ sota, images }) => {
    const v2 = images.image('2_0_0');
    await sota.baseline(v2);
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_1_0_0')), current: v2 });
    expectOutcome(run, 'upgraded');
    expect(run.plan.targetVersion).toBe('1_0_0');
    await sota.readback(images.image('1_0_0'));
  });

  test('a corrupted package is refused and v1_0_0 stays', o, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(images.package('corrupt_full_2_0_0')), current: v1, expect: 'failed-intact' });
    expectOutcome(run, 'failed-intact', 'download-rejected');
    // The download matches what the cloud announced; it is the image inside that is broken.
    expect(run.download?.problems.join('\n')).toMatch(/rebuilt image/);
    expect(run.events.at(-1)?.code).toBe(10706);
    await sota.readback(v1);
  });

  test('a wrong version reported after updating → 10706', o, async ({ sota, station, qt, images }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('full_2_0_0');
    const wrong = images.image('1_1_0').version;
    await sota.baseline(v1);
    await sota.describeUpgrade(pkg, v1);
    const T = station.timeouts;
    const plan = await sota.recorder.step('prepare plan', () => station.plans.prepare(sota.spec(pkg), { signal: sota.signal }));
    const events = qt.events();
    const wait = <E extends ModuleEvent>(match: (e: ModuleEvent) => e is E, ms: number, expected: string, failOn: (e: ModuleEvent) => boolean = is10706) =>
      events.next(match, { timeoutMs: ms + T.marginMs, signal: sota.signal, expected, failOn }) as Promise<E>;
    try {
      // The MCU's side of the SOTA example, by hand, up to the version report.
      await sota.recorder.step('request plan', async () => {
        await qt.otaRequest({ sha256: true, ...sota.cmd });
        const e = await wait(isEvent('ota-plan'), T.planWaitMs, '+QIOTEVT: 7,10700');
        expect(e.target).toBe(plan.expected.targetVersion);
      });
      await sota.recorder.step('confirm', () => qt.otaUpdate(UpdateAction.confirm, sota.cmd));
      const file = Buffer.alloc(plan.expected.size);
      let piece = await sota.recorder.step('download', () => wait(isEvent('ota-piece-ready'), T.urlWaitMs + 4 * T.downloadNotifyMs, '+QIOTEVT: 7,10703'));
      await sota.recorder.step('read blocks', async () => {
        for (;;) {
          for (let at = piece.start; at < piece.start + piece.length; ) {
            const b = await qt.otaRead(at, Math.min(1024, piece.start + piece.length - at), sota.cmd);
            b.data.copy(file, at);
            at += b.data.length;
          }
          if (piece.start + piece.length >= plan.expected.size) break;
          await qt.otaUpdate(UpdateAction.nextPiece, sota.cmd);
          piece = await wait(isEvent('ota-piece-ready'), T.urlWaitMs + 4 * T.downloadNotifyMs, '+QIOTEVT: 7,10703 (next piece)');
        }
      });
      expect(pkg.verify(file).ok, 'the download does not match the package').toBe(true);
      await sota.recorder.step('AT+QIOTUPDATE=3', async () => {
        await qt.otaUpdate(UpdateAction.updating, sota.cmd);
        await wait(isEvent('ota-updating'), T.commandMs, '+QIOTEVT: 7,10704');
      });
      const result = await sota.recorder.step(`report ${wrong} instead of ${pkg.version}`, async () => {
        await qt.setMcuVersion(station.component, wrong, sota.cmd);
        return wait(isEvent('ota-failed', 'ota-success'), T.commandMs, '+QIOTEVT: 7,10706', () => false);
      });
      expect(result.raw, `${station.name}: the module accepted version ${wrong} for a plan to ${pkg.version}`).toBe('+QIOTEVT: 7,10706');
    } finally {
      events.close();
    }
    // The rig never programmed anything: the flash must still hold v1_0_0.
    await sota.readback(v1);
  });
});
