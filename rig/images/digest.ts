import { createHash } from 'node:crypto';
import { crc32, DEFAULT_CRC_ALGORITHM } from './crc.ts';

/** What the cloud announces for a package file in 10701 (size, md5, crc) and, in SHA-256 mode, its sha256. */
export interface PackageDigest {
  size: number;
  /** 32 lowercase hex characters. */
  md5: string;
  /** Unsigned 32-bit CRC, compared as a number (10701 prints it in decimal). */
  crc: number;
  /** 64 lowercase hex characters; absent when the module's SHA-256 mode is off. */
  sha256?: string;
}

export function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The full digest of `bytes` as the cloud would announce it, with the CRC in the given algorithm. */
export function digestOf(bytes: Uint8Array, crcAlgorithm: string = DEFAULT_CRC_ALGORITHM): Required<PackageDigest> {
  return { size: bytes.length, md5: md5Hex(bytes), crc: crc32(bytes, crcAlgorithm), sha256: sha256Hex(bytes) };
}

/** Lazily computed, cached hashes of an immutable byte string (images and packages share it). */
export class Hashes {
  readonly #bytes: Uint8Array;
  #md5: string | undefined;
  #sha256: string | undefined;
  readonly #crc = new Map<string, number>();

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get md5(): string {
    return (this.#md5 ??= md5Hex(this.#bytes));
  }

  get sha256(): string {
    return (this.#sha256 ??= sha256Hex(this.#bytes));
  }

  crc(algorithm: string = DEFAULT_CRC_ALGORITHM): number {
    let v = this.#crc.get(algorithm);
    if (v === undefined) {
      v = crc32(this.#bytes, algorithm);
      this.#crc.set(algorithm, v);
    }
    return v;
  }

  digest(crcAlgorithm: string = DEFAULT_CRC_ALGORITHM): Required<PackageDigest> {
    return { size: this.#bytes.length, md5: this.md5, crc: this.crc(crcAlgorithm), sha256: this.sha256 };
  }
}

/** An immutable byte string with its size and hashes (images and packages are both this). */
export abstract class HashedBytes {
  readonly bytes: Uint8Array;
  readonly #hashes: Hashes;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#hashes = new Hashes(bytes);
  }

  get size(): number {
    return this.bytes.length;
  }
  get md5(): string {
    return this.#hashes.md5;
  }
  get sha256(): string {
    return this.#hashes.sha256;
  }
  /** CRC-32/IEEE. */
  get crc32(): number {
    return this.#hashes.crc(DEFAULT_CRC_ALGORITHM);
  }
  crc(algorithm: string): number {
    return this.#hashes.crc(algorithm);
  }
  digest(crcAlgorithm: string = DEFAULT_CRC_ALGORITHM): Required<PackageDigest> {
    return this.#hashes.digest(crcAlgorithm);
  }
}
