// Power loss in every OTA state (docs/protocol.md §4.4): RAM is lost, QIOTREG mode 1 reverts to 0,
// a download restarts from byte 0 with 10701, UPDATING comes back with 10704 — also across a restart of the
// sim process with the same state directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { addPackage, expectOk, powerCycle, register, seededBytes, simsPerTest, type SimHandle } from '../harness.ts';

const dirs: string[] = [];
const sim = simsPerTest(afterEach, ['--baud', '0'], {
  afterStop: () => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  },
});

async function otaState(s: SimHandle): Promise<string> {
  return (await s.api<{ ota: { state: string } }>('GET', '/module')).ota.state;
}

async function waitState(s: SimHandle, state: string): Promise<void> {
  await s.api('GET', `/module/wait?state=${state}&timeoutMs=5000`);
}

async function planAndRequest(s: SimHandle, size: number, pushActively = false): Promise<void> {
  await register(s);
  const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(size, size) });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }], pushActively });
  const from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,', 5000, from);
}

async function confirm(s: SimHandle): Promise<number> {
  const from = s.mark();
  await expectOk(s, 'AT+QIOTUPDATE=1');
  return from;
}

/** After a reboot: mode 1 was reset to 0, the MCU registers again, the download restarts from 0 with 10701. */
async function expectRestartFromZero(s: SimHandle, size: number): Promise<void> {
  expect(await s.command('AT+QIOTREG?')).toContain('+QIOTREG: 0\r\n');
  expect(await s.command('AT+QIOTOTARD=0,16')).toMatch(/\r\nERROR\r\n$/);
  const from = s.mark();
  await expectOk(s, 'AT+QIOTREG=1');
  const { end } = await s.waitFor(`+QIOTEVT: 7,10703,"STM32",${size},0,${size}\r\n`, 10_000, from);
  const text = s.rx.subarray(from, end).toString('latin1');
  expect(text).toMatch(/\+QIOTEVT: 7,10701,"STM32",/);
  expect(text).not.toContain('10706');
}

/** A two-component plan, AUX first, then STM32 (1500 bytes), requested and announced. */
async function multiComponentPlan(s: SimHandle): Promise<void> {
  await register(s, { STM32: '1_0_0', AUX: 'a1' });
  const aux = await addPackage(s, { component: 'AUX', version: 'a2', data: seededBytes(700, 1) });
  const stm32 = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(1500, 2) });
  await s.api('POST', '/plans', {
    components: [
      { component: 'AUX', packageId: aux.id },
      { component: 'STM32', packageId: stm32.id },
    ],
    pushActively: false,
  });
  const from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,1500\r\n', 5000, from);
}

/** After the first component's 10705 (at `from` or later): STM32's download, update and 10705; the plan succeeded. */
async function finishStm32(s: SimHandle, from: number): Promise<void> {
  const { end } = await s.waitFor('+QIOTEVT: 7,10703,"STM32",1500,0,1500\r\n', 5000, from);
  expect(s.since(from)).toMatch(/\+QIOTEVT: 7,10701,"STM32",1500,/);
  await s.command('AT+QIOTOTARD=0,1024');
  await s.command('AT+QIOTOTARD=1024,1024');
  await expectOk(s, 'AT+QIOTUPDATE=3');
  await s.waitFor('+QIOTEVT: 7,10704\r\n', 5000, end);
  const mark = s.mark();
  await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_0"');
  await s.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 5000, mark);
  const [dev] = await s.api<{ plans: Record<string, { phase: string }> }[]>('GET', '/devices');
  expect(Object.values(dev!.plans).map((p) => p.phase)).toEqual(['succeeded']);
}

describe('power cycle in each OTA state', () => {
  test('RECEIVED_PLAN: the plan is RAM only; the cloud pushes it again after re-registration', async () => {
    const s = await sim(['--time-scale', '0.01']);
    await planAndRequest(s, 2000, true);
    expect(await otaState(s)).toBe('RECEIVED_PLAN');
    await powerCycle(s);
    expect(await s.command('AT+QIOTUPDATE=1')).toMatch(/\r\nERROR\r\n$/);
    const from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,2000\r\n', 5000, from);
    // MCU versions are non-volatile.
    expect(await s.command('AT+QIOTMCUVER="STM32"')).toContain('+QIOTMCUVER: "STM32","1_0_0"\r\n');
  });

  test('CONFIRMED: no resume; after re-registration the cloud re-issues the URL', async () => {
    const s = await sim(['--time-scale', '0.03', '--url-delay-ms', '25000']);
    await planAndRequest(s, 2500);
    await confirm(s);
    expect(await otaState(s)).toBe('CONFIRMED');
    await powerCycle(s);
    await expectRestartFromZero(s, 2500);
  });

  test('DOWNLOAD_START: no resume', async () => {
    // The stalled start times out after 5 s (500 ms here): room for the state check and the power cut.
    const s = await sim(['--time-scale', '0.1']);
    await planAndRequest(s, 3000);
    await s.api('POST', '/faults', { kind: 'download-error', count: 1 });
    const from = await confirm(s);
    await s.waitFor('+QIOTEVT: 7,10701,', 5000, from);
    expect(await otaState(s)).toBe('DOWNLOAD_START');
    await powerCycle(s);
    await expectRestartFromZero(s, 3000);
  });

  test('DOWNLOADING: no resume', async () => {
    const s = await sim(['--time-scale', '0.01', '--download-rate', '100']);
    await planAndRequest(s, 4000);
    await confirm(s);
    await waitState(s, 'DOWNLOADING');
    await powerCycle(s);
    await expectRestartFromZero(s, 4000);
  });

  test('DOWNLOAD_OK: the downloaded file is erased at boot', async () => {
    const s = await sim(['--time-scale', '0.01']);
    await planAndRequest(s, 1500);
    const from = await confirm(s);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",1500,0,1500\r\n', 5000, from);
    expect(await s.command('AT+QIOTOTARD=0,100')).toContain('+QIOTOTARD: 0,100\r\n');
    await powerCycle(s);
    await expectRestartFromZero(s, 1500);
  });

  test('UPDATING: 10704 again at boot, then MCUVER settles; also across a restart of the sim process', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'sim-nv-'));
    dirs.push(stateDir);
    const s = await sim(['--time-scale', '0.01', '--state-dir', stateDir]);
    await planAndRequest(s, 1200);
    let from = await confirm(s);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",1200,0,1200\r\n', 5000, from);
    await s.command('AT+QIOTOTARD=0,1024');
    await s.command('AT+QIOTOTARD=1024,1024');
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('+QIOTEVT: 7,10704\r\n', 5000, from);
    const rdy = await powerCycle(s);
    await s.waitFor('\r\n+QIOTEVT: 7,10704\r\n', 5000, rdy - 7);
    expect(await otaState(s)).toBe('UPDATING');

    // The process goes away and comes back (a new sim on the same state directory): still UPDATING.
    expect(await s.stop()).toBe(0);
    // A long boot, so that the port is surely open before RDY.
    const t = await sim(['--time-scale', '0.01', '--state-dir', stateDir, '--boot-ms', '50000']);
    await t.waitFor('\r\nRDY\r\n\r\n+QIOTEVT: 7,10704\r\n', 5000);
    expect(await t.command('AT+QIOTCFG="productinfo"')).toContain('+QIOTCFG: "productinfo","p1test","secret1"');
    expect(await t.command('AT+QIOTREG?')).toContain('+QIOTREG: 0\r\n');
    from = t.mark();
    await expectOk(t, 'AT+QIOTMCUVER="STM32","2_0_0"');
    await t.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 5000, from);
    expect(await otaState(t)).toBe('IDLE');
  });

  test('multi-component plan, reboot in UPDATING of the first component: after its 10705 the next component follows', async () => {
    const s = await sim(['--time-scale', '0.01']);
    await multiComponentPlan(s);
    let from = await confirm(s);
    await s.waitFor('+QIOTEVT: 7,10703,"AUX",700,0,700\r\n', 5000, from);
    expect((await s.command('AT+QIOTOTARD=0,1024')).includes('+QIOTOTARD: 0,700\r\n')).toBe(true);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('+QIOTEVT: 7,10704\r\n', 5000, from);
    const rdy = await powerCycle(s);
    await s.waitFor('\r\n+QIOTEVT: 7,10704\r\n', 5000, rdy - 7);
    from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    await s.waitFor('+QIOTEVT: 3,10200\r\n', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="AUX","a2"');
    await s.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 5000, from);
    await finishStm32(s, from);
  });

  test('multi-component plan, reboot while the first component downloads: it restarts from 0, then the next component follows', async () => {
    const s = await sim(['--time-scale', '0.01', '--download-rate', '100']);
    await multiComponentPlan(s);
    await confirm(s);
    await waitState(s, 'DOWNLOADING');
    await powerCycle(s);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    await s.waitFor('+QIOTEVT: 7,10703,"AUX",700,0,700\r\n', 10_000, from);
    expect(s.since(from)).toMatch(/\+QIOTEVT: 7,10701,"AUX",700,/);
    await s.command('AT+QIOTOTARD=0,1024');
    await expectOk(s, 'AT+QIOTUPDATE=3');
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="AUX","a2"');
    await s.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 5000, from);
    await finishStm32(s, from);
  });

  test('multi-piece download, power cut during the second piece: the download starts over with the first piece, not where it was', async () => {
    const s = await sim(['--time-scale', '0.01', '--module-free-space', '1000']);
    await planAndRequest(s, 2500);
    let from = await confirm(s);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",2500,0,1000\r\n', 5000, from);
    expect(await s.command('AT+QIOTOTARD=0,1000')).toContain('+QIOTOTARD: 0,1000\r\n');
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=2');
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",2500,1000,1000\r\n', 5000, from);
    await powerCycle(s);
    expect(await s.command('AT+QIOTREG?')).toContain('+QIOTREG: 0\r\n');
    from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    const { match } = await s.waitFor(/\+QIOTEVT: 7,10703,"STM32",2500,\d+,\d+\r\n/, 10_000, from);
    expect(String(match[0] ?? match)).toBe('+QIOTEVT: 7,10703,"STM32",2500,0,1000\r\n');
    expect(s.since(from)).toMatch(/\+QIOTEVT: 7,10701,"STM32",2500,/);
    // Only the first piece is there again.
    expect(await s.command('AT+QIOTOTARD=1000,16')).toMatch(/\r\nERROR\r\n$/);
    expect(await s.command('AT+QIOTOTARD=0,16')).toContain('+QIOTOTARD: 0,16\r\n');
  });

  test('QIOTREG mode 2 reconnects by itself after a power cycle', async () => {
    const s = await sim(['--time-scale', '0.01']);
    await register(s);
    await expectOk(s, 'AT+QIOTREG=2');
    const rdy = await powerCycle(s);
    await s.waitFor('\r\n+QIOTEVT: 2,10200\r\n\r\n+QIOTEVT: 3,10200\r\n', 5000, rdy);
    expect(await s.command('AT+QIOTREG?')).toContain('+QIOTREG: 2\r\n');
    expect(await s.command('AT+QIOTSTATE?')).toContain('+QIOTSTATE: 8\r\n');
  });
});
