// Plan delivery as the MCU sees it on the module's UART: filters, the delta source rule, refusal and re-push.
import { afterEach, expect, test } from 'vitest';
import { addPackage, expectOk, register, seededBytes, simsPerTest } from '../harness.ts';

const sim = simsPerTest(afterEach, ['--baud', '0']);

test('blacklist beats whitelist, a delta needs its source version: only the matching plan reaches the MCU', async () => {
  const s = await sim(['--time-scale', '0.01']);
  await register(s, { STM32: '1_0_0' });
  const imei = s.info.module.imei;
  const listed = await addPackage(s, { component: 'STM32', version: '9_0_0', data: seededBytes(100, 1) });
  const wrongSource = await addPackage(s, { component: 'STM32', version: '8_0_0', type: 'delta', sourceVersion: '1_0_1', data: seededBytes(100, 2) });
  const good = await addPackage(s, { component: 'STM32', version: '2_0_0', type: 'delta', sourceVersion: '1_0_0', data: seededBytes(300, 3) });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: listed.id }], whitelist: [imei], blacklist: [imei], pushActively: false });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: wrongSource.id }], pushActively: false });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: good.id }], whitelist: [imei], pushActively: false });
  // The cloud offers the first eligible plan in creation order: the two earlier ones must have been skipped.
  const from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","1_0_0","2_0_0",0,0,300\r\n', 5000, from);
  expect(s.since(from).match(/10700/g)).toHaveLength(1);
  const [dev] = await s.api<{ deliveries: { planId: string }[] }[]>('GET', '/devices');
  expect(dev!.deliveries).toHaveLength(1);
});

test('refusal: OK and no URC; the plan comes back only after the rejection period', async () => {
  const s = await sim(['--time-scale', '0.002']);
  await register(s);
  const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(100, 4) });
  const from = s.mark();
  // An active plan is pushed at once to an online device that needs it: no request.
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }], rejectionPeriodMinutes: 10 });
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,100\r\n', 5000, from);
  const refused = s.mark();
  expect(await s.command('AT+QIOTUPDATE=0')).toBe('AT+QIOTUPDATE=0\r\r\nOK\r\n');
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,100\r\n', 10_000, refused);
  expect(s.since(refused)).not.toMatch(/\+QIOTEVT: 7,107(0[1-6])/);
  const [dev] = await s.api<{ history: { at: number; name: string }[]; deliveries: { at: number }[] }[]>('GET', '/devices');
  const refusedAt = dev!.history.find((h) => h.name === 'REFUSEDOTA')!.at;
  const again = dev!.deliveries.find((d) => d.at > refusedAt)!;
  expect(again.at - refusedAt).toBeGreaterThanOrEqual(10 * 60_000);
});

test('fault and device endpoints validate their input', async () => {
  const s = await sim(['--time-scale', '0.01']);
  for (const body of [{ kind: 'meteor' }, { kind: 'drop-uart-bytes' }, { kind: 'power-cycle', offMs: -1 }, {}]) {
    const r = await s.admin<{ error: string }>('POST', '/faults', body);
    expect(r.status, JSON.stringify(body)).toBe(400);
    expect(r.body.error).toMatch(/invalid request body/);
  }
  expect((await s.admin('POST', '/device', { rssi: 45 })).status).toBe(400);
  expect((await s.admin('GET', '/module/wait?state=SLEEPING')).status).toBe(400);
  const late = await s.admin<{ error: string }>('GET', '/module/wait?state=UPDATING&timeoutMs=50');
  expect(late.status).toBe(408);
  expect(late.body.error).toMatch(/OTA state UPDATING not reached within 50 ms \(now OTA state IDLE, QIOTSTATE 1/);
  expect((await s.admin('GET', '/module/wait')).status).toBe(400);
  expect((await s.admin<{ ota: { state: string } }>('GET', '/module/wait?state=IDLE')).body.ota.state).toBe('IDLE');
});

test('drop-uart-bytes loses bytes of the module output, like a noisy line', async () => {
  const s = await sim(['--time-scale', '0.01']);
  await register(s);
  await expectOk(s, 'ATE0');
  await s.api('POST', '/faults', { kind: 'drop-uart-bytes', count: 3, skip: 2 });
  const from = s.mark();
  await s.send('ATI\r');
  await s.waitFor('OK\r\n', 5000, from);
  // "\r\nQuectel…" with 3 bytes missing after the first 2.
  expect(s.since(from)).toBe('\r\nctel\r\nEC200U\r\nRevision: EC200UCNAAR03A03M08\r\n\r\nOK\r\n');
});

test('the rig terminates a plan the MCU left at 10700: the next plan delivers its own file, not the old one', async () => {
  const s = await sim(['--time-scale', '0.01']);
  await register(s);
  const old = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(700, 5) });
  const next = await addPackage(s, { component: 'STM32', version: '3_0_0', data: seededBytes(900, 6) });
  const oldPlan = await s.api<{ id: string }>('POST', '/plans', { components: [{ component: 'STM32', packageId: old.id }], pushActively: false });
  let from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,700\r\n', 5000, from);
  await s.api('POST', `/plans/${oldPlan.id}/terminate`);
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: next.id }], pushActively: false });
  from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","","3_0_0",0,0,900\r\n', 5000, from);
  from = s.mark();
  await expectOk(s, 'AT+QIOTUPDATE=1');
  await s.waitFor(/\+QIOTEVT: 7,10703,[^\r]*\r\n/, 5000, from);
  expect(s.since(from)).toContain(`+QIOTEVT: 7,10701,"STM32",900,"${next.md5}",${next.crc}\r\n`);
  expect(s.since(from)).toContain('+QIOTEVT: 7,10703,"STM32",900,0,900\r\n');
  await expectOk(s, 'AT+QIOTUPDATE=3');
  from = s.mark();
  await expectOk(s, 'AT+QIOTMCUVER="STM32","3_0_0"');
  await s.waitFor('+QIOTEVT: 7,10705\r\n', 5000, from);
  const [dev] = await s.api<{ plans: Record<string, { phase: string }> }[]>('GET', '/devices');
  expect(dev!.plans[oldPlan.id]!.phase).not.toBe('succeeded');
  expect(Object.values(dev!.plans).map((p) => p.phase)).toContain('succeeded');
});
