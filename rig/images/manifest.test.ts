import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, FirmwareError } from '../errors.ts';
import { defaultManifestPath, loadManifest, type FirmwareSet, type ManifestJson } from './manifest.ts';

const manifestPath = defaultManifestPath();
const fixturesDir = path.dirname(manifestPath);
let raw: ManifestJson;
let fx: FirmwareSet;
let scratch: string;

beforeAll(async () => {
  raw = JSON.parse(await readFile(manifestPath, 'utf8')) as ManifestJson;
  fx = await loadManifest(manifestPath);
  scratch = await mkdtemp(path.join(tmpdir(), 'sota-manifest-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const hash = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest('hex');

async function copyWith(edit: (m: ManifestJson) => void): Promise<string> {
  const dir = await mkdtemp(path.join(scratch, 'copy-'));
  await cp(fixturesDir, dir, { recursive: true });
  const m = structuredClone(raw);
  edit(m);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
  return path.join(dir, 'manifest.json');
}

describe('fixtures/manifest.json', () => {
  test('lists the three images and five packages the suites use', () => {
    expect([...fx.images.keys()]).toEqual(['1_0_0', '1_1_0', '2_0_0']);
    expect([...fx.packages.keys()].sort()).toEqual(
      ['corrupt_full_2_0_0', 'delta_1_0_0_to_2_0_0', 'full_1_0_0', 'full_1_1_0', 'full_2_0_0'],
    );
    expect(fx).toMatchObject({ component: 'STM32', loadAddress: 0x08000000, headerOffset: 0x200 });
  });

  test('every size and hash agrees with the files, recomputed with node:crypto and zlib', async () => {
    const entries = [...Object.values(raw.images), ...Object.values(raw.packages).filter((p) => !p.corrupted)];
    for (const e of entries) {
      const bytes = new Uint8Array(await readFile(path.join(fixturesDir, e.file)));
      expect({ size: bytes.length, md5: hash('md5', bytes), sha256: hash('sha256', bytes), crc32: zlibCrc32(bytes) }, e.file)
        .toEqual({ size: e.size, md5: e.md5, sha256: e.sha256, crc32: e.crc32 });
    }
  });

  test('images stay small enough for a simulated 115200-baud download', () => {
    for (const img of fx.images.values()) expect(img.size).toBeLessThanOrEqual(32 * 1024);
  });

  test('package sources and targets are the listed images', () => {
    for (const pkg of fx.packages.values()) {
      expect(pkg.target).toEqual(fx.image(pkg.version).ref());
      if (pkg.type === 'delta') expect(pkg.source).toEqual(fx.image(pkg.sourceVersion!).ref());
      else expect(pkg.source).toBeUndefined();
    }
    const delta = fx.package('delta_1_0_0_to_2_0_0');
    expect(delta).toMatchObject({ type: 'delta', sourceVersion: '1_0_0', version: '2_0_0', component: 'STM32' });
  });

  test('the corrupted package is 2_0_0 with exactly the listed bytes flipped, and declares the intact hashes', () => {
    const e = raw.packages['corrupt_full_2_0_0']!;
    const corrupt = fx.package('corrupt_full_2_0_0');
    const v2 = fx.image('2_0_0');
    expect(corrupt.declared).toEqual({ size: v2.size, md5: v2.md5, crc: v2.crc32, sha256: v2.sha256 });
    const differing = [...corrupt.bytes.keys()].filter((i) => corrupt.bytes[i] !== v2.bytes[i]);
    expect(differing).toEqual(e.corrupted!.offsets);
    for (const o of differing) expect(corrupt.bytes[o]! ^ v2.bytes[o]!).toBe(e.corrupted!.xor);
    expect(corrupt.sha256).toBe(e.corrupted!.fileSha256);
  });

  test('imageByHash names what a read-back holds', () => {
    expect(fx.imageByHash(fx.image('1_1_0').sha256)?.version).toBe('1_1_0');
    expect(fx.imageByHash('0'.repeat(64))).toBeUndefined();
  });

  test('an unknown version or package is a ConfigError listing what exists', () => {
    expect(() => fx.image('3_0_0')).toThrow(ConfigError);
    expect(() => fx.package('full_3_0_0')).toThrow(/no package full_3_0_0/);
  });
});

describe('loadManifest refuses', () => {
  test('a manifest whose hash disagrees with its file, naming file, expected and seen', async () => {
    const p = await copyWith((m) => { m.images['1_1_0']!.sha256 = '0'.repeat(64); });
    const err = await loadManifest(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirmwareError);
    expect((err as FirmwareError).summary).toBe('images/STM32_1_1_0.bin does not match the manifest (sha256)');
    expect((err as FirmwareError).expected).toBe(`sha256 ${'0'.repeat(64)}`);
    expect((err as FirmwareError).seen).toBe(`sha256 ${fx.image('1_1_0').sha256}`);
  });

  test('an image listed under a version its header does not carry', async () => {
    const p = await copyWith((m) => {
      m.images['1_1_0'] = { ...m.images['1_0_0']!, version: '1_1_0' };
    });
    const err = await loadManifest(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirmwareError);
    expect((err as FirmwareError).seen).toBe('version 1_0_0 (rig header at 0x200)');
  });

  test('a malformed manifest, as a ConfigError with the offending path', async () => {
    const p = await copyWith((m) => { (m as { loadAddress: unknown }).loadAddress = 134217728; });
    const err = await loadManifest(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).seen).toContain('loadAddress');
    const missing = await loadManifest(path.join(scratch, 'nope.json')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfigError);
  });
});

describe('fixtures/mcu/manifest.json (the virtual MCU set: bootloaders, slot-A images, defect variants)', () => {
  const mcuPath = path.join(fixturesDir, 'mcu', 'manifest.json');

  test('loads: roles, per-image load addresses, several images of one version told apart by their keys', async () => {
    const set = await loadManifest(mcuPath);
    expect(set.loadAddress).toBe(0x08020000);
    expect(set.entries.images['vbl-1.0']).toMatchObject({ component: 'BOOT', role: 'bootloader', loadAddress: '0x08000000', defects: [] });
    expect(set.entries.images['vbl-1.0-unsafe']).toMatchObject({ role: 'bootloader', defects: ['unsafe-swap'] });
    expect(set.entries.images['2_0_0']).toMatchObject({ role: 'application', defects: [] });
    expect(set.entries.images['2_0_0']!.loadAddress).toBeUndefined();
    const variant = set.image('2_0_0-never-confirms');
    expect(variant.version).toBe('2_0_0');
    expect(set.entries.images['2_0_0-never-confirms']!.defects).toEqual(['never-confirms']);
    expect(variant.sha256).not.toBe(set.image('2_0_0').sha256);
    expect(set.image('1_0_0').header().loadAddress).toBe(0x08020000);
    expect(set.package('delta_1_0_0_to_2_0_0').apply(set.image('1_0_0')).equals(set.image('2_0_0'))).toBe(true);
    expect(set.package('full_2_0_0-crash-at-boot').verify().ok).toBe(true);
  });

  test('a key that is neither the version nor a variant of it is refused', async () => {
    const m = JSON.parse(await readFile(mcuPath, 'utf8')) as ManifestJson;
    m.images['2_0_1-never-confirms'] = m.images['2_0_0-never-confirms']!;
    delete m.images['2_0_0-never-confirms'];
    const dir = await mkdtemp(path.join(scratch, 'mcu-'));
    await cp(path.dirname(mcuPath), dir, { recursive: true });
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
    const err = await loadManifest(path.join(dir, 'manifest.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirmwareError);
    expect((err as FirmwareError).expected).toBe('version 2_0_1-never-confirms/2_0_0');
  });
});
