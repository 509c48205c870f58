import { beforeAll, describe, expect, test } from 'vitest';
import { FirmwareError } from '../errors.ts';
import { crc32 } from './crc.ts';
import {
  describeIdentity, identifyImage, IMAGE_HEADER_OFFSET, IMAGE_HEADER_SIZE, parseImageHeader, writeImageHeader,
} from './header.ts';
import { Image } from './image.ts';
import { loadManifest, type FirmwareSet } from './manifest.ts';

let fx: FirmwareSet;
beforeAll(async () => {
  fx = await loadManifest();
});

function thrown(fn: () => unknown): FirmwareError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FirmwareError) return e;
    throw e;
  }
  throw new Error('expected a FirmwareError, nothing was thrown');
}

describe('image header', () => {
  test.each(['1_0_0', '1_1_0', '2_0_0'])('fixture %s carries its own version, component, length and load address', (version) => {
    const img = fx.image(version);
    const h = parseImageHeader(img.bytes);
    expect(h).toMatchObject({ component: 'STM32', version, imageLength: img.size, loadAddress: 0x08000000, offset: 0x200 });
    expect(identifyImage(img.bytes)).toEqual({ state: 'valid', header: h });
    expect(Image.fromBytes(img.bytes).version).toBe(version);
  });

  test('fixtures boot from SRAM with a Thumb reset handler inside the image', () => {
    for (const img of fx.images.values()) {
      const dv = new DataView(img.bytes.buffer, img.bytes.byteOffset);
      const sp = dv.getUint32(0, true);
      const reset = dv.getUint32(4, true);
      expect(sp).toBe(0x20005000);
      expect(reset & 1).toBe(1);
      expect(reset - 1).toBeGreaterThanOrEqual(fx.loadAddress + IMAGE_HEADER_OFFSET + IMAGE_HEADER_SIZE);
      expect(reset - 1).toBeLessThan(fx.loadAddress + img.size);
      expect(`0x${reset.toString(16).padStart(8, '0')}`).toBe(fx.entries.images[img.version]!.resetHandler);
    }
  });

  test('a read-back of a whole slot, longer than the image and padded with erased flash, is still identified', () => {
    const img = fx.image('2_0_0');
    const slot = new Uint8Array(64 * 1024).fill(0xff);
    slot.set(img.bytes);
    const id = identifyImage(slot);
    expect(id.state).toBe('valid');
    expect(Image.fromBytes(slot).equals(img)).toBe(true);
  });

  test('erased flash has no header, and says so', () => {
    const erased = new Uint8Array(4096).fill(0xff);
    expect(identifyImage(erased)).toEqual({ state: 'no-header', seenMagic: 'ffffffff', erased: true });
    const e = thrown(() => parseImageHeader(erased));
    expect(e.expected).toContain('"SOTA"');
    expect(e.seen).toBe('magic ffffffff (erased flash)');
  });

  test('a flipped body byte is a damaged image of the version its header names', () => {
    const bytes = fx.image('1_0_0').bytes.slice();
    bytes[10_000]! ^= 0x01;
    const id = identifyImage(bytes);
    expect(id.state).toBe('bad-body-crc');
    expect(describeIdentity(id)).toMatch(/^STM32 1_0_0 damaged: body CRC \d+ \(0x[0-9a-f]{8}\), header says/);
    expect(() => Image.fromBytes(bytes)).toThrow(FirmwareError);
  });

  test('a flipped vector-table byte is caught too: the body CRC covers everything but the header', () => {
    const bytes = fx.image('1_0_0').bytes.slice();
    bytes[4]! ^= 0x80;
    expect(identifyImage(bytes).state).toBe('bad-body-crc');
  });

  test('a flipped header byte fails the header CRC', () => {
    const bytes = fx.image('1_0_0').bytes.slice();
    bytes[IMAGE_HEADER_OFFSET + 0x18]! ^= 0x03; // "1_0_0" → "2_0_0" must not pass for another version
    const id = identifyImage(bytes);
    expect(id.state).toBe('bad-header');
    expect(thrown(() => parseImageHeader(bytes)).seen).toMatch(/^header CRC \d+ .* but its bytes give/);
  });

  test('a read-back that stops early is truncated, not damaged', () => {
    const img = fx.image('2_0_0');
    const id = identifyImage(img.bytes.subarray(0, 8192));
    expect(id).toMatchObject({ state: 'truncated', available: 8192 });
    expect(describeIdentity(id)).toBe(`STM32 2_0_0 truncated: 8192 of ${img.size} bytes`);
  });

  test('writeImageHeader round-trips and refuses versions that cannot travel in an AT command', () => {
    const bytes = new Uint8Array(2048).map((_, i) => i & 0xff);
    const written = writeImageHeader(bytes, { component: 'STM32', version: '3_1_4-rc.1', loadAddress: 0x08008000 });
    expect(parseImageHeader(bytes)).toEqual(written);
    expect(identifyImage(bytes).state).toBe('valid');
    expect(thrown(() => writeImageHeader(bytes, { component: 'STM32', version: '1,0', loadAddress: 0 })).seen).toBe('"1,0"');
    expect(thrown(() => writeImageHeader(bytes, { component: 'STM32', version: 'v'.repeat(24), loadAddress: 0 })).expected)
      .toContain('1..23 characters');
    expect(thrown(() => writeImageHeader(new Uint8Array(100), { component: 'STM32', version: '1', loadAddress: 0 })).seen)
      .toBe('100 bytes');
  });

  test('a header whose image length ends inside the header is damaged, even with a good header CRC', () => {
    const bytes = new Uint8Array(2048);
    writeImageHeader(bytes, { component: 'STM32', version: '1_0_0', loadAddress: 0x08000000 });
    const dv = new DataView(bytes.buffer);
    dv.setUint32(IMAGE_HEADER_OFFSET + 0x30, 16, true);
    dv.setUint32(IMAGE_HEADER_OFFSET + 0x3c, crc32(bytes.subarray(IMAGE_HEADER_OFFSET, IMAGE_HEADER_OFFSET + 0x3c)), true);
    expect(identifyImage(bytes)).toEqual({ state: 'bad-header', reason: 'image length 16 ends before the header does (576)' });
  });

  test('a header at another offset is found only there', () => {
    const bytes = new Uint8Array(4096);
    writeImageHeader(bytes, { component: 'STM32', version: '9_9_9', loadAddress: 0x08000000 }, 0x400);
    expect(parseImageHeader(bytes, 0x400).version).toBe('9_9_9');
    expect(identifyImage(bytes)).toMatchObject({ state: 'no-header', erased: false, seenMagic: '00000000' });
  });
});
