import { describe, expect, test } from 'vitest';
import type { Recorder } from './recorder.ts';
import { RunLog } from './run-log.ts';
import { FaultSchedule } from './schedule.ts';
import { ConfigError } from '../errors.ts';
import { parseConfig } from '../config/load.ts';
import { loadManifest } from '../images/manifest.ts';
import { Image } from '../images/image.ts';
import { Package } from '../images/package.ts';
import { completeRecord, parseRunRecord, publishRecord, recordedFirmware, recordedStationConfig, recordedVirtualSettings, serializeRunRecord, thin } from './record.ts';
import type { RunRecord } from './record.ts';
import { judge } from './verdict.ts';

function record(): RunRecord {
  return {
    format: 'sota-rig/run-record',
    version: 1,
    flow: 'proxy',
    startedAt: '2026-11-27T02:00:00.000Z',
    durationMs: 8123.4,
    station: { name: 'bench-2', description: 'Pi 5 #3', baudRate: 115200, target: 'stm32f4x', probe: 'stlink 066D', component: 'STM32', slotAddress: 0x0800_0000 },
    plan: { id: 'plan-7', component: 'STM32', sourceVersion: '1_0_0', targetVersion: '2_0_0', size: 1767, md5: 'a'.repeat(32), crc: 412294283, sha256: 'b'.repeat(64), minBattery: 30, minSignal: -113 },
    spec: { component: 'STM32', package: 'delta_1_0_0_to_2_0_0', minBattery: 30, minSignal: -113 },
    package: { name: 'delta_1_0_0_to_2_0_0', type: 'delta', version: '2_0_0', sourceVersion: '1_0_0', size: 1767, sha256: 'b'.repeat(64), targetSha256: 'c'.repeat(64) },
    current: { version: '1_0_0', size: 24576, sha256: 'd'.repeat(64) },
    options: { battery: 80, blockSize: 1024, crcAlgorithm: 'crc-32', expect: ['upgraded', 'failed-intact'], maxRecoveries: 5 },
    faults: ['offset=1024:power-cycle-module=500'],
    cloudFaults: [{ kind: 'corrupt-next-download', params: { count: 1 } }],
    fired: [{ fault: 'offset=1024:power-cycle-module=500', t: 912.5, phase: 'download', effect: 'module power-cycled, RDY seen' }],
    events: [
      { t: 80.1, raw: '+QIOTEVT: 7,10700,"STM32","1_0_0","2_0_0",30,-113,1767', kind: 'ota-plan', code: 10700 },
      { t: 950, raw: 'RDY', kind: 'reboot' },
    ],
    transcript: [
      { t: 1.5, dir: 'TX', text: 'AT+QIOTOTAREQ=1' },
      { t: 900.25, dir: 'RX', text: '<743 bytes sha256=…>', binary: { length: 743, sha256: 'e'.repeat(64) } },
      { t: 901, dir: '--', text: 'fault offset=1024:power-cycle-module=500: module power-cycled' },
    ],
    phases: [{ name: 'read blocks', start: 100, end: 900, durationMs: 800, ok: false }],
    read: { bytes: 2791, blocks: 3, ms: 300, bytesPerSecond: 9303 },
    progress: [
      { t: 200, offset: 1024 },
      { t: 300, offset: 1767 },
    ],
    download: { verified: true, problems: [], announced: { size: 1767, md5: 'a'.repeat(32), crc: 412294283, sha256: 'b'.repeat(64) } },
    refusal: null,
    readback: { address: 0x0800_0000, size: 25344, identified: { component: 'STM32', version: '2_0_0' }, identity: 'intact', matchesTarget: true, matchesCurrent: false, firstDifference: null, comparison: 'equal (25344 bytes)' },
    verdict: judge({
      expected: ['upgraded', 'failed-intact'],
      decision: 'upgrade',
      moduleResult: 10705,
      downloadVerified: true,
      programmed: true,
      readback: { address: 0x0800_0000, size: 25344, identified: undefined, identity: '', matchesTarget: true, matchesCurrent: false, firstDifference: null, comparison: '' },
      error: undefined,
    }),
    errors: [{ t: 5, phase: 'register', kind: 'protocol', name: 'AtTimeoutError', message: 'no answer to AT+QIOTSTATE?', recovered: true }],
  };
}

describe('run record', () => {
  test('round-trips through its JSON text unchanged', () => {
    const r = record();
    const text = serializeRunRecord(r);
    expect(text.endsWith('\n')).toBe(true);
    const back = parseRunRecord(text);
    expect(back).toEqual(JSON.parse(JSON.stringify(r)));
    expect(serializeRunRecord(back)).toBe(text);
    expect(back.verdict.outcome).toBe('upgraded');
  });

  test.each([
    ['another format', (r: Record<string, unknown>) => (r.format = 'something/else'), /format/],
    ['a newer version', (r: Record<string, unknown>) => (r.version = 2), /version/],
    ['a fault schedule that is not a list', (r: Record<string, unknown>) => (r.faults = 'offset=1:close-port'), /faults/],
    ['no package name', (r: Record<string, unknown>) => delete (r.spec as Record<string, unknown>).package, /spec\.package/],
    ['an unknown expected outcome', (r: Record<string, unknown>) => ((r.options as Record<string, unknown>).expect = ['maybe']), /options\.expect\.0/],
  ])('refuses %s, naming the field', (_what, spoil, field) => {
    const r = JSON.parse(serializeRunRecord(record())) as Record<string, unknown>;
    spoil(r);
    let caught: unknown;
    try {
      parseRunRecord(JSON.stringify(r), 'run.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).summary).toMatch(/^run\.json is not a sota-rig\/run-record v1/);
    expect((caught as ConfigError).expected).toMatch(field);
  });

  test('refuses text that is not JSON', () => {
    expect(() => parseRunRecord('{"format": ', 'run.json')).toThrow(/run\.json is not JSON/);
  });

  test('a long progress series is thinned evenly, keeping both ends', () => {
    const pts = Array.from({ length: 10_001 }, (_, i) => ({ t: i, offset: i * 10 }));
    const out = thin(pts, 101);
    expect(out).toHaveLength(101);
    expect(out[0]).toEqual({ t: 0, offset: 0 });
    expect(out[100]).toEqual({ t: 10_000, offset: 100_000 });
    expect(out[50]).toEqual({ t: 5000, offset: 50_000 });
    expect(thin(pts.slice(0, 5), 101)).toEqual(pts.slice(0, 5));
  });

  test("keeps a virtual station's settings and no secret, and a replay reads them back", () => {
    const config = parseConfig({
      stations: {
        virtual: { timeScale: 0.05, downloadRate: 4096, moduleFreeSpace: 12_000, baud: 921_600, productSecret: 'NotForRecords', flashImage: '/tmp/x.bin' },
        'bench-2': {
          module: { port: '/dev/serial/by-id/usb-Quectel', productKey: 'pk', productSecret: { env: 'BENCH2_SECRET' } },
          probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
          layout: { slotAddress: 0x0800_0000, slotSize: 65536 },
        },
      },
    });
    const virtual = recordedStationConfig(config.stations.virtual!);
    expect(virtual).toMatchObject({ kind: 'virtual', timeScale: 0.05, downloadRate: 4096, moduleFreeSpace: 12_000, baud: 921_600 });
    expect(JSON.stringify(virtual)).not.toContain('NotForRecords');
    expect(virtual).not.toHaveProperty('flashImage');
    const bench = recordedStationConfig(config.stations['bench-2']!);
    expect(bench).toMatchObject({ kind: 'hardware', module: { port: '/dev/serial/by-id/usb-Quectel', productKey: 'pk' } });
    expect(JSON.stringify(bench)).not.toContain('BENCH2_SECRET');

    const r = completeRecord(record(), { entry: config.stations.virtual });
    const back = parseRunRecord(serializeRunRecord(r));
    expect(recordedVirtualSettings(back)).toMatchObject({ timeScale: 0.05, downloadRate: 4096, moduleFreeSpace: 12_000, baud: 921_600 });
    expect(recordedVirtualSettings(completeRecord(record(), { entry: config.stations['bench-2'] }))).toEqual({});
  });

  test('embeds the package and starting image only when the manifest does not hold them, and stays small', async () => {
    const manifest = await loadManifest();
    const pkg = manifest.package('full_2_0_0');
    const from = manifest.image('1_0_0');
    expect(recordedFirmware(pkg, from, manifest)).toBeUndefined();
    // The same bytes under other names, as a suite's temporary build has them: not the manifest's files.
    const tmpPkg = new Package(new Uint8Array([...pkg.bytes, 0]), { ...pkg, name: 'full_tmp' });
    const tmpFrom = new Image(new Uint8Array([...from.bytes, 0]), from);
    const firmware = recordedFirmware(tmpPkg, tmpFrom, manifest);
    expect(firmware?.package?.info.name).toBe('full_tmp');
    expect(Buffer.from(firmware!.package!.base64, 'base64').equals(Buffer.from(tmpPkg.bytes))).toBe(true);
    expect(Buffer.from(firmware!.current!.base64, 'base64').equals(Buffer.from(tmpFrom.bytes))).toBe(true);
    const text = serializeRunRecord(completeRecord(record(), { firmware }));
    expect(parseRunRecord(text).firmware?.package?.info.name).toBe('full_tmp');
    // base64 is 4/3 of the bytes; the rest of the record is unchanged.
    expect(text.length - serializeRunRecord(record()).length).toBeLessThan(1.4 * (tmpPkg.size + tmpFrom.size) + 2000);
  });
});

describe('the run transcript under a flood', () => {
  test('the run log keeps its transcript within budget, and the record and its attachment say what was dropped', () => {
    const attached = new Map<string, string>();
    const recorder: Recorder = { step: (_n, body) => body(), attach: (name, content) => void attached.set(name, String(content)), measure: () => undefined };
    const log = new RunLog(recorder, 32 * 1024);
    log.addTranscript({ t: 0, at: 0, dir: 'TX', text: 'AT+QIOTOTAREQ=1' });
    for (let i = 0; i < 200; i++) log.addTranscript({ t: i, at: i, dir: 'RX', text: `${'\ufffd'.repeat(1024)}${i}` });
    expect(log.transcript.length).toBeLessThan(201);
    expect(log.transcript.at(-1)!.text.endsWith('199')).toBe(true);
    expect(log.transcriptDropped).toMatchObject({ entries: 201 - log.transcript.length });
    const r = { ...record(), transcript: log.transcript, transcriptDropped: log.transcriptDropped };
    publishRecord(recorder, r, new FaultSchedule([]));
    expect(attached.get('AT transcript')!.split('\n')[0]).toMatch(/^\[--\]… \d+ earlier entries \(about \d+ KiB, .*\) dropped/);
    expect(JSON.parse(attached.get('run record')!).transcriptDropped).toEqual(log.transcriptDropped);
  });
});
