// A station with module.echo 'off' on the virtual station (the real sim, whose module echoes after every
// boot, as Quectel's modules do): the station turns the echo off when it opens, the proxy flow reads its
// blocks without echoed commands, and after a module power cycle — the module boots with the echo on again,
// since ATE0 is not saved (protocol §6) — the flow turns it off before it goes on. The images are a temporary
// 4 KiB build, as in proxy.test.ts. The default ('keep', the echo on as in Quectel's example) is what every
// other test of the flow and the suites run with.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeFixtures } from '../../scripts/make-fixtures.ts';
import { parseConfig } from '../config/load.ts';
import { loadManifest, type FirmwareSet } from '../images/manifest.ts';
import { openStation, type OpenedStation } from '../station/open.ts';
import { ensureBaseline } from './baseline.ts';
import { parseFault } from './faults.ts';
import { runProxyUpgrade } from './proxy.ts';
import type { RecordedLine, RunRecord } from './record.ts';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

let dir: string;
let small: FirmwareSet;
let station: OpenedStation;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sota-rig-echo-test-'));
  await makeFixtures({ out: dir, size: 4096, loadAddress: 0x0800_0000, seed: 'echo-test' });
  small = await loadManifest(path.join(dir, 'manifest.json'));
  const config = parseConfig({ stations: { virtual: { kind: 'virtual', timeScale: 0.05, module: { echo: 'off' } } } });
  station = await openStation('virtual', { config, lockDir: tmp.make('station-lock-') });
}, 60_000);

afterAll(async () => {
  await station?.close();
  await rm(dir, { recursive: true, force: true });
});

const spec = (name: string) => ({ component: station.component, package: small.package(name) });

/** The transcript lines of the run's block-read steps (every attempt). */
function readPhaseLines(run: RunRecord): RecordedLine[] {
  const reads = run.phases.filter((p) => p.name.startsWith('read blocks'));
  expect(reads.length, 'the run has a read phase').toBeGreaterThan(0);
  return run.transcript.filter((l) => reads.some((p) => l.t >= p.start && l.t <= p.end));
}

/** Received lines that repeat a command the rig sent: the module's echo. */
function echoes(lines: readonly RecordedLine[]): string[] {
  const sent = new Set(lines.filter((l) => l.dir === 'TX').map((l) => l.text));
  return lines.filter((l) => l.dir === 'RX' && (sent.has(l.text) || l.text.startsWith('AT'))).map((l) => l.text);
}

describe("module.echo 'off' on the virtual station", () => {
  test('the station turns the echo off when it opens, and an upgrade reads its blocks without echoed commands', { timeout: 90_000 }, async () => {
    expect(station.module.echoSetting).toBe('off');
    expect(station.module.echo).toBe(false);
    const v1 = small.image('1_0_0');
    await ensureBaseline(station, v1);
    const run = await runProxyUpgrade(station, { plan: spec('full_2_0_0'), current: v1 });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.station.echo).toBe('off');
    const read = readPhaseLines(run);
    expect(read.filter((l) => l.dir === 'TX' && l.text.startsWith('AT+QIOTOTARD=')).length).toBeGreaterThan(0);
    expect(echoes(read)).toEqual([]);
  });

  test('after a module power cycle (it boots echoing) the flow turns the echo off again before it goes on', { timeout: 90_000 }, async () => {
    const v2 = small.image('2_0_0');
    await ensureBaseline(station, v2);
    const run = await runProxyUpgrade(station, { plan: spec('full_1_0_0'), current: v2, faults: [parseFault('event=10701:power-cycle-module')] });
    expect(run.verdict.outcome, run.verdict.summary).toBe('upgraded');
    expect(run.fired.map((f) => f.fault)).toEqual(['event=10701:power-cycle-module=500']);
    expect(run.station.echo).toBe('off');

    // The module came back echoing; the first thing the rig sent it was ATE0, which it still echoed.
    const rdy = run.transcript.findIndex((l) => l.dir === 'RX' && l.text === 'RDY');
    expect(rdy, 'the module rebooted').toBeGreaterThanOrEqual(0);
    const after = run.transcript.slice(rdy + 1).filter((l) => l.dir !== '--');
    expect(after.find((l) => l.dir === 'TX')?.text).toBe('ATE0');
    expect(after.slice(0, 3).map((l) => `${l.dir} ${l.text}`)).toEqual(expect.arrayContaining(['TX ATE0', 'RX ATE0', 'RX OK']));

    // The read after the restarted download (and any before the fault) carries no echo.
    expect(run.phases.map((p) => p.name)).toContain('read blocks (attempt 2)');
    expect(echoes(readPhaseLines(run))).toEqual([]);
    expect(station.module.echo).toBe(false);
  });
});
