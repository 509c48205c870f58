// Every OTA timer of docs/protocol.md §4.2 expires into its documented outcome, none of the three
// 10706 timers sooner than its documented length, and download errors follow §4.1 (silent retry announced by
// 10702, 10706 after more than 5). Time scales keep each test short.
import { afterEach, describe, expect, test } from 'vitest';
import { addPackage, expectOk, register, seededBytes, simsPerTest, type SimHandle } from '../harness.ts';

const sim = simsPerTest(afterEach, ['--baud', '0']);

const count = (text: string, needle: string): number => text.split(needle).length - 1;

async function confirmPlan(s: SimHandle, size: number, seed = 1): Promise<number> {
  await register(s);
  const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(size, seed) });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }], pushActively: false });
  let from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,', 5000, from);
  from = s.mark();
  await expectOk(s, 'AT+QIOTUPDATE=1');
  return from;
}

async function otaState(s: SimHandle): Promise<string> {
  return (await s.api<{ ota: { state: string } }>('GET', '/module')).ota.state;
}

/**
 * The least wall time a protocol timer may take at `scale`. Timers are timed on the wire, from the answer or
 * URC that arms them to their 10706; the 0.9 leaves room for the jitter of two trips through the pty, while
 * a timer cut even to half its length fails.
 */
const atLeast = (protocolMs: number, scale: number): number => 0.9 * protocolMs * scale;

describe('timers', () => {
  test('30 s URL wait: a cloud slower than 30 s → 10706 no sooner than 30 s after the OK, no 10701; the module is idle again', async () => {
    const scale = 0.03;
    const s = await sim(['--time-scale', String(scale), '--url-delay-ms', '45000']);
    const from = await confirmPlan(s, 1000);
    const confirmed = performance.now();
    expect(await s.command('AT+QIOTUPDATE=1')).toMatch(/\r\nOK\r\n$/); // idempotent while CONFIRMED
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 5000, from);
    expect(performance.now() - confirmed).toBeGreaterThanOrEqual(atLeast(30_000, scale));
    expect(s.since(from)).not.toContain('10701');
    expect(await otaState(s)).toBe('IDLE');
    expect(await s.command('AT+QIOTUPDATE=1')).toMatch(/\r\nERROR\r\n$/);
  });

  test('10702 repeats about every 5 s while downloading', async () => {
    // 20000 bytes at 1000 B/s: 20 s of downloading → three or four 10702.
    const s = await sim(['--time-scale', '0.02', '--download-rate', '1000']);
    const from = await confirmPlan(s, 20000);
    const { end } = await s.waitFor('+QIOTEVT: 7,10703,"STM32",20000,0,20000\r\n', 10_000, from);
    const between = s.rx.subarray(s.rx.indexOf('10701', from), end).toString('latin1');
    expect(count(between, '+QIOTEVT: 7,10702\r\n')).toBeGreaterThanOrEqual(2);
    expect(count(between, '+QIOTEVT: 7,10702\r\n')).toBeLessThanOrEqual(5);
  });

  test('60 s read inactivity: 10703 and every read arm it, 10706 no sooner than 60 s after the last read; reads are refused afterwards', async () => {
    const scale = 0.015;
    const s = await sim(['--time-scale', String(scale)]);
    const from = await confirmPlan(s, 4000);
    const { end } = await s.waitFor('+QIOTEVT: 7,10703,"STM32",4000,0,4000\r\n', 5000, from);
    // A third of the way into the timer armed by 10703, the read must still be served, and must re-arm it.
    await new Promise((r) => setTimeout(r, 20_000 * scale));
    expect(await s.command('AT+QIOTOTARD=0,1024')).toContain('+QIOTOTARD: 0,1024\r\n');
    const read = performance.now();
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 5000, end);
    expect(performance.now() - read).toBeGreaterThanOrEqual(atLeast(60_000, scale));
    expect(await s.command('AT+QIOTOTARD=0,1024')).toMatch(/\r\nERROR\r\n$/);
    const dev = await s.api<{ status: Record<string, { name: string }> }[]>('GET', '/devices');
    expect(dev[0]!.status.STM32!.name).toBe('UPDATEERROR');
  });

  test('20 min update wait without MCUVER → 10706 no sooner than 20 min after 10704', async () => {
    // 20 min is 3 s here and the 60 s read timer 150 ms, against a round trip of 1–20 ms on a loaded machine.
    const scale = 0.0025;
    const s = await sim(['--time-scale', String(scale)]);
    const from = await confirmPlan(s, 900);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",900,0,900\r\n', 5000, from);
    // =3 needs the last piece downloaded, not read; one round trip keeps clear of the 60 s read timer.
    const mark = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('\r\n+QIOTEVT: 7,10704\r\n', 5000, mark);
    const updating = performance.now();
    expect(await otaState(s)).toBe('UPDATING');
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 15_000, mark);
    expect(performance.now() - updating).toBeGreaterThanOrEqual(atLeast(20 * 60_000, scale));
    // A late version report no longer settles anything.
    const late = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_0"');
    expect(s.since(late)).not.toContain('10705');
  });
});

describe('download errors', () => {
  test('a stalled download (5 s start timer) is retried by the cloud and announced with 10702, not 10701', async () => {
    const s = await sim(['--time-scale', '0.005']);
    await s.api('POST', '/faults', { kind: 'download-error', count: 2 });
    const from = await confirmPlan(s, 3000);
    const { end } = await s.waitFor('+QIOTEVT: 7,10703,"STM32",3000,0,3000\r\n', 10_000, from);
    const text = s.rx.subarray(from, end).toString('latin1');
    expect(count(text, '+QIOTEVT: 7,10701,')).toBe(1);
    expect(count(text, '+QIOTEVT: 7,10702\r\n')).toBe(2);
    expect(text.indexOf('10701')).toBeLessThan(text.indexOf('10702'));
    expect(text).not.toContain('10706');
    const dev = await s.api<{ history: { name: string }[] }[]>('GET', '/devices');
    expect(dev[0]!.history.filter((h) => h.name === 'DOWNLOADERROR')).toHaveLength(2);
  });

  test('more than 5 consecutive download errors → 10706', async () => {
    const s = await sim(['--time-scale', '0.005']);
    await s.api('POST', '/faults', { kind: 'download-error', count: 6 });
    const from = await confirmPlan(s, 3000);
    const { end } = await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 10_000, from);
    const text = s.rx.subarray(from, end).toString('latin1');
    expect(count(text, '+QIOTEVT: 7,10701,')).toBe(1);
    expect(count(text, '+QIOTEVT: 7,10702\r\n')).toBe(5);
    expect(text).not.toContain('10703');
  });

  test('a network cut while downloading → DOWNLOAD_ERROR; after reconnection the download restarts from 0 with 10702', async () => {
    const s = await sim(['--time-scale', '0.005', '--download-rate', '200']);
    const from = await confirmPlan(s, 20000);
    await s.waitFor('+QIOTEVT: 7,10701,', 5000, from);
    // The admin long poll answers once the HTTP transfer runs.
    await s.api('GET', '/module/wait?state=DOWNLOADING&timeoutMs=5000');
    const cut = s.mark();
    await s.api('POST', '/faults', { kind: 'network-down' });
    expect(await otaState(s)).toBe('IDLE');
    expect(await s.command('AT+CSQ')).toContain('+CSQ: 99,99');
    await s.api('POST', '/faults', { kind: 'network-up' });
    await s.waitFor('\r\n+QIOTEVT: 2,10200\r\n\r\n+QIOTEVT: 3,10200\r\n', 5000, cut);
    const { end } = await s.waitFor('+QIOTEVT: 7,10703,"STM32",20000,0,20000\r\n', 10_000, cut);
    const text = s.rx.subarray(cut, end).toString('latin1');
    expect(text).toContain('+QIOTEVT: 7,10702\r\n');
    expect(text).not.toContain('10701');
    expect(text).not.toContain('10706');
  });

  test('AT+CFUN=4 cuts the network like the fault does, AT+CFUN=1 brings it back', async () => {
    const s = await sim(['--time-scale', '0.005', '--download-rate', '200']);
    const from = await confirmPlan(s, 20000);
    await s.waitFor('+QIOTEVT: 7,10701,', 5000, from);
    await s.api('GET', '/module/wait?state=DOWNLOADING&timeoutMs=5000');
    const cut = s.mark();
    await expectOk(s, 'AT+CFUN=4');
    expect(await s.command('AT+QIOTSTATE?')).toContain('+QIOTSTATE: 5\r\n');
    await expectOk(s, 'AT+CFUN=1');
    await s.waitFor('+QIOTEVT: 3,10200\r\n', 5000, cut);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",20000,0,20000\r\n', 10_000, cut);
    expect(s.since(cut)).toContain('+QIOTEVT: 7,10702\r\n');
  });
});
