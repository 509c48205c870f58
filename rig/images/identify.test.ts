import { describe, expect, test } from 'vitest';
import { ConfigError, FirmwareError } from '../errors.ts';
import { identifyContent, identifyRelease } from './identify.ts';
import { Image } from './image.ts';
import { loadManifest } from './manifest.ts';
import { mcubootImage } from './testing/mcuboot.ts';

const fx = await loadManifest();
const known = [...fx.images.values()];
const slot = (bytes: Uint8Array, size = 0x10000): Uint8Array => {
  const out = new Uint8Array(size).fill(0xff);
  out.set(bytes);
  return out;
};

describe('naming what a read-back holds, by its bytes', () => {
  test('a known image in a slot with an erased tail', () => {
    const id = identifyContent(slot(fx.image('1_1_0').bytes), { known });
    expect(id.image?.version).toBe('1_1_0');
    expect(id.text).toBe(`STM32 1_1_0 (24576 bytes, sha256 ${fx.image('1_1_0').sha256.slice(0, 12)}…)`);
  });

  test('a shorter image over the tail of a longer one says so', () => {
    const flash = slot(fx.image('2_0_0').bytes);
    flash.set(fx.image('1_0_0').bytes);
    const id = identifyContent(flash, { known });
    expect(id.image?.version).toBe('1_0_0');
    expect(id.text).toMatch(/^STM32 1_0_0 \(24576 bytes, sha256 [0-9a-f]{12}…\), then 768 bytes that are not erased \(up to offset 0x6300\)$/);
  });

  test('a short read: the part of the images it equals, not "a damaged header"', () => {
    const id = identifyContent(fx.image('2_0_0').bytes.subarray(0, 0x100), { known });
    // The vector table is the same in every fixture.
    expect(id.text).toBe('the first 256 bytes of STM32 1_0_0, 1_1_0 and 2_0_0 (the same there)');
    expect(id.partOf.map((i) => i.version).sort()).toEqual(['1_0_0', '1_1_0', '2_0_0']);
    const inside = identifyContent(fx.image('2_0_0').bytes.subarray(0x4000, 0x4100), { known, offset: 0x4000 });
    expect(inside.text).toBe('bytes 0x4000–0x40ff of STM32 2_0_0 (25344 bytes)');
  });

  test('erased, and unknown bytes named by the locator or said to be unknown', () => {
    expect(identifyContent(new Uint8Array(256).fill(0xff), { known }).text).toBe('erased (256 bytes of 0xFF)');
    const torn = fx.image('2_0_0').bytes.slice();
    torn[0x2000]! ^= 0xff;
    const t = identifyContent(torn, { known });
    expect(t.image).toBeUndefined();
    expect(t.text).toMatch(/^25344 bytes that are no known image \(sha256 [0-9a-f]{12}…\): the rig header at 0x200 names STM32 2_0_0, damaged: STM32 2_0_0 damaged: body CRC/);
    const signed = mcubootImage({ body: new Uint8Array(1000).fill(7), version: { major: 2, minor: 1, revision: 0, build: 0 } });
    expect(identifyContent(signed, { known, locator: { kind: 'mcuboot', offset: 0, format: '{major}_{minor}_{revision}' } }).text).toMatch(/no known image .*: the MCUboot header at 0x0 names 2_1_0, intact by its own check$/);
    expect(identifyContent(Buffer.from('hello'), { known }).text).toMatch(/^5 bytes that are no known image .*; rig header at 0x200: damaged image header: only 5 bytes/);
  });

  test('a real image without any header is still known by its bytes', () => {
    const plain = new Image(new Uint8Array(3000).fill(0x42), { component: 'STM32', version: '7.0.0' });
    const id = identifyContent(slot(plain.bytes), { known: [plain], locator: { kind: 'none' } });
    expect(id.image).toBe(plain);
    expect(id.located.found).toBe(false);
  });
});

describe('naming a release when it is added', () => {
  const body = new Uint8Array(2048).fill(3);
  const signed = mcubootImage({ body, version: { major: 2, minor: 1, revision: 0, build: 5 } });
  const mcuboot = { kind: 'mcuboot', offset: 0, format: '{major}_{minor}_{revision}' } as const;

  test('the version as given, as found, or both when they agree', () => {
    expect(identifyRelease(body, { component: 'STM32', version: '2_1_0', locator: { kind: 'none' } })).toMatchObject({ versionFrom: 'given', image: { version: '2_1_0', component: 'STM32' } });
    expect(identifyRelease(signed, { component: 'STM32', locator: mcuboot })).toMatchObject({ versionFrom: 'image', image: { version: '2_1_0' } });
    expect(identifyRelease(signed, { component: 'STM32', version: '2_1_0', locator: mcuboot }).versionFrom).toBe('given and image');
  });

  test('refused: a version that disagrees with the image, a damaged image, another component, no version at all, a bad name', () => {
    expect(() => identifyRelease(signed, { component: 'STM32', version: '2_2_0', locator: mcuboot })).toThrow(/names another version than the one given[\s\S]*expected version 2_2_0; seen 2_1_0 \(MCUboot header at 0x0/);
    const bad = signed.slice();
    bad[0x250]! ^= 1;
    expect(() => identifyRelease(bad, { component: 'STM32', locator: mcuboot })).toThrow(FirmwareError);
    expect(() => identifyRelease(fx.image('1_0_0').bytes, { component: 'NRF52' })).toThrow(/is for another component/);
    expect(() => identifyRelease(body, { component: 'STM32', locator: mcuboot, label: 'app.bin' })).toThrow(/which version is app.bin\?[\s\S]*--version[\s\S]*MCUboot header at 0x0: magic 0x3030303/);
    expect(() => identifyRelease(body, { component: 'STM32', version: '2.1+5' })).toThrow(ConfigError);
  });
});
