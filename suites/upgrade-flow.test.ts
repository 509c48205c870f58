// The proxy upgrade flow end to end (issue 6): full and delta packages, a download in pieces, a corrupted
// package, the MCU's refusal, a fault schedule the station cannot run, every fault action at three
// triggers, and a run record replayed to the same verdict. Every test ends with an SWD read-back.
//
// The virtual cloud computes 10701's CRC as CRC-32/MPEG-2 here (protocol §9.6 leaves the algorithm open), so
// every upgrade of this file checks the download with the algorithm the plan source says its cloud uses.
//
// The module keeps 4 KiB free for a download, so every full package arrives in pieces (the 25 KiB fixture
// in seven, the small images below in two) and the 1.7 KiB delta in one. Programming dominates the time of
// a virtual upgrade (the STM32 behind remote_bitbang writes a few KiB/s), so the fault matrix and the replay
// use a second, small fixture set (6 KiB images made by scripts/make-fixtures.ts into a temporary
// directory) and upgrade back and forth between its 1_0_0 and 2_0_0: each test's baseline then usually
// finds its image already in flash (pre-verify) instead of programming it again. Which way each test goes is
// part of its definition, never what the previous test left in flash: the report's history tells a test by
// its parameters (source and target version), so they must be the same every night.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { loadManifest } from '../rig/images/index.ts';
import type { FirmwareSet, Image, Package } from '../rig/images/index.ts';
import { parseFault, parseRunRecord, replay, runProxyUpgrade, serializeRunRecord } from '../rig/sota/index.ts';
import type { ProxyRun, Recorder } from '../rig/sota/index.ts';
import type { PreparedPlan, Station } from '../rig/station/index.ts';
import { ConfigError, InternalError } from '../rig/errors.ts';
import { crc32 } from '../rig/images/index.ts';
import { DeclaredPlanSource } from '../rig/station/plans.ts';
import { expectFaultsFired, expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';
import { makeFixtures } from '../scripts/make-fixtures.ts';

/** The suite's recorder, plus a progress hook that disturbs the run from inside (what no fault schedule can). */
function withProgress(r: Recorder, progress: NonNullable<Recorder['progress']>): Recorder {
  return {
    step: (name, body) => r.step(name, body),
    attach: (name, content, type) => r.attach(name, content, type),
    measure: (name, value, unit) => r.measure(name, value, unit),
    progress,
  };
}

const FREE_SPACE = 4 * 1024;
const { test, budget, retry, suite } = await sotaSuite({ feature: 'Proxy upgrade flow', sim: { moduleFreeSpace: FREE_SPACE, crc: 'crc32-mpeg2' }, speed: { baud: 460_800 } });
const virtual = suite.entry.kind === 'virtual';

const smallDir = await mkdtemp(path.join(tmpdir(), 'sota-rig-small-fixtures-'));
await makeFixtures({ out: smallDir, size: 6 * 1024, loadAddress: 0x0800_0000, seed: 'upgrade-flow' });
const small: FirmwareSet = await loadManifest(path.join(smallDir, 'manifest.json'));
afterAll(() => rm(smallDir, { recursive: true, force: true }));

/** An upgrade between the small images, one way or the other: fixed by the test that asks for it. */
function smallUpgrade(direction: 'up' | 'down'): { from: Image; pkg: Package; to: Image } {
  return direction === 'up'
    ? { from: small.image('1_0_0'), pkg: small.package('full_2_0_0'), to: small.image('2_0_0') }
    : { from: small.image('2_0_0'), pkg: small.package('full_1_0_0'), to: small.image('1_0_0') };
}

const tx = (run: ProxyRun, text: string) => run.transcript.filter((l) => l.dir === 'TX' && l.text === text).length;
const codes = (run: ProxyRun) => run.events.filter((e) => e.code !== undefined && e.raw.startsWith('+QIOTEVT: 7,')).map((e) => e.code);

describe('proxy upgrade flow', () => {
  test('full package 1_0_0 → 2_0_0 in pieces, verified by read-back', { timeout: budget.upgrade, retry }, async ({ sota, images, station }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('full_2_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v1 });
    expectOutcome(run, 'upgraded');
    const ota = codes(run);
    expect(ota[0]).toBe(10700);
    expect(ota.at(-1)).toBe(10705);
    expect(ota.slice(-2)).toEqual([10704, 10705]);
    const pieces = run.events.filter((e) => e.code === 10703);
    if (virtual) {
      const expected = Array.from({ length: Math.ceil(pkg.size / FREE_SPACE) }, (_, i) => {
        const start = i * FREE_SPACE;
        return `+QIOTEVT: 7,10703,"${station.component}",${pkg.size},${start},${Math.min(FREE_SPACE, pkg.size - start)}`;
      });
      expect(pieces.map((p) => p.raw)).toEqual(expected);
    }
    expect(tx(run, 'AT+QIOTUPDATE=2')).toBe(pieces.length - 1);
    expect(tx(run, 'AT+QIOTUPDATE=3')).toBe(1);
    expect(tx(run, `AT+QIOTMCUVER="${station.component}","2_0_0"`)).toBe(1);
    // Evidence in the record: every byte read once, a progress series ending at the file's size, phases.
    expect(run.read.bytes).toBe(pkg.size);
    expect(run.read.bytesPerSecond).toBeGreaterThan(0);
    expect(run.progress.at(-1)?.offset).toBe(pkg.size);
    expect(run.download).toMatchObject({ verified: true, problems: [], announced: { size: pkg.size, md5: pkg.md5, sha256: pkg.sha256 } });
    expect(run.phases.map((p) => p.name)).toEqual(
      expect.arrayContaining(['register', 'request plan', 'confirm', 'download', 'read blocks', 'verify package', 'update', 'program', 'read back', 'report version']),
    );
    expect(run.readback).toMatchObject({ address: station.layout.slotAddress, identified: { component: station.component, version: '2_0_0' }, matchesTarget: true, firstDifference: null });
    sota.recorder.measure('one full upgrade', run.durationMs, 'ms');
    await sota.readback(images.image('2_0_0'));
  });

  test('delta package 1_0_0 → 2_0_0 applied to the image in flash', { timeout: budget.upgrade, retry }, async ({ sota, images, station }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('delta_1_0_0_to_2_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v1 });
    expectOutcome(run, 'upgraded');
    expect(run.events.find((e) => e.code === 10700)?.raw).toBe(`+QIOTEVT: 7,10700,"${station.component}","1_0_0","2_0_0",0,0,${pkg.size}`);
    // Only the delta travels; the rebuilt image is the whole 2_0_0.
    expect(run.read.bytes).toBe(pkg.size);
    expect(run.readback?.size).toBeGreaterThanOrEqual(images.image('2_0_0').size);
    await sota.readback(images.image('2_0_0'));
  });

  test('a declared plan on a bench configured with crc-32/mpeg-2: the download passes its CRC check', { timeout: budget.upgrade, retry }, async ({ sota, images, station }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('full_2_0_0');
    const spec = sota.spec(pkg);
    await sota.baseline(v1);
    // A bench's expectation comes from the plan its config declares; the virtual cloud must still be told to
    // deliver that plan, through its API.
    let plan: PreparedPlan;
    if (station.plans.kind === 'api') {
      await station.plans.prepare(spec, { signal: sota.signal });
      const declared = new DeclaredPlanSource([{ name: 'full 2_0_0', package: pkg.name, sourceVersion: '', targetVersion: pkg.version, minBattery: 0, minSignal: 0 }], 'crc-32/mpeg-2', { station: station.name });
      plan = await declared.prepare(spec);
    } else {
      plan = await station.plans.prepare(spec, { signal: sota.signal });
    }
    if (virtual) expect(plan.expected.crcAlgorithm).toBe('crc-32/mpeg-2');
    const run = await sota.upgrade({ plan, package: pkg, current: v1 });
    expectOutcome(run, 'upgraded');
    expect(run.options.crcAlgorithm).toBe(plan.expected.crcAlgorithm);
    // The plan chose it, the run did not ask for it: a replay on another station follows that station's cloud.
    expect(run.options.crcRequested).toBeUndefined();
    if (virtual) expect(run.download?.announced?.crc).toBe(crc32(pkg.bytes, 'crc-32/mpeg-2'));
    expect(run.download).toMatchObject({ verified: true, problems: [] });
    await sota.readback(images.image('2_0_0'));
  });

  test('a corrupted package is rejected before programming and the flash keeps 1_0_0', { timeout: budget.upgrade, retry }, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(images.package('corrupt_full_2_0_0')), current: v1, expect: 'failed-intact' });
    expectOutcome(run, 'failed-intact', 'download-rejected');
    expect(run.download?.problems.join('\n')).toMatch(/rebuilt image/);
    expect(tx(run, 'AT+QIOTUPDATE=3'), 'a rejected download must not go to UPDATING').toBe(0);
    // The MCU gives up by reporting the version it runs; the module settles with 10706.
    expect(tx(run, `AT+QIOTMCUVER="${run.station.component}","1_0_0"`)).toBe(2);
    expect(codes(run).at(-1)).toBe(10706);
    expect(run.phases.some((p) => p.name === 'program')).toBe(false);
    await sota.readback(v1);
  });

  test('a download corrupted in transit fails its MD5/CRC/SHA-256 check; the flash keeps 1_0_0', { timeout: budget.upgrade, retry }, async ({ sota, images, station }) => {
    const v1 = images.image('1_0_0');
    sota.require('corrupt a download', station.plans.cloudFaults.includes('corrupt-next-download'), `its plan source injects ${station.plans.cloudFaults.join(', ') || 'nothing'}`);
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0')), current: v1, cloudFaults: [{ kind: 'corrupt-next-download' }], expect: 'failed-intact' });
    expectOutcome(run, 'failed-intact', 'download-rejected');
    expect(run.download?.verified).toBe(false);
    expect(run.download?.problems.join('\n')).toMatch(/download against 10701: .*md5 expected/);
    expect(tx(run, 'AT+QIOTUPDATE=3')).toBe(0);
    await sota.readback(v1);
  });

  test('battery below the plan minimum: the MCU refuses with AT+QIOTUPDATE=0', { timeout: budget.upgrade, retry }, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0'), { minBattery: 50 }), current: v1, battery: 20, expect: 'refused' });
    expectOutcome(run, 'refused');
    expect(run.refusal).toMatch(/battery 20% below the plan's minimum 50%/);
    expect(tx(run, 'AT+QIOTUPDATE=0')).toBe(1);
    expect(tx(run, 'AT+QIOTUPDATE=1')).toBe(0);
    await sota.readback(v1);
  });

  test('signal below the plan minimum (AT+CSQ): the MCU refuses', { timeout: budget.upgrade, retry }, async ({ sota, images, qt }) => {
    const v1 = images.image('1_0_0');
    await sota.baseline(v1);
    // A minimum 10 dB above what the module reads now, whatever the station's radio conditions.
    const now = await qt.signalQuality(sota.cmd);
    const minSignal = Math.min(-1, (now.dbm ?? -113) + 10);
    const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0'), { minSignal }), current: v1, expect: 'refused' });
    expectOutcome(run, 'refused');
    expect(run.refusal).toMatch(new RegExp(`below the plan's minimum ${minSignal} dBm`));
    expect(tx(run, 'AT+CSQ')).toBeGreaterThanOrEqual(1);
    expect(tx(run, 'AT+QIOTUPDATE=0')).toBe(1);
    await sota.readback(v1);
  });

  test('a fault the station cannot execute is refused before anything is sent', { timeout: budget.smoke, retry }, async ({ sota, images, station }) => {
    // The same station, seen without its module supply line.
    const power = { ...station.power, can: (action: 'cycle' | 'reset', part: 'module' | 'target') => !(action === 'cycle' && part === 'module') && station.power.can(action, part) };
    const limited = Object.create(station, { power: { value: power } }) as Station;
    const v1 = images.image('1_0_0');
    const sent: string[] = [];
    const off = station.module.at.on('transcript', (e) => {
      if (e.dir === 'TX') sent.push(e.text);
    });
    try {
      const run = runProxyUpgrade(limited, { plan: sota.spec(images.package('full_2_0_0')), current: v1, faults: [parseFault('offset=4096:power-cycle-module')], signal: sota.signal, recorder: sota.recorder });
      await expect(run).rejects.toBeInstanceOf(ConfigError);
      await expect(run).rejects.toThrow(/cannot execute this fault.*offset=4096:power-cycle-module=500 \(no module supply line\)/s);
    } finally {
      off();
    }
    expect(sent).toEqual([]);
  });

  test('an aborted run stops at once, as an infrastructure failure, and the next baseline recovers', { timeout: budget.disturbed, retry }, async ({ sota, station }) => {
    const v1 = small.image('1_0_0');
    await sota.baseline(v1);
    // Ctrl-C in the middle of the block reads.
    const ctrlC = new AbortController();
    const r = sota.recorder;
    const recorder = withProgress(r, (_phase, done) => {
      if (done >= 2048) ctrlC.abort(new Error('Ctrl-C'));
    });
    const run = await runProxyUpgrade(station, { plan: sota.spec(small.package('full_2_0_0')), current: v1, signal: AbortSignal.any([sota.signal, ctrlC.signal]), recorder });
    expect(run.verdict.failure).toMatchObject({ type: 'infrastructure', kind: 'infrastructure' });
    expect(run.errors.at(-1)).toMatchObject({ name: 'AbortedError', phase: 'download', recovered: false });
    expect(run.readback, 'an aborted run does not touch the probe').toBeNull();
    expect(run.read.bytes).toBeLessThan(small.package('full_2_0_0').size);
    // The module still holds the aborted download: the baseline settles it and the station is usable.
    await sota.baseline(v1);
    await sota.readback(v1);
  });

  test('a bug in the rig (a TypeError mid-read) ends the run as a rig bug, not as an infrastructure failure', { timeout: budget.disturbed, retry }, async ({ sota, station }) => {
    const v1 = small.image('1_0_0');
    await sota.baseline(v1);
    const r = sota.recorder;
    const recorder = withProgress(r, (_phase, done) => {
      if (done >= 2048) (undefined as unknown as { size: number }).size.toFixed();
    });
    const run = await runProxyUpgrade(station, { plan: sota.spec(small.package('full_2_0_0')), current: v1, signal: sota.signal, recorder });
    expect(run.verdict.failure).toMatchObject({ type: 'internal', kind: 'internal' });
    expect(run.errors.at(-1)).toMatchObject({ name: 'TypeError', kind: 'internal', phase: 'download', recovered: false });
    // The suites' verdict is a rig bug too, named as its root cause: not retried, not held against the station.
    expect(() => expectOutcome(run, 'upgraded')).toThrow(expect.objectContaining({ name: 'TypeError', kind: 'internal' }));
    expect(() => expectOutcome(run, 'upgraded')).toThrow(InternalError);
    // The module still holds the unfinished download: the baseline settles it.
    await sota.baseline(v1);
    await sota.readback(v1);
  });

  test('a module reboot the flow did not cause (a brown-out mid-read) is recovered and recorded', { timeout: budget.disturbed, retry }, async ({ sota, station }) => {
    // The two tests before this one leave 1_0_0 in flash.
    const { from, pkg, to } = smallUpgrade('up');
    await sota.baseline(from);
    let brownOut: Promise<void> | undefined;
    const r = sota.recorder;
    const recorder = withProgress(r, (_phase, done) => {
      // Behind the flow's back: no fault in its schedule.
      if (done >= 2048 && !brownOut) brownOut = station.power.cycle('module', 200, { signal: sota.signal });
    });
    const run = await runProxyUpgrade(station, { plan: sota.spec(pkg), current: from, signal: sota.signal, recorder });
    await brownOut;
    expectOutcome(run, 'upgraded');
    expect(run.fired).toEqual([]);
    // The reboot is an error the flow recovered from (a garbled block read before it may be another).
    expect(run.errors.every((e) => e.recovered), JSON.stringify(run.errors)).toBe(true);
    expect(run.errors.map((e) => e.message)).toContainEqual(expect.stringMatching(/recovering: (module rebooted during the block reads|module restarted during the block reads|the module rebooted \(RDY\))/));
    expect(run.events.filter((e) => e.kind === 'reboot')).toHaveLength(1);
    await sota.readback(to);
  });

  test('a run record replays to the same verdict (2_0_0 → 1_0_0)', { timeout: 2 * budget.disturbed, retry }, async ({ sota, station }) => {
    const { from, pkg, to } = smallUpgrade('down');
    await sota.baseline(from);
    const first = await sota.upgrade({ plan: sota.spec(pkg), current: from, faults: [parseFault('offset=4096:power-cycle-module=200')], battery: 90 });
    expectOutcome(first, 'upgraded');
    const record = parseRunRecord(serializeRunRecord(first), 'first run');
    expect(record.faults).toEqual(['offset=4096:power-cycle-module=200']);
    const again = await replay(record, station, { firmware: small, signal: sota.signal, recorder: sota.recorder });
    expect(again.same, again.comparison).toBe(true);
    expect(again.record.faults).toEqual(record.faults);
    expect(again.record.options).toEqual(record.options);
    expect(again.record.fired.map((f) => f.fault)).toEqual(['offset=4096:power-cycle-module=200']);
    await sota.readback(to);
  });
});

// Each fault action at three triggers: the run ends upgraded with the new image verified, or failed with the
// old image verified intact — never anything else.
// Offsets fall in the first (≤ 4096) or the second piece of the 6 KiB images.
const MATRIX: [action: string, triggers: string[]][] = [
  ['power-cycle-module=300', ['event=10701', 'offset=5120', 'after-update3']],
  ['reset-module=100', ['event=10703', 'programming', 'before-version-report']],
  ['power-cycle-target=300', ['offset=2048', 'programming', 'before-version-report']],
  ['reset-target=100', ['event=10703', 'programming', 'after-update3']],
  // delay=300 lands in the download or the block reads (programming alone takes longer than that).
  ['network-cut=300', ['event=10701', 'offset=2048', 'delay=300']],
  ['close-port', ['event=10703', 'offset=5120', 'before-version-report']],
];

describe('fault matrix', () => {
  // Up and down in turn (the replay before leaves 1_0_0), so that a test's baseline usually finds its image
  // in flash; after a failed-intact run the next baseline programs it.
  const cases = MATRIX.flatMap(([action, triggers]) => triggers.map((trigger) => `${trigger}:${action}`));
  cases.forEach((text, i) => {
    const direction = i % 2 === 0 ? 'up' : 'down';
    test(text, { timeout: budget.disturbed, retry }, async ({ sota }) => {
      const fault = parseFault(text);
      const { from, pkg, to } = smallUpgrade(direction);
      await sota.baseline(from);
      // A failure verdict throws its root cause from sota.upgrade; what is left is upgraded or failed-intact.
      const run = await sota.upgrade({ plan: sota.spec(pkg), current: from, faults: [fault], expect: ['upgraded', 'failed-intact'] });
      expectFaultsFired(run, [fault]);
      if (run.verdict.outcome === 'upgraded') {
        expectOutcome(run, 'upgraded');
        await sota.readback(to);
      } else {
        expectOutcome(run, 'failed-intact');
        await sota.readback(from);
      }
    });
  });
});
