import { beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, FirmwareError } from '../errors.ts';
import { crc32 } from './crc.ts';
import { digestOf } from './digest.ts';
import { loadManifest, type FirmwareSet } from './manifest.ts';
import { assertPackage, describeVerification, verifyPackage } from './verify.ts';

let fx: FirmwareSet;
beforeAll(async () => {
  fx = await loadManifest();
});

describe('verifyPackage', () => {
  test('an intact package passes every check, sha256 included', () => {
    const pkg = fx.package('full_2_0_0');
    const v = verifyPackage(pkg.bytes, pkg.declared);
    expect(v).toMatchObject({ ok: true, crcAlgorithm: 'crc-32', checked: ['size', 'md5', 'crc', 'sha256'], mismatches: [] });
    expect(v.seen).toEqual(digestOf(pkg.bytes));
  });

  test('the corrupted package fails md5, crc and sha256 but not size, each with expected and seen', () => {
    const corrupt = fx.package('corrupt_full_2_0_0');
    const intact = fx.image('2_0_0');
    const v = corrupt.verify();
    expect(v.ok).toBe(false);
    expect(v.mismatches.map((m) => m.field)).toEqual(['md5', 'crc', 'sha256']);
    expect(v.mismatches).toEqual([
      { field: 'md5', expected: intact.md5, seen: corrupt.md5 },
      { field: 'crc', expected: intact.crc32, seen: corrupt.crc32, matchingCrcAlgorithms: [] },
      { field: 'sha256', expected: intact.sha256, seen: corrupt.sha256 },
    ]);
    expect(corrupt.md5).not.toBe(intact.md5);
    expect(describeVerification(v)).toContain(`md5 expected ${intact.md5} seen ${corrupt.md5}`);
  });

  test('without a sha256 (SHA-256 mode off) only size, md5 and crc are checked', () => {
    const corrupt = fx.package('corrupt_full_2_0_0');
    const { sha256: _omit, ...announced } = corrupt.declared;
    const v = verifyPackage(corrupt.bytes, announced);
    expect(v.checked).toEqual(['size', 'md5', 'crc']);
    expect(v.mismatches.map((m) => m.field)).toEqual(['md5', 'crc']);
  });

  test('a short download is a size mismatch first', () => {
    const pkg = fx.package('delta_1_0_0_to_2_0_0');
    const v = verifyPackage(pkg.bytes.subarray(0, pkg.size - 1), pkg.declared);
    expect(v.mismatches[0]).toEqual({ field: 'size', expected: pkg.size, seen: pkg.size - 1 });
  });

  test('hex from the cloud is compared case-insensitively', () => {
    const pkg = fx.package('full_1_0_0');
    const v = verifyPackage(pkg.bytes, { ...pkg.declared, md5: pkg.declared.md5.toUpperCase(), sha256: pkg.declared.sha256.toUpperCase() });
    expect(v.ok).toBe(true);
  });

  test('a CRC announced in another algorithm fails under the default and names the algorithm that matches', () => {
    const pkg = fx.package('full_1_1_0');
    const announced = { ...pkg.declared, crc: crc32(pkg.bytes, 'crc-32/mpeg-2') };
    const v = verifyPackage(pkg.bytes, announced);
    expect(v.mismatches).toEqual([
      { field: 'crc', expected: announced.crc, seen: pkg.crc32, matchingCrcAlgorithms: ['crc-32/mpeg-2'] },
    ]);
    expect(describeVerification(v)).toContain('the expected value is the crc-32/mpeg-2 of these bytes');
    expect(verifyPackage(pkg.bytes, announced, { crcAlgorithm: 'mpeg-2' })).toMatchObject({ ok: true, crcAlgorithm: 'crc-32/mpeg-2' });
  });

  test('the seed example of 10701 would be checked as a 32-bit unsigned CRC', () => {
    // 4022793929 is the decimal CRC from the Quectel example; it must survive as an unsigned number.
    const bytes = new TextEncoder().encode('not the seed file');
    const v = verifyPackage(bytes, { size: bytes.length, md5: '95cbdeb4faeda4322ad9b65eb731ed2b', crc: 4022793929 });
    expect(v.mismatches.find((m) => m.field === 'crc')?.expected).toBe(4022793929);
  });

  test('assertPackage throws a FirmwareError naming every mismatch; an unknown algorithm is a ConfigError', () => {
    const corrupt = fx.package('corrupt_full_2_0_0');
    let err: unknown;
    try {
      assertPackage(corrupt.bytes, corrupt.declared, { what: 'download of corrupt_full_2_0_0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FirmwareError);
    const fe = err as FirmwareError;
    expect(fe.summary).toBe('download of corrupt_full_2_0_0 does not match its announced digest (md5, crc, sha256)');
    expect(fe.expected).toContain(`sha256 ${corrupt.declared.sha256}`);
    expect(fe.seen).toContain(`sha256 ${corrupt.sha256}`);
    expect(assertPackage(fx.package('full_2_0_0').bytes, corrupt.declared).ok).toBe(true);
    expect(() => verifyPackage(corrupt.bytes, corrupt.declared, { crcAlgorithm: 'adler32' })).toThrow(ConfigError);
  });
});
