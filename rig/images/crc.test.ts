import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../errors.ts';
import { Crc32, crc32, crcAlgorithmsMatching, crcParams, formatCrc, listCrcAlgorithms } from './crc.ts';

const check = new TextEncoder().encode('123456789');

describe('CRC-32 registry', () => {
  test.each([
    ['crc-32', 0xcbf43926],
    ['crc-32/mpeg-2', 0x0376e6e7],
    ['crc-32c', 0xe3069283],
    ['crc-32/bzip2', 0xfc891918],
    ['crc-32/jamcrc', 0x340bc6d9],
  ])('%s of "123456789" is the catalogue check value', (name, value) => {
    expect(crc32(check, name)).toBe(value);
  });

  test('every registered algorithm reproduces its own catalogue check value', () => {
    for (const p of listCrcAlgorithms()) expect(crc32(check, p.name), p.name).toBe(p.check);
  });

  test('the default is CRC-32/IEEE and agrees with zlib on arbitrary data', () => {
    const data = new Uint8Array(70_001);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    expect(crc32(data)).toBe(zlibCrc32(data));
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  test('aliases resolve, case-insensitively, to the registry entry', () => {
    expect(crcParams('IEEE').name).toBe('crc-32');
    expect(crcParams('Castagnoli').name).toBe('crc-32c');
    expect(crcParams('mpeg-2').name).toBe('crc-32/mpeg-2');
  });

  test('an unknown algorithm is a ConfigError listing the known ones', () => {
    const err = (() => { try { crcParams('crc-16'); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).seen).toBe('"crc-16"');
    expect((err as ConfigError).expected).toContain('crc-32/mpeg-2');
  });

  test('incremental updates over uneven blocks equal the one-shot CRC, for reflected and plain algorithms', () => {
    const data = new Uint8Array(5000).map((_, i) => (i * 7 + 3) & 0xff);
    for (const name of ['crc-32', 'crc-32/mpeg-2', 'crc-32c']) {
      const c = new Crc32(name);
      for (let at = 0; at < data.length; at += 1023) c.update(data.subarray(at, at + 1023));
      expect(c.value(), name).toBe(crc32(data, name));
    }
  });

  test('crcAlgorithmsMatching names the algorithm behind a value', () => {
    expect(crcAlgorithmsMatching(check, 0x0376e6e7)).toEqual(['crc-32/mpeg-2']);
    expect(crcAlgorithmsMatching(check, 0x12345678)).toEqual([]);
  });

  test('formatCrc shows the decimal form 10701 uses and the hex', () => {
    expect(formatCrc(4022793929)).toBe('4022793929 (0xefc6f6c9)');
  });
});
