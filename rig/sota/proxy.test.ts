// runProxyUpgrade against the virtual station (the real sim, socat ptys, openocd through its Bus Pirate): what
// its record carries for `rig repro`, how it brings the probe back after a target power cut, and how it names
// the module's protocol timers (read inactivity, update wait) when a run outlasts them. The images are a
// temporary 4 KiB build (scripts/make-fixtures.ts), so programming stays short and the package is not in
// the project's manifest.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeFixtures } from '../../scripts/make-fixtures.ts';
import { parseConfig } from '../config/load.ts';
import { loadManifest, type FirmwareSet } from '../images/manifest.ts';
import { addRelease } from '../images/release.ts';
import { mcubootImage } from '../images/testing/mcuboot.ts';
import { openStation, type OpenedStation } from '../station/open.ts';
import type { Station } from '../station/station.ts';
import { ensureBaseline } from './baseline.ts';
import { parseFault } from './faults.ts';
import { runProxyUpgrade } from './proxy.ts';
import { parseRunRecord } from './record.ts';
import type { Recorder } from './recorder.ts';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

// Not the defaults: the record must carry these (timeScale 1, no free-space limit, baud 115200 by default).
const SETTINGS = { timeScale: 0.05, moduleFreeSpace: 3072, downloadRate: 40_000, baud: 460_800 };
const SECRET = 'ProxyTestProductSecret';

let dir: string;
let small: FirmwareSet;
let station: OpenedStation;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sota-rig-proxy-test-'));
  await makeFixtures({ out: dir, size: 4096, loadAddress: 0x0800_0000, seed: 'proxy-test' });
  small = await loadManifest(path.join(dir, 'manifest.json'));
  const config = parseConfig({ stations: { virtual: { kind: 'virtual', productSecret: SECRET, ...SETTINGS } } });
  station = await openStation('virtual', { config, lockDir: tmp.make('station-lock-') });
}, 60_000);

afterAll(async () => {
  await station?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A recorder that keeps what the flow attaches (the suites hand these to Allure). */
function keeping(): Recorder & { attached: Map<string, string> } {
  const attached = new Map<string, string>();
  return { attached, step: (_name, body) => body(), attach: (name, content) => void attached.set(name, String(content)), measure: () => undefined };
}

const spec = (name: string) => ({ component: station.component, package: small.package(name) });

describe('runProxyUpgrade on the virtual station', () => {
  test("the record carries the station's settings without its secret, and the bytes of a package no manifest has", { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    const recorder = keeping();
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1, recorder });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    // The record the report gets, not only the one returned.
    const text = recorder.attached.get('run record')!;
    const record = parseRunRecord(text, 'attached run record');
    expect(record.station.config).toMatchObject({ kind: 'virtual', ...SETTINGS });
    expect(text).not.toContain(SECRET);
    expect(Buffer.from(record.firmware!.package!.base64, 'base64').equals(Buffer.from(small.package('full_2_0_0').bytes))).toBe(true);
    expect(record.firmware!.package!.info).toMatchObject({ name: 'full_2_0_0', version: '2_0_0', type: 'full' });
    expect(Buffer.from(record.firmware!.current!.base64, 'base64').equals(Buffer.from(v1.bytes))).toBe(true);
    expect(run.station.config).toEqual(record.station.config);
  });

  test('the run names the read-inactivity timer when a recovery between two block reads outlasts it', { timeout: 90_000 }, async () => {
    const v2 = small.image('2_0_0');
    await ensureBaseline(station, v2);
    // The network comes back only after the module's read-inactivity timer (60 s × 0.05) has run out.
    const cut = station.timeouts.readInactivityMs + 500;
    const run = await runProxyUpgrade(station, { plan: spec('full_1_0_0'), current: v2, faults: [parseFault(`offset=1024:network-cut=${cut}`)] });
    expect(run.fired.map((f) => f.fault)).toEqual([`offset=1024:network-cut=${cut}`]);
    expect(run.verdict.failure, run.verdict.summary).toMatchObject({ type: 'timeout', kind: 'protocol' });
    const last = run.errors.at(-1)!;
    expect(last).toMatchObject({ name: 'ProtocolTimerError', phase: 'download', recovered: false });
    expect(last.message).toMatch(/read-inactivity timer ran out between two block reads/);
    expect(last.message).toContain(`within the read-inactivity time (${station.timeouts.readInactivityMs} ms)`);
    expect(run.readback).toMatchObject({ matchesCurrent: true });
  });

  test("each block read leaves in the turn its predecessor's OK arrives; a fault due at a boundary still acts before the block it names is asked for", { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    let okTurn = false;
    const sent: { text: string; inOkTurn: boolean }[] = [];
    const off = station.module.at.on('transcript', (e) => {
      if (e.dir === 'RX' && e.text === 'OK') {
        okTurn = true;
        queueMicrotask(() => (okTurn = false));
      }
      if (e.dir === 'TX') sent.push({ text: e.text, inOkTurn: okTurn });
    });
    let run;
    try {
      run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1, blockSize: 1000, faults: [parseFault('offset=2500:network-cut=100')] });
    } finally {
      off();
    }
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.fired.map((f) => f.fault)).toEqual(['offset=2500:network-cut=100']);
    // The record says where it took effect: between two block reads.
    expect(run.fired[0]!.landed).toEqual({ t: run.fired[0]!.t, window: 'reads' });
    const texts = sent.map((s) => s.text);
    const at = (text: string) => {
      const i = texts.indexOf(text);
      expect(i, `${text} in ${texts.join(', ')}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    // Read ahead, no turnaround: the second block went out with the first one's OK.
    expect(sent[at('AT+QIOTOTARD=1000,1000')]!.inOkTurn).toBe(true);
    // The block holding byte 2500 was held back for the fault, which ran (AT+CFUN=4) before it was asked for.
    const cut = at('AT+CFUN=4');
    expect(cut).toBeGreaterThan(at('AT+QIOTOTARD=1000,1000'));
    expect(cut).toBeLessThan(at('AT+QIOTOTARD=2000,1000'));
    expect(sent[at('AT+QIOTOTARD=2000,1000')]!.inOkTurn).toBe(false);
  });

  test('after a target power cut during programming the probe is re-examined without restarting OpenOCD', { timeout: 90_000 }, async () => {
    const v2 = small.image('2_0_0');
    await ensureBaseline(station, v2);
    const pid = station.probe.pid;
    const run = await runProxyUpgrade(station, { plan: spec('full_1_0_0'), current: v2, faults: [parseFault('programming:power-cycle-target=300')] });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.fired.map((f) => f.fault)).toEqual(['programming:power-cycle-target=300']);
    expect(station.probe.pid).toBe(pid);
  });

  test('a fault that comes due while the image is written (programming+<ms>) runs alongside the write, not after it', { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1, faults: [parseFault('programming+5ms:power-cycle-target=300')] });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    const program = run.phases.find((p) => p.name === 'program')!;
    const fired = run.fired[0]!;
    // The step halts the core, erases and writes through OpenOCD's flash loader (tens of ms at least, with the
    // read-back after it): 5 ms into it the write is still running, and the cut comes in the middle of it.
    expect(fired.t).toBeGreaterThan(program.start);
    expect(fired.t).toBeLessThan(program.end);
  });

  test('programming that outlasts the update wait ends the run with an update-wait timer error before the version report', { timeout: 90_000 }, async () => {
    // 32 KiB images: through OpenOCD's flash loader the write takes a few hundred ms, well past the 50 ms the
    // module gives here, while the steps between 10704 and the write take a few.
    const bigDir = path.join(dir, 'big');
    await makeFixtures({ out: bigDir, size: 32 * 1024, loadAddress: 0x0800_0000, seed: 'proxy-test-big' });
    const big = await loadManifest(path.join(bigDir, 'manifest.json'));
    const v1 = big.image('1_0_0');
    await ensureBaseline(station, v1);
    // A station whose module gives the MCU 50 ms from 10704: programming 32 KiB over SWD takes longer.
    const hurried: Station = { ...station, module: station.module, timeouts: { ...station.timeouts, updateWaitMs: 50 } };
    const run = await runProxyUpgrade(hurried, { plan: { component: station.component, package: big.package('full_2_0_0') }, current: v1 });
    expect(run.verdict.failure, run.verdict.summary).toMatchObject({ type: 'timeout', kind: 'protocol' });
    expect(run.errors).toEqual([expect.objectContaining({ name: 'ProtocolTimerError', kind: 'protocol', phase: 'updating', recovered: false })]);
    expect(run.errors[0]!.message).toMatch(/update wait ran out while programming/);
    expect(run.errors[0]!.message).toContain('within the update wait (50 ms from 10704)');
    expect(run.transcript.some((l) => l.dir === 'TX' && l.text.startsWith('AT+QIOTMCUVER') && l.text.includes('2_0_0'))).toBe(false);
    // The write was not cut short: the flash holds the whole new image, read back with the same OpenOCD.
    expect(run.readback).toMatchObject({ matchesTarget: true });
  });

  test('real firmware without the rig header: MCUboot-signed releases, a delta upgrade judged by bytes and named by the MCUboot header', { timeout: 90_000 }, async () => {
    // Two releases as a vendor's build would sign them: only the code differs, no rig header anywhere.
    const code = (edit: number): Uint8Array => {
      const b = Buffer.alloc(3584);
      for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
      Buffer.from('00500020c1020008', 'hex').copy(b);
      b.fill(edit, 1500, 1600);
      return new Uint8Array(b);
    };
    const manifestPath = path.join(dir, 'mcuboot', 'manifest.json');
    for (const [minor, edit] of [[0, 1], [1, 2]] as const) {
      await addRelease({ manifestPath, bytes: mcubootImage({ body: code(edit), version: { major: 3, minor, revision: 0, build: 0 } }), component: station.component, locator: { kind: 'mcuboot', offset: 0, format: '{major}_{minor}_{revision}' } });
    }
    const releases = await loadManifest(manifestPath);
    const from = releases.image('3_0_0');
    await ensureBaseline(station, from);
    const recorder = keeping();
    const run = await runProxyUpgrade(station, { plan: { component: station.component, package: releases.package('delta_3_0_0_to_3_1_0') }, current: from, recorder, firmware: releases });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.readback).toMatchObject({ matchesTarget: true, identified: { component: station.component, version: '3_1_0' } });
    expect(run.readback!.identity).toMatch(/^STM32 3_1_0 \(\d+ bytes, sha256 [0-9a-f]{12}…\)$/);
    expect(recorder.attached.get('download check')).toMatch(/^md5, crc \(crc-32\), sha256 and the rebuilt image \(sha256 [0-9a-f]{12}…\) all match$/);
    expect(recorder.attached.get('read-back comparison')).toContain('holds: STM32 3_1_0');
  });
});

/** A module that does what the protocol allows and Quectel's examples never show (sim admin faults). */
async function quirk(body: Record<string, unknown>): Promise<void> {
  const admin = station.config.plans.kind === 'api' ? station.config.plans.url : '';
  const res = await fetch(new URL('/faults', admin), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.text()).toBe(200);
}

async function slotHolds(image: { bytes: Uint8Array }): Promise<boolean> {
  const flash = await station.probe.readRegion(station.layout.slotAddress, image.bytes.length);
  return Buffer.from(flash).equals(Buffer.from(image.bytes));
}

describe('what the protocol allows and the rig must not assume away', () => {
  test('AT+QIOTUPDATE=3 answered OK and then 10706, no 10704: the target is never programmed, the old image stays', { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    await quirk({ kind: 'update-quirk', then: 'fail' });
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1, expect: ['failed-intact'] });
    expect(run.phases.map((p) => p.name)).not.toContain('program');
    expect(run.events.map((e) => e.code)).toContain(10706);
    expect(run.events.map((e) => e.code)).not.toContain(10704);
    expect(await slotHolds(v1)).toBe(true);
    expect(run.verdict.outcome, run.verdict.summary).toBe('failed-intact');
  });

  test('10704 a cloud round trip after AT+QIOTUPDATE=3, later than any command timeout: the flow waits within the update wait, then programs', { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    // 80 s of the module's time: 4 s here, more than a command timeout and its margin (3 s at this scale).
    await quirk({ kind: 'update-quirk', then: 'delay', ms: 80_000 });
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1 });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    const program = run.phases.find((p) => p.name === 'program')!;
    const e10704 = run.events.find((e) => e.code === 10704)!;
    expect(program.start).toBeGreaterThanOrEqual(e10704.t);
  });

  test('10705 a cloud round trip after the version report: the flow waits for it, not a command timeout', { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    await quirk({ kind: 'result-delay', ms: 80_000 });
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1 });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.events.map((e) => e.code)).toContain(10705);
  });

  test('a delta whose download differs from the package (a byte changed on the way): the image is rebuilt from the bytes downloaded, so that fails too, and nothing is programmed', { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    const run = await runProxyUpgrade(station, { plan: spec('delta_1_0_0_to_2_0_0'), current: v1, cloudFaults: [{ kind: 'corrupt-next-download' }], expect: ['refused', 'failed-intact'] });
    expect(run.download?.verified).toBe(false);
    // The package's own bytes would rebuild 2_0_0 without a complaint: the rebuild must see the download.
    expect(run.download?.problems.some((p) => p.startsWith('rebuilt image:'))).toBe(true);
    expect(run.phases.map((p) => p.name)).not.toContain('program');
    expect(await slotHolds(v1)).toBe(true);
  });

  test("10700's last field (disk space required) other than the package size: a warning in the record, and the upgrade goes on", { timeout: 90_000 }, async () => {
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    await quirk({ kind: 'plan-space', extra: 4096 });
    try {
      const recorder = keeping();
      const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1, recorder });
      expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
      const size = small.package('full_2_0_0').size;
      expect(run.warnings).toEqual([expect.stringContaining(`10700 says ${size + 4096} bytes of disk space required; the package is ${size} bytes`)]);
      expect(parseRunRecord(recorder.attached.get('run record')!, 'attached').warnings).toEqual(run.warnings);
    } finally {
      await quirk({ kind: 'plan-space', extra: 0 });
    }
  });
});
