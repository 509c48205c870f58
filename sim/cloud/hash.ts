// Hashes the Developer Center computes for a package. The CRC algorithm behind the decimal <CRC> of 10701 is
// not documented (docs/protocol.md §9.6); CRC-32 (IEEE 802.3, as zlib) is the likely reading and the
// default, the other common 32-bit variant is selectable.
import { createHash } from 'node:crypto';

export type CrcAlgorithm = 'crc32' | 'crc32-mpeg2';
export const crcAlgorithms: readonly CrcAlgorithm[] = ['crc32', 'crc32-mpeg2'];

const reflectedTable = new Uint32Array(256);
const normalTable = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let r = i;
  for (let k = 0; k < 8; k++) r = r & 1 ? 0xedb88320 ^ (r >>> 1) : r >>> 1;
  reflectedTable[i] = r >>> 0;
  let n = i << 24;
  for (let k = 0; k < 8; k++) n = n & 0x80000000 ? (n << 1) ^ 0x04c11db7 : n << 1;
  normalTable[i] = n >>> 0;
}

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = reflectedTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function crc32Mpeg2(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = (normalTable[((c >>> 24) ^ b) & 0xff]! ^ (c << 8)) >>> 0;
  return c >>> 0;
}

export function crc(algorithm: CrcAlgorithm, data: Uint8Array): number {
  return algorithm === 'crc32' ? crc32(data) : crc32Mpeg2(data);
}

export function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The same CRCs fed in pieces, as firmware computes them over a download block by block. */
export class CrcStream {
  private c = 0xffffffff;
  constructor(readonly algorithm: CrcAlgorithm) {}

  update(data: Uint8Array): this {
    let c = this.c;
    if (this.algorithm === 'crc32') for (const b of data) c = reflectedTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    else for (const b of data) c = (normalTable[((c >>> 24) ^ b) & 0xff]! ^ (c << 8)) >>> 0;
    this.c = c >>> 0;
    return this;
  }

  value(): number {
    return this.algorithm === 'crc32' ? (this.c ^ 0xffffffff) >>> 0 : this.c >>> 0;
  }
}
