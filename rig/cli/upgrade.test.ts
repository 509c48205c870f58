// `rig upgrade --plan`: a plan declared in a bench's config becomes the upgrade the flow expects.
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../config/load.ts';
import type { HardwareStationConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { loadManifest } from '../images/manifest.ts';
import { specFromPlan } from './commands/upgrade.ts';
import { UsageError } from './output.ts';

const firmware = await loadManifest();
const v110 = firmware.image('1_1_0');
const config = parseConfig({
  stations: {
    'bench-1': {
      module: { port: '/dev/serial/by-id/usb-Quectel-if02' },
      probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
      layout: { slotAddress: 0x08010000, slotSize: 65536 },
      plans: {
        kind: 'declared',
        plans: [
          { name: 'delta 1→2', package: 'delta_1_0_0_to_2_0_0', sourceVersion: '1_0_0', targetVersion: '2_0_0' },
          { name: 'full 1.1 battery', component: 'STM32', package: { file: 'STM32_1_1_0.bin', sha256: v110.sha256 }, targetVersion: '1_1_0', minBattery: 30, minSignal: -100 },
          { name: 'unknown file', package: { file: 'other.bin', sha256: 'a'.repeat(64) }, targetVersion: '9_9_9' },
        ],
      },
    },
  },
});
const entry = config.stations['bench-1'] as HardwareStationConfig;
const station = { name: 'bench-1', component: 'STM32', config: entry };

describe('rig upgrade --plan', () => {
  test('a declared plan by manifest package name', () => {
    const spec = specFromPlan(station, firmware, 'delta 1→2');
    expect(spec.package.name).toBe('delta_1_0_0_to_2_0_0');
    expect(spec).toMatchObject({ component: 'STM32', minBattery: 0, minSignal: 0 });
  });

  test('a declared plan by file hash, with its thresholds', () => {
    const spec = specFromPlan(station, firmware, 'full 1.1 battery');
    expect(spec.package.name).toBe('full_1_1_0');
    expect(spec).toMatchObject({ component: 'STM32', minBattery: 30, minSignal: -100 });
  });

  test('a plan that is not declared: a config error listing those that are', () => {
    expect(() => specFromPlan(station, firmware, 'full 3.0')).toThrow(ConfigError);
    expect(() => specFromPlan(station, firmware, 'full 3.0')).toThrow(/"delta 1→2", "full 1.1 battery", "unknown file"/);
  });

  test('a declared plan whose file is not in the manifest: a config error naming its hash', () => {
    expect(() => specFromPlan(station, firmware, 'unknown file')).toThrow(/sha256 a{64}/);
  });

  test('--plan on a station whose plans come from an API is a usage error', () => {
    const api = { ...station, config: { plans: { kind: 'api' as const, url: 'http://127.0.0.1:1' } } };
    expect(() => specFromPlan(api, firmware, 'delta 1→2')).toThrow(UsageError);
  });
});
