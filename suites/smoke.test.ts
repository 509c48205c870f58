// Smoke: every part of the station answers — the module (AT, QuecThing, registration, a power cycle), the
// probe, and the baseline image programmed and verified. Each test ends with the SWD readback verdict.
import { describe, expect } from 'vitest';
import { isEvent } from '../rig/quecthing/index.ts';
import { ensureRegistered } from '../rig/sota/index.ts';
import { sotaSuite } from './fixtures.ts';

const { test, budget, retry } = await sotaSuite({ feature: 'Smoke' });
const o = { timeout: budget.smoke, retry };

describe('smoke', () => {
  test('the module answers AT', o, async ({ sota, qt, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    await sota.recorder.step('AT → OK', () => qt.at(sota.cmd));
    const id = await sota.recorder.step('ATI', () => qt.identify(sota.cmd));
    expect(id.manufacturer, `ATI answered ${JSON.stringify(id.lines)}`).toMatch(/quectel/i);
    expect(id.model.length).toBeGreaterThan(0);
    await sota.readback(v1);
  });

  test('QuecThing reports its version', o, async ({ sota, qt, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const info = await sota.recorder.step('AT+QIOTINFO?', () => qt.info(sota.cmd));
    const version = info.find((i) => i.item === 'version')?.value;
    expect(version, `AT+QIOTINFO? answered ${JSON.stringify(info)}`).toMatch(/^\d+\.\d+\.\d+/);
    const revision = await sota.recorder.step('AT+QGMR', () => qt.firmwareRevision(sota.cmd));
    expect(revision.length).toBeGreaterThan(0);
    await sota.readback(v1);
  });

  test('registration: 2,10200 then 3,10200', o, async ({ sota, station, qt, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const T = station.timeouts;
    // From disconnected, so that both events of this registration are seen.
    await sota.recorder.step('AT+QIOTREG=0', () => qt.register(0, sota.cmd));
    const events = qt.events();
    try {
      await sota.recorder.step('AT+QIOTREG=1', () => qt.register(1, sota.cmd));
      const bound = { timeoutMs: T.registerMs + T.marginMs, signal: sota.signal };
      const failOn = (e: { kind: string; code?: number }) => ['auth', 'connect', 'subscribe'].includes(e.kind) && e.code !== 10200;
      const connected = await sota.recorder.step('+QIOTEVT: 2,10200', () =>
        events.next((e) => e.kind === 'connect' && 'code' in e && e.code === 10200, { ...bound, expected: '+QIOTEVT: 2,10200', failOn }),
      );
      const subscribed = await sota.recorder.step('+QIOTEVT: 3,10200', () =>
        events.next((e) => e.kind === 'subscribe' && 'code' in e && e.code === 10200, { ...bound, expected: '+QIOTEVT: 3,10200', failOn }),
      );
      expect(connected.raw).toBe('+QIOTEVT: 2,10200');
      expect(subscribed.raw).toBe('+QIOTEVT: 3,10200');
    } finally {
      events.close();
    }
    expect((await qt.state(sota.cmd)).state).toBe(8);
    await sota.readback(v1);
  });

  test('the probe examines the target', o, async ({ sota, probe, images, station }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const info = await sota.recorder.step('examine', () => probe.examine({ signal: sota.signal }));
    sota.recorder.attach('target', `${JSON.stringify(info, null, 2)}\n`, 'application/json');
    expect(info.idcode, 'the debug port answered no IDCODE').toBeGreaterThan(0);
    expect(info.flashSizeKiB * 1024, 'the flash is smaller than the slot').toBeGreaterThanOrEqual(station.layout.slotAddress - 0x0800_0000 + station.layout.slotSize);
    await sota.readback(v1);
  });

  test('a module power cycle: RDY, then AT and registration again', o, async ({ sota, station, qt, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    sota.require('power-cycle the module', station.power.can('cycle', 'module'), 'no power.roles.moduleSupply line');
    const T = station.timeouts;
    const events = qt.events();
    try {
      await sota.recorder.step('module supply off 500 ms, then on', () => station.power.cycle('module', 500, { signal: sota.signal }));
      if (!station.module.at.isOpen) await station.module.reopen({ signal: sota.signal });
      const rdy = await sota.recorder.step('RDY', () =>
        events.next(isEvent('reboot'), { timeoutMs: T.bootMs + T.marginMs, signal: sota.signal, expected: 'RDY after the power cycle' }),
      );
      expect(rdy.raw).toBe('RDY');
    } finally {
      events.close();
    }
    await sota.recorder.step('AT → OK', () => qt.at(sota.cmd));
    // QIOTREG=1 does not survive a boot (protocol §2.2): the module must register again.
    await sota.recorder.step('register again', () => ensureRegistered(station, { signal: sota.signal, recorder: sota.recorder }));
    expect((await qt.state(sota.cmd)).state).toBe(8);
    await sota.readback(v1);
  });

  test('the baseline image is programmed and verified', o, async ({ sota, station, probe, images }) => {
    const v1 = images.image('1_0_0');
    const { slotAddress, slotSize } = station.layout;
    // From an erased slot, so that programming really happens.
    await sota.recorder.step('erase the slot', () => probe.erase(slotAddress, slotSize, { signal: sota.signal }));
    const blank = await probe.readRegion(slotAddress, 256, { signal: sota.signal });
    expect(blank.every((x) => x === 0xff), 'the slot is not blank after erasing').toBe(true);
    const r = await sota.baseline(v1);
    expect(r.written, 'the baseline was not written although the slot was erased').toBe(true);
    sota.recorder.measure('programming', r.programMs, 'ms');
    sota.recorder.flushFigures('figures (measured)');
    await sota.recorder.step('verify', () => probe.verify(slotAddress, v1.bytes, { signal: sota.signal }));
    await sota.readback(v1);
  });
});
