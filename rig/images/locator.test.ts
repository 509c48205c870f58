import { describe, expect, test } from 'vitest';
import { ConfigError } from '../errors.ts';
import { loadManifest } from './manifest.ts';
import { detectLocator, formatLocator, locateVersion, locatorSchema, parseLocator, type VersionLocator } from './locator.ts';
import { mcubootImage } from './testing/mcuboot.ts';

const fx = await loadManifest();
const body = new Uint8Array(Buffer.concat([Buffer.from('00500020c1020008', 'hex'), Buffer.alloc(3000, 0x5a)]));
const signed = mcubootImage({ body, version: { major: 1, minor: 4, revision: 2, build: 77 } });

describe('the rig header', () => {
  test('names a fixture with its component and length, intact', () => {
    const img = fx.image('1_1_0');
    expect(locateVersion(img.bytes, { kind: 'rig-header', offset: 0x200 })).toEqual({ found: true, version: '1_1_0', component: 'STM32', length: img.size, intact: true, where: 'rig header at 0x200' });
  });

  test('a torn body is found but not intact; a read too short for the header is not found, with the reason', () => {
    const torn = fx.image('2_0_0').bytes.slice();
    torn[0x3000]! ^= 1;
    expect(locateVersion(torn, { kind: 'rig-header', offset: 0x200 })).toMatchObject({ found: true, version: '2_0_0', intact: false, damage: expect.stringMatching(/body CRC/) });
    expect(locateVersion(torn.subarray(0, 0x100), { kind: 'rig-header', offset: 0x200 })).toEqual({ found: false, where: 'rig header at 0x200', reason: expect.stringMatching(/only 256 bytes/) });
  });
});

describe('an MCUboot header', () => {
  const mcuboot: VersionLocator = { kind: 'mcuboot', offset: 0, format: '{major}.{minor}.{revision}' };

  test('its version, and the whole length: header, body and TLV area; the SHA-256 TLV vouches for it', () => {
    expect(signed.length).toBe(0x200 + body.length + 40);
    expect(locateVersion(signed, mcuboot)).toEqual({ found: true, version: '1.4.2', length: signed.length, intact: true, where: 'MCUboot header at 0x0' });
  });

  test('the format turns the version into a Developer Center name, build number included if asked', () => {
    expect(locateVersion(signed, { ...mcuboot, format: '{major}_{minor}_{revision}' })).toMatchObject({ version: '1_4_2' });
    expect(locateVersion(signed, { ...mcuboot, format: 'v{major}.{minor}.{revision}-b{build}' })).toMatchObject({ version: 'v1.4.2-b77' });
    // "+" is what imgtool writes, and what Developer Center refuses.
    expect(locateVersion(signed, { ...mcuboot, format: '{major}.{minor}.{revision}+{build}' })).toMatchObject({ found: false, reason: expect.stringMatching(/not a version/) });
  });

  test('a byte flipped in the body: found, damaged by the SHA-256 TLV; a read that stops inside the body: truncated', () => {
    const bad = signed.slice();
    bad[0x300]! ^= 0x40;
    expect(locateVersion(bad, mcuboot)).toMatchObject({ found: true, version: '1.4.2', intact: false, damage: expect.stringMatching(/SHA-256 TLV/) });
    expect(locateVersion(signed.subarray(0, 0x400), mcuboot)).toMatchObject({ found: true, intact: false, damage: expect.stringMatching(/truncated: 1024 of at least 3520 bytes/) });
  });

  test('erased flash, our own images and a header at another offset', () => {
    expect(locateVersion(new Uint8Array(64).fill(0xff), mcuboot)).toEqual({ found: false, where: 'MCUboot header at 0x0', reason: 'magic 0xffffffff, not 0x96f3b83d (erased flash)' });
    expect(locateVersion(fx.image('1_0_0').bytes, mcuboot).found).toBe(false);
    const shifted = new Uint8Array(0x1000 + signed.length).fill(0xff);
    shifted.set(signed, 0x1000);
    expect(locateVersion(shifted, { ...mcuboot, offset: 0x1000 })).toMatchObject({ found: true, version: '1.4.2', intact: true, length: signed.length });
  });

  test('without a hash TLV the version is found and nothing is claimed about the body', () => {
    const plain = mcubootImage({ body, version: { major: 3, minor: 0, revision: 0, build: 0 }, noHash: true });
    const l = locateVersion(plain, mcuboot);
    expect(l).toMatchObject({ found: true, version: '3.0.0', intact: false, damage: 'no SHA-256 TLV' });
  });
});

describe('a version string', () => {
  const image = new Uint8Array(0x800).fill(0xff);
  image.set(Buffer.from('FW-2.1.0\0junk'), 0x400);

  test('at a fixed offset, ended by NUL or erased flash', () => {
    expect(locateVersion(image, { kind: 'string', offset: 0x400, length: 32 })).toEqual({ found: true, version: 'FW-2.1.0', where: 'version string at 0x400' });
    expect(locateVersion(image, { kind: 'string', offset: 0x400, length: 4 })).toMatchObject({ version: 'FW-2' });
    expect(locateVersion(image, { kind: 'string', offset: 0x500, length: 32 })).toEqual({ found: false, where: 'version string at 0x500', reason: 'erased flash (0xFF)' });
    expect(locateVersion(image, { kind: 'string', offset: 0x405, length: 32 }).found).toBe(true);
    expect(locateVersion(Buffer.from('ab cd'), { kind: 'string', offset: 0, length: 8 })).toMatchObject({ found: false, reason: expect.stringMatching(/not a version/) });
  });

  test('matching a pattern: the named group, else the first group, else the match; where it was found', () => {
    expect(locateVersion(image, { kind: 'pattern', pattern: 'FW-(?<version>[0-9.]+)' })).toEqual({ found: true, version: '2.1.0', where: 'pattern /FW-(?<version>[0-9.]+)/ at 0x400' });
    expect(locateVersion(image, { kind: 'pattern', pattern: 'FW-([0-9.]+)' })).toMatchObject({ version: '2.1.0' });
    expect(locateVersion(image, { kind: 'pattern', pattern: 'FW-[0-9.]+' })).toMatchObject({ version: 'FW-2.1.0' });
    expect(locateVersion(image, { kind: 'pattern', pattern: 'APP_VERSION=(\\S+)' })).toMatchObject({ found: false, reason: 'no match in the image' });
  });
});

describe('choosing and spelling a locator', () => {
  test('detection: the rig header, else MCUboot, else none (a string or pattern is never guessed)', () => {
    expect(detectLocator(fx.image('1_0_0').bytes)).toEqual({ kind: 'rig-header', offset: 0x200 });
    expect(detectLocator(signed)).toEqual({ kind: 'mcuboot', offset: 0, format: '{major}.{minor}.{revision}' });
    expect(detectLocator(body)).toEqual({ kind: 'none' });
  });

  test.each([
    ['none', { kind: 'none' }],
    ['rig-header', { kind: 'rig-header', offset: 0x200 }],
    ['rig-header:offset=0x400', { kind: 'rig-header', offset: 0x400 }],
    ['mcuboot', { kind: 'mcuboot', offset: 0, format: '{major}.{minor}.{revision}' }],
    ['mcuboot:offset=0x20000,format={major}_{minor}_{revision}', { kind: 'mcuboot', offset: 0x20000, format: '{major}_{minor}_{revision}' }],
    ['string:offset=0x400,length=16', { kind: 'string', offset: 0x400, length: 16 }],
    ['pattern:VER=([0-9_]+),x', { kind: 'pattern', pattern: 'VER=([0-9_]+),x' }],
  ])('%s', (text, locator) => {
    expect(parseLocator(text)).toEqual(locator);
    expect(parseLocator(formatLocator(locator as VersionLocator))).toEqual(locator);
  });

  test.each([
    ['mcuboots', /unknown kind "mcuboots"/],
    ['string', /offset/],
    ['string:offset=12ab', /offset/],
    ['pattern:', /needs its regular expression/],
    ['pattern:(unclosed', /regular expression/],
    ['mcuboot:format=v1', /template/],
    ['mcuboot:offset', /"offset" is not key=value/],
    ['none:offset=1', /offset/],
  ])('%s is refused, naming what is wrong', (text, why) => {
    const err = (() => {
      try {
        parseLocator(text);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(why);
    expect((err as ConfigError).message).toContain('expected rig-header');
  });

  test('a manifest may spell offsets as hex strings', () => {
    expect(locatorSchema.parse({ kind: 'mcuboot', offset: '0x100' })).toEqual({ kind: 'mcuboot', offset: 0x100, format: '{major}.{minor}.{revision}' });
  });
});
