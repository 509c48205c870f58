import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../images/manifest.ts';
import { dutBootloader, dutReleases } from './dut-firmware.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('a dut firmware set (fixtures/mcu)', async () => {
  const set = await loadManifest(path.join(root, 'fixtures', 'mcu', 'manifest.json'));

  it('its releases are the reference applications only: no bootloader, no image with a planted defect', () => {
    expect(dutReleases(set).map((i) => i.version)).toEqual(['1_0_0', '1_1_0', '2_0_0']);
  });

  it('its bootloader is the one without planted defects; a key names another; an unknown key is a config error', () => {
    expect(dutBootloader(set)?.version).toBe('vbl-1.0');
    expect(dutBootloader(set, 'vbl-1.0-unsafe')?.version).toBe('vbl-1.0-unsafe');
    expect(() => dutBootloader(set, 'vbl-9')).toThrow(/no bootloader image vbl-9/);
  });

  it('a proxy set has no bootloader: a bench keeps its own', async () => {
    expect(dutBootloader(await loadManifest(path.join(root, 'fixtures', 'manifest.json')))).toBeUndefined();
  });
});
