import { describe, expect, test } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { ConfigError } from '../errors.ts';
import { completeRecord, type RunRecord } from '../sota/record.ts';
import { withRecordedSettings } from './commands/repro.ts';

const recorded = parseConfig({ stations: { virtual: { timeScale: 0.05, downloadRate: 4096, moduleFreeSpace: 12_000, baud: 921_600 } } });
const record = completeRecord({ station: { name: 'virtual' } } as unknown as RunRecord, { entry: recorded.stations.virtual });

describe('rig repro: the station it replays on', () => {
  test("a virtual station takes the record's virtual settings over its defaults, keeping its own file paths", () => {
    const mine = parseConfig({ stations: { virtual: { flashImage: '/tmp/start.bin' } } });
    const { config, applied } = withRecordedSettings(mine, 'virtual', record, 'run.json');
    expect(config.stations.virtual).toMatchObject({ kind: 'virtual', timeScale: 0.05, downloadRate: 4096, moduleFreeSpace: 12_000, baud: 921_600, flashImage: '/tmp/start.bin' });
    expect(applied).toEqual(expect.arrayContaining(['timeScale', 'downloadRate', 'moduleFreeSpace', 'baud']));
    // The loaded config itself is left as it was (--own-settings uses it).
    expect(mine.stations.virtual).toMatchObject({ timeScale: 1 });
  });

  test('a hardware station keeps its own entry', () => {
    const bench = parseConfig({
      stations: { 'bench-2': { module: { port: '/dev/serial/by-id/x' }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: 0x0800_0000, slotSize: 65536 } } },
    });
    const { config, applied } = withRecordedSettings(bench, 'bench-2', record, 'run.json');
    expect(config).toBe(bench);
    expect(applied).toEqual([]);
  });

  test('recorded settings that do not validate are a config error naming the record and the key', () => {
    const spoiled = { station: { name: 'virtual', config: { kind: 'virtual', timeScale: -1 } } } as unknown as RunRecord;
    const err = (() => {
      try {
        withRecordedSettings(parseConfig({}), 'virtual', spoiled, 'run.json');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toContain('run.json');
    expect(String((err as Error).message)).toContain('timeScale');
  });
});
