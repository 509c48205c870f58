// CRC-32 variants behind one table-driven engine. The 10701 event carries a decimal <CRC> whose algorithm
// Quectel does not name (docs/protocol.md §9 item 6), so the rig checks with CRC-32/IEEE by default
// and lets a station name another one from this registry; verifyPackage also reports which registered
// algorithms would have matched, which is how a bench settles the question on real hardware.

import { ConfigError } from '../errors.ts';

/** Rocksoft parameters of a 32-bit CRC (the model the "CRC RevEng" catalogue uses). */
export interface CrcParams {
  readonly name: CrcAlgorithm;
  readonly poly: number;
  readonly init: number;
  /** Input and output reflected together; every CRC-32 in the catalogue we need reflects both or neither. */
  readonly reflected: boolean;
  readonly xorOut: number;
  /** CRC of the ASCII bytes "123456789", from the catalogue; checked by the unit tests. */
  readonly check: number;
  readonly aliases: readonly string[];
  readonly note: string;
}

export const CRC_ALGORITHMS = ['crc-32', 'crc-32/mpeg-2', 'crc-32c', 'crc-32/bzip2', 'crc-32/jamcrc'] as const;
export type CrcAlgorithm = (typeof CRC_ALGORITHMS)[number];

export const DEFAULT_CRC_ALGORITHM: CrcAlgorithm = 'crc-32';

const REGISTRY: Record<CrcAlgorithm, CrcParams> = {
  'crc-32': {
    name: 'crc-32', poly: 0x04c11db7, init: 0xffffffff, reflected: true, xorOut: 0xffffffff, check: 0xcbf43926,
    aliases: ['ieee', 'crc32', 'crc-32/ieee', 'crc-32/iso-hdlc', 'zlib'],
    note: "zlib's crc32, the most likely reading of the cloud's CRC (protocol §3.3, §9 item 6)",
  },
  'crc-32/mpeg-2': {
    name: 'crc-32/mpeg-2', poly: 0x04c11db7, init: 0xffffffff, reflected: false, xorOut: 0, check: 0x0376e6e7,
    aliases: ['mpeg-2', 'mpeg2'],
    note: 'what the STM32 CRC peripheral computes in its reset configuration when fed byte by byte',
  },
  'crc-32c': {
    name: 'crc-32c', poly: 0x1edc6f41, init: 0xffffffff, reflected: true, xorOut: 0xffffffff, check: 0xe3069283,
    aliases: ['crc32c', 'castagnoli', 'crc-32/iscsi'],
    note: 'Castagnoli',
  },
  'crc-32/bzip2': {
    name: 'crc-32/bzip2', poly: 0x04c11db7, init: 0xffffffff, reflected: false, xorOut: 0xffffffff, check: 0xfc891918,
    aliases: ['bzip2', 'crc-32/aal5'],
    note: 'MPEG-2 with the final inversion',
  },
  'crc-32/jamcrc': {
    name: 'crc-32/jamcrc', poly: 0x04c11db7, init: 0xffffffff, reflected: true, xorOut: 0, check: 0x340bc6d9,
    aliases: ['jamcrc'],
    note: 'IEEE without the final inversion',
  },
};

const tables = new Map<CrcAlgorithm, Uint32Array>();

function reflect32(v: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) {
    r = (r << 1) | (v & 1);
    v >>>= 1;
  }
  return r >>> 0;
}

function tableFor(p: CrcParams): Uint32Array {
  let t = tables.get(p.name);
  if (t) return t;
  t = new Uint32Array(256);
  if (p.reflected) {
    const poly = reflect32(p.poly);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
      t[n] = c >>> 0;
    }
  } else {
    for (let n = 0; n < 256; n++) {
      let c = n << 24;
      for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ p.poly : c << 1;
      t[n] = c >>> 0;
    }
  }
  tables.set(p.name, t);
  return t;
}

/** Resolves a name or alias ("ieee", "CRC-32C", "mpeg-2") to its registry entry; ConfigError if unknown. */
export function crcParams(nameOrAlias: string): CrcParams {
  const key = nameOrAlias.trim().toLowerCase();
  for (const p of Object.values(REGISTRY)) {
    if (p.name === key || p.aliases.includes(key)) return p;
  }
  throw new ConfigError(`unknown CRC algorithm "${nameOrAlias}"`, {
    expected: `one of ${CRC_ALGORITHMS.join(', ')} (or an alias: ${Object.values(REGISTRY).flatMap((p) => p.aliases).join(', ')})`,
    seen: JSON.stringify(nameOrAlias),
  });
}

/** An incremental CRC: feed the download block by block, read `value()` at any point. */
export class Crc32 {
  readonly params: CrcParams;
  readonly #table: Uint32Array;
  #reg: number;

  constructor(algorithm: string = DEFAULT_CRC_ALGORITHM) {
    this.params = crcParams(algorithm);
    this.#table = tableFor(this.params);
    this.#reg = this.params.init >>> 0;
  }

  update(bytes: Uint8Array): this {
    const t = this.#table;
    let c = this.#reg;
    if (this.params.reflected) {
      for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    } else {
      for (let i = 0; i < bytes.length; i++) c = t[((c >>> 24) ^ bytes[i]!) & 0xff]! ^ (c << 8);
    }
    this.#reg = c >>> 0;
    return this;
  }

  /** The CRC so far as an unsigned 32-bit number (the form 10701 prints in decimal). */
  value(): number {
    return (this.#reg ^ this.params.xorOut) >>> 0;
  }
}

/** CRC of `bytes` with the named algorithm (CRC-32/IEEE by default), as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array, algorithm: string = DEFAULT_CRC_ALGORITHM): number {
  return new Crc32(algorithm).update(bytes).value();
}

export function listCrcAlgorithms(): readonly CrcParams[] {
  return CRC_ALGORITHMS.map((n) => REGISTRY[n]);
}

/** Every registered algorithm whose CRC of `bytes` equals `value`; how a bench identifies the cloud's CRC. */
export function crcAlgorithmsMatching(bytes: Uint8Array, value: number): CrcAlgorithm[] {
  return CRC_ALGORITHMS.filter((n) => crc32(bytes, n) === value >>> 0);
}

export function formatCrc(value: number): string {
  return `${value >>> 0} (0x${(value >>> 0).toString(16).padStart(8, '0')})`;
}
