// The Developer Center model's delivery rules (docs/protocol.md §2.5, §4, §7), driven on fake time:
// the device side is a recorder of what the cloud sends over its MQTT session.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { SimClock } from '../clock.ts';
import { Cloud, defaultCloudOptions, type CloudOptions, type PlanInput } from './cloud.ts';
import { crc32, crc32Mpeg2 } from './hash.ts';
import type { PlanComponentMsg, UrlMsg } from './link.ts';

const DK = '861234567890123';

class Recorder {
  plans: { planId: string; components: PlanComponentMsg[] }[] = [];
  urls: UrlMsg[] = [];
  endpoint = {
    plan: (planId: string, components: PlanComponentMsg[]) => void this.plans.push({ planId, components }),
    url: (msg: UrlMsg) => void this.urls.push(msg),
  };
}

let cloud: Cloud;
let dev: Recorder;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
});
afterEach(() => {
  cloud?.close();
  vi.useRealTimers();
});

function setup(opts: Partial<CloudOptions> = {}): void {
  cloud = new Cloud(new SimClock(1), { ...defaultCloudOptions, ...opts });
  dev = new Recorder();
}
const minutes = (m: number): void => void vi.advanceTimersByTime(m * 60_000);
const online = (versions: [string, string][], dk = DK, imei = DK): void => cloud.online(dk, imei, dev.endpoint, versions);
function pkg(version: string, opts: { component?: string; source?: string; size?: number } = {}) {
  return cloud.addPackage({
    component: opts.component ?? 'STM32',
    version,
    type: opts.source ? 'delta' : 'full',
    sourceVersion: opts.source,
    data: Buffer.alloc(opts.size ?? 100, 0x5a),
  });
}
function plan(packageIds: string[], extra: Partial<PlanInput> = {}) {
  return cloud.addPlan({
    components: packageIds.map((id) => ({ component: cloud.listPackages().find((p) => p.id === id)!.component, packageId: id })),
    ...extra,
  });
}

describe('delivery rules', () => {
  test('no plan before the MCU version is set (FAQ 10); requested once it is', () => {
    setup();
    online([]);
    plan([pkg('2_0_0').id]);
    cloud.request(DK, []);
    minutes(1);
    expect(dev.plans).toEqual([]);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans).toHaveLength(1);
    expect(dev.plans[0]!.components[0]).toMatchObject({ componentNo: 'STM32', sourceVersion: '', targetVersion: '2_0_0', useSpace: 100 });
  });

  test('the blacklist beats the whitelist; a whitelist excludes everyone else; DK or IMEI match', () => {
    setup();
    online([['STM32', '1_0_0']], 'CUSTOMDK', DK);
    const p = pkg('2_0_0').id;
    plan([p], { whitelist: [DK], blacklist: ['CUSTOMDK'], pushActively: false });
    plan([p], { whitelist: ['someone-else'], pushActively: false });
    cloud.request('CUSTOMDK', [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans).toEqual([]);
    const ok = plan([p], { whitelist: [DK], pushActively: false });
    cloud.request('CUSTOMDK', [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([ok.id]);
  });

  test('a delta goes only to a device on its source version; nothing once the device reports the target', () => {
    setup();
    online([['STM32', '1_0_1']]);
    plan([pkg('2_0_0', { source: '1_0_0' }).id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_1']]);
    minutes(1);
    expect(dev.plans).toEqual([]);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans[0]!.components[0]).toMatchObject({ sourceVersion: '1_0_0', targetVersion: '2_0_0' });
    cloud.request(DK, [['STM32', '2_0_0']]);
    minutes(1);
    expect(dev.plans).toHaveLength(1);
  });

  test('a multi-component plan delivers only the components the device needs, in plan order', () => {
    setup();
    online([['A', '1'], ['B', '2'], ['C', '1']]);
    const a = pkg('2', { component: 'A' });
    const b = pkg('2', { component: 'B' });
    const c = pkg('2', { component: 'C' });
    plan([c.id, b.id, a.id], { pushActively: false, minBattery: 40, minSignal: -100 });
    cloud.request(DK, [['A', '1'], ['B', '2'], ['C', '1']]);
    minutes(1);
    expect(dev.plans[0]!.components.map((x) => [x.componentNo, x.batteryLimit, x.minSignal])).toEqual([
      ['C', 40, -100],
      ['A', 40, -100],
    ]);
  });

  test('push actively: pushed every 10 min until confirmed; within the push period only', () => {
    setup();
    online([['STM32', '1_0_0']]);
    plan([pkg('2_0_0').id], { pushPeriodHours: 1 });
    minutes(1);
    expect(dev.plans).toHaveLength(1);
    minutes(10);
    expect(dev.plans).toHaveLength(2);
    minutes(60);
    const pushedInPeriod = dev.plans.length;
    expect(pushedInPeriod).toBeGreaterThanOrEqual(6);
    minutes(60);
    expect(dev.plans).toHaveLength(pushedInPeriod);
  });

  test('pushing stops once confirmed; the URL follows the confirmation; a download error brings it again', () => {
    setup({ urlDelayMs: 1000, retryDelayMs: 5000 });
    online([['STM32', '1_0_0']]);
    const p = pkg('2_0_0', { size: 1000 });
    plan([p.id]);
    minutes(1);
    cloud.status(DK, 'STM32', 1);
    cloud.status(DK, 'STM32', 2);
    vi.advanceTimersByTime(1000);
    expect(dev.urls).toHaveLength(1);
    expect(dev.urls[0]).toMatchObject({ componentNo: 'STM32', size: 1000, md5: p.md5, crc: p.crc32, packageId: p.id });
    cloud.status(DK, 'STM32', 6);
    vi.advanceTimersByTime(4999);
    expect(dev.urls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(dev.urls).toHaveLength(2);
    minutes(60);
    expect(dev.plans).toHaveLength(1);
  });

  test('a refusal holds pushes for the rejection period; a request still gets the plan', () => {
    setup();
    online([['STM32', '1_0_0']]);
    const p = plan([pkg('2_0_0').id], { rejectionPeriodMinutes: 30 });
    minutes(1);
    cloud.status(DK, 'STM32', 3);
    // Pushes run every 10 min (at 10, 20, 30, 40 …); the refusal at 1 min holds them until 31 min.
    minutes(29.5);
    expect(dev.plans).toHaveLength(1);
    minutes(10);
    expect(dev.plans).toHaveLength(2);
    cloud.status(DK, 'STM32', 3);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([p.id, p.id, p.id]);
  });

  test('Retry Times: a failed upgrade is delivered again that many times, then never', () => {
    setup();
    online([['STM32', '1_0_0']]);
    plan([pkg('2_0_0').id], { retryTimes: 1, pushActively: false });
    const attempt = (): void => {
      cloud.request(DK, [['STM32', '1_0_0']]);
      minutes(1);
      cloud.status(DK, 'STM32', 2);
      cloud.status(DK, 'STM32', 12);
    };
    attempt();
    attempt();
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans).toHaveLength(2);
    expect(cloud.snapshot()).toMatchObject([{ plans: { [dev.plans[0]!.planId]: { phase: 'failed', failures: 2 } } }]);
  });

  test('a manual plan waits for the end user; the planned window bounds delivery', () => {
    setup();
    online([['STM32', '1_0_0']]);
    const id = pkg('2_0_0').id;
    const manual = plan([id], { mode: 'manual', pushActively: false });
    const later = plan([id], { startsAfterMinutes: 30, endsAfterMinutes: 60, pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans).toEqual([]);
    minutes(30);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([later.id]);
    cloud.status(DK, 'STM32', 3);
    minutes(30);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([later.id]);
    cloud.userConfirm(manual.id, DK);
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([later.id, manual.id]);
  });

  test('a terminated plan is never active: a new plan after it is confirmed and downloaded, not the old one', () => {
    setup({ urlDelayMs: 1000 });
    online([['STM32', '1_0_0']]);
    const a = pkg('2_0_0', { size: 700 });
    const b = pkg('3_0_0', { size: 900 });
    const planA = plan([a.id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    cloud.terminatePlan(planA.id);
    const planB = plan([b.id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([planA.id, planB.id]);
    // The module's reports name no plan here: they belong to the plan delivered last.
    cloud.status(DK, 'STM32', 1);
    cloud.status(DK, 'STM32', 2);
    vi.advanceTimersByTime(1000);
    expect(dev.urls.map((u) => [u.planId, u.packageId, u.size])).toEqual([[planB.id, b.id, 900]]);
    expect(cloud.snapshot()).toMatchObject([{ plans: { [planA.id]: { phase: 'delivered' }, [planB.id]: { phase: 'confirmed' } } }]);
  });

  test('a confirmed plan, once terminated, neither blocks the next plan nor gets its URL re-issued', () => {
    setup({ urlDelayMs: 1000, retryDelayMs: 5000 });
    online([['STM32', '1_0_0']]);
    const planA = plan([pkg('2_0_0', { size: 700 }).id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    cloud.status(DK, 'STM32', 2, planA.id);
    vi.advanceTimersByTime(1000);
    expect(dev.urls).toHaveLength(1);
    cloud.terminatePlan(planA.id);
    // A module rebooted mid-download reports the error of the plan it was working on.
    cloud.status(DK, 'STM32', 6, planA.id);
    minutes(1);
    expect(dev.urls).toHaveLength(1);
    const b = pkg('3_0_0', { size: 900 });
    const planB = plan([b.id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    expect(dev.plans.map((x) => x.planId)).toEqual([planA.id, planB.id]);
    // A late report of the old plan does not move the new one.
    cloud.status(DK, 'STM32', 2, planA.id);
    minutes(1);
    expect(dev.urls).toHaveLength(1);
    cloud.status(DK, 'STM32', 2, planB.id);
    vi.advanceTimersByTime(1000);
    expect(dev.urls.map((u) => [u.planId, u.packageId])).toEqual([
      [planA.id, dev.urls[0]!.packageId],
      [planB.id, b.id],
    ]);
  });

  test('a URL due when the plan is terminated is not sent', () => {
    setup({ urlDelayMs: 1000 });
    online([['STM32', '1_0_0']]);
    const p = plan([pkg('2_0_0').id], { pushActively: false });
    cloud.request(DK, [['STM32', '1_0_0']]);
    minutes(1);
    cloud.status(DK, 'STM32', 2, p.id);
    cloud.terminatePlan(p.id);
    minutes(1);
    expect(dev.urls).toEqual([]);
  });

  test('package and plan validation', () => {
    setup();
    expect(() => cloud.addPackage({ component: 'S', version: '2', type: 'delta', data: Buffer.from('x') })).toThrow(/needs sourceVersion/);
    expect(() => cloud.addPlan({ components: [{ component: 'S', packageId: 'nope' }] })).toThrow(/no package nope/);
    const p = pkg('2');
    expect(() => cloud.addPlan({ components: [{ component: 'OTHER', packageId: p.id }] })).toThrow(/is for component STM32/);
  });
});

describe('downloads', () => {
  test('served at the download rate; a corrupt-download fault flips one byte; a download-error fault stalls', () => {
    setup({ downloadRate: 1000, downloadStartMs: 300 });
    const p = cloud.addPackage({ component: 'S', version: '2', type: 'full', data: Buffer.from(Array.from({ length: 2000 }, (_, i) => i & 0xff)) });
    const got: { started: boolean; bytes?: Buffer } = { started: false };
    cloud.download(p.id, 500, 1000, { started: () => (got.started = true), done: (b) => (got.bytes = b) });
    vi.advanceTimersByTime(299);
    expect(got.started).toBe(false);
    vi.advanceTimersByTime(1);
    expect(got.started).toBe(true);
    vi.advanceTimersByTime(999);
    expect(got.bytes).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(got.bytes!.equals(Buffer.from(Array.from({ length: 1000 }, (_, i) => (i + 500) & 0xff)))).toBe(true);

    cloud.corruptNextDownload();
    const bad: Buffer[] = [];
    cloud.download(p.id, 0, 2000, { started: () => {}, done: (b) => void bad.push(b) });
    vi.advanceTimersByTime(3000);
    const diff = [...bad[0]!].filter((b, i) => b !== (i & 0xff));
    expect(diff).toHaveLength(1);

    cloud.failDownloads(1);
    let started = false;
    cloud.download(p.id, 0, 10, { started: () => (started = true), done: () => {} });
    vi.advanceTimersByTime(60_000);
    expect(started).toBe(false);
  });

  test('CRC choices: CRC-32 (IEEE) by default, CRC-32/MPEG-2 selectable; check values of "123456789"', () => {
    const check = Buffer.from('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Mpeg2(check)).toBe(0x0376e6e7);
    setup({ crcAlgorithm: 'crc32-mpeg2' });
    const p = cloud.addPackage({ component: 'S', version: '2', type: 'full', data: check });
    expect(p.crc32).toBe(0xcbf43926);
    expect(p.crc).toBe(0x0376e6e7);
  });
});
