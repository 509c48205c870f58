import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, FirmwareError } from '../errors.ts';
import { loadManifest } from './manifest.ts';
import { addRelease, compareVersions, loadReleases } from './release.ts';
import { mcubootImage } from './testing/mcuboot.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-release-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Firmware as a linker leaves it: a vector table, then code; `edit` changes a few bytes like a new release. */
function app(edit: number): Uint8Array {
  const bytes = new Uint8Array(6000);
  let x = 0x1234567;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  bytes.set(Buffer.from('00500020c1020008', 'hex'));
  for (let i = 0; i < edit; i++) bytes[1000 + 97 * i] = 0;
  return bytes;
}
const signed = (minor: number, edit = minor) => mcubootImage({ body: app(edit), version: { major: 1, minor, revision: 0, build: 0 } });

describe('rig image add: a manifest of real releases', () => {
  test('the first release creates the manifest with the detected locator; later ones get a delta from each earlier one', async () => {
    const manifestPath = path.join(tmp, 'mcuboot', 'manifest.json');
    const first = await addRelease({ manifestPath, bytes: signed(0), component: 'STM32', origin: 'app-1.0.bin' });
    expect(first).toMatchObject({ created: true, alreadyThere: false, locator: { kind: 'mcuboot' }, packages: ['full_1.0.0'], written: ['images/STM32_1.0.0.bin', 'manifest.json'] });
    expect(first.release.versionFrom).toBe('image');
    await addRelease({ manifestPath, bytes: signed(1), origin: 'app-1.1.bin' });
    const third = await addRelease({ manifestPath, bytes: signed(2), version: '1.2.0' });
    expect(third.packages).toEqual(['full_1.2.0', 'delta_1.0.0_to_1.2.0', 'delta_1.1.0_to_1.2.0']);
    expect(third.release.versionFrom).toBe('given and image');

    const set = await loadManifest(manifestPath);
    expect([...set.images.keys()]).toEqual(['1.0.0', '1.1.0', '1.2.0']);
    expect(set.locator).toEqual({ kind: 'mcuboot', offset: 0, format: '{major}.{minor}.{revision}' });
    const delta = set.package('delta_1.1.0_to_1.2.0');
    expect(delta.apply(set.image('1.1.0')).equals(set.image('1.2.0'))).toBe(true);
    expect(delta.size).toBeLessThan(set.image('1.2.0').size / 4);
    const raw = JSON.parse(readFileSync(manifestPath, 'utf8')) as { generator: string; locator: unknown; images: Record<string, { origin?: string; initialSp?: string }> };
    expect(raw.generator).toBe('rig image add');
    expect(raw.locator).toEqual({ kind: 'mcuboot', offset: '0x0', format: '{major}.{minor}.{revision}' });
    expect(raw.images['1.1.0']).toMatchObject({ origin: 'app-1.1.bin' });
    expect(raw.images['1.1.0']!.initialSp).toBeUndefined();

    // The same release again: nothing to do.
    const again = await addRelease({ manifestPath, bytes: signed(1) });
    expect(again).toMatchObject({ alreadyThere: true, written: [], packages: [] });
  });

  test('images with no version in them: the version is given, the manifest says so (locator none)', async () => {
    const manifestPath = path.join(tmp, 'plain', 'manifest.json');
    await expect(addRelease({ manifestPath, bytes: app(0), component: 'STM32' })).rejects.toThrow(/which version is the image\?/);
    const r = await addRelease({ manifestPath, bytes: app(0), component: 'STM32', version: '2_0_0' });
    expect(r.locator).toEqual({ kind: 'none' });
    await addRelease({ manifestPath, bytes: app(3), version: '2_1_0' });
    const set = await loadManifest(manifestPath);
    expect(set.packages.has('delta_2_0_0_to_2_1_0')).toBe(true);
    expect(set.entries.images['2_0_0']).toMatchObject({ initialSp: '0x20005000', resetHandler: '0x080002c1' });
  });

  test('refused with nothing written: other bytes under a known version, known bytes under a new version, another component or locator', async () => {
    const manifestPath = path.join(tmp, 'refuse', 'manifest.json');
    await addRelease({ manifestPath, bytes: app(0), component: 'STM32', version: '1' });
    const before = readFileSync(manifestPath, 'utf8');
    await expect(addRelease({ manifestPath, bytes: app(1), version: '1' })).rejects.toThrow(/already in .* with other bytes/);
    await expect(addRelease({ manifestPath, bytes: app(0), version: '2' })).rejects.toThrow(/these bytes are already release 1/);
    await expect(addRelease({ manifestPath, bytes: app(1), version: '2', component: 'NRF52' })).rejects.toThrow(ConfigError);
    await expect(addRelease({ manifestPath, bytes: app(1), version: '2', locator: { kind: 'mcuboot', offset: 0, format: '{major}' } })).rejects.toThrow(/another locator/);
    await expect(addRelease({ manifestPath, bytes: signed(4), version: '9.9.9', locator: { kind: 'none' } })).resolves.toBeDefined();
    expect(readFileSync(manifestPath, 'utf8')).not.toBe(before);
  });

  test('an image file already there with other bytes is not overwritten', async () => {
    const manifestPath = path.join(tmp, 'clash', 'manifest.json');
    await addRelease({ manifestPath, bytes: app(0), component: 'STM32', version: '1' });
    writeFileSync(path.join(tmp, 'clash', 'images', 'STM32_2.bin'), 'someone else');
    await expect(addRelease({ manifestPath, bytes: app(1), version: '2' })).rejects.toThrow(FirmwareError);
    expect((await loadManifest(manifestPath)).images.size).toBe(1);
  });
});

describe('qualify --releases: a directory of release files', () => {
  test('named by their headers, or by their file names, in version order', async () => {
    const dir = path.join(tmp, 'dir-mcuboot');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'b.bin'), signed(10));
    writeFileSync(path.join(dir, 'a.bin'), signed(9));
    const set = await loadReleases(dir, { component: 'STM32' });
    expect([...set.images.keys()]).toEqual(['1.9.0', '1.10.0']);

    const plain = path.join(tmp, 'dir-plain');
    mkdirSync(plain);
    writeFileSync(path.join(plain, 'STM32_1_10_0.bin'), app(2));
    writeFileSync(path.join(plain, 'v1_9_0.bin'), app(1));
    writeFileSync(path.join(plain, 'notes.txt'), 'not a release');
    expect([...(await loadReleases(plain, { component: 'STM32' })).images.keys()]).toEqual(['1_9_0', '1_10_0']);
  });

  test('a directory with a manifest is that manifest; an empty one is a config error', async () => {
    expect((await loadReleases(path.join(tmp, 'mcuboot'), { component: 'STM32' })).images.size).toBe(3);
    mkdirSync(path.join(tmp, 'empty'));
    await expect(loadReleases(path.join(tmp, 'empty'), { component: 'STM32' })).rejects.toThrow(/no releases in/);
  });

  test('version order', () => {
    expect(['2_0_0', '1_10_0', '1_9_0', '1_9_0_1', 'a', '10'].sort(compareVersions)).toEqual(['1_9_0', '1_9_0_1', '1_10_0', '2_0_0', '10', 'a']);
  });
});
