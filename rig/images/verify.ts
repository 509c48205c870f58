// The download check the proxy flow runs before AT+QIOTUPDATE=3: the bytes read from the module against
// what 10701 announced. It returns every mismatch instead of stopping at the first, because "md5 and crc
// wrong, size right" (corrupted bytes) and "size wrong" (a short read) point at different faults.

import { FirmwareError } from '../errors.ts';
import { crcAlgorithmsMatching, crcParams, DEFAULT_CRC_ALGORITHM, formatCrc, type CrcAlgorithm } from './crc.ts';
import { Hashes, type PackageDigest } from './digest.ts';

export type DigestField = 'size' | 'md5' | 'crc' | 'sha256';

export interface DigestMismatch {
  field: DigestField;
  expected: string | number;
  seen: string | number;
  /** For a CRC mismatch: the registered algorithms under which the bytes give the expected value. */
  matchingCrcAlgorithms?: CrcAlgorithm[];
}

export interface PackageVerification {
  ok: boolean;
  crcAlgorithm: CrcAlgorithm;
  /** Which fields were compared (sha256 only when one was expected). */
  checked: DigestField[];
  mismatches: DigestMismatch[];
  seen: Required<PackageDigest>;
}

export interface VerifyOptions {
  /** Name or alias from the CRC registry; CRC-32/IEEE when omitted. */
  crcAlgorithm?: string;
}

export function verifyPackage(bytes: Uint8Array, expected: PackageDigest, opts: VerifyOptions = {}): PackageVerification {
  const crcAlgorithm = crcParams(opts.crcAlgorithm ?? DEFAULT_CRC_ALGORITHM).name;
  const seen = new Hashes(bytes).digest(crcAlgorithm);
  const mismatches: DigestMismatch[] = [];
  const checked: DigestField[] = ['size', 'md5', 'crc'];
  if (seen.size !== expected.size) mismatches.push({ field: 'size', expected: expected.size, seen: seen.size });
  if (seen.md5 !== expected.md5.toLowerCase()) mismatches.push({ field: 'md5', expected: expected.md5.toLowerCase(), seen: seen.md5 });
  if (seen.crc !== expected.crc >>> 0) {
    const matching = crcAlgorithmsMatching(bytes, expected.crc);
    mismatches.push({ field: 'crc', expected: expected.crc >>> 0, seen: seen.crc, matchingCrcAlgorithms: matching });
  }
  if (expected.sha256 !== undefined) {
    checked.push('sha256');
    if (seen.sha256 !== expected.sha256.toLowerCase()) {
      mismatches.push({ field: 'sha256', expected: expected.sha256.toLowerCase(), seen: seen.sha256 });
    }
  }
  return { ok: mismatches.length === 0, crcAlgorithm, checked, mismatches, seen };
}

function show(m: DigestMismatch, which: 'expected' | 'seen'): string {
  const v = m[which];
  return m.field === 'crc' && typeof v === 'number' ? formatCrc(v) : String(v);
}

function crcHint(m: DigestMismatch): string {
  return m.matchingCrcAlgorithms && m.matchingCrcAlgorithms.length > 0
    ? ` — the expected value is the ${m.matchingCrcAlgorithms.join('/')} of these bytes`
    : '';
}

/** "md5 expected … seen …; crc (crc-32) expected … seen …" — empty when ok. */
export function describeVerification(v: PackageVerification): string {
  return v.mismatches
    .map((m) => {
      const name = m.field === 'crc' ? `crc (${v.crcAlgorithm})` : m.field;
      return `${name} expected ${show(m, 'expected')} seen ${show(m, 'seen')}${crcHint(m)}`;
    })
    .join('; ');
}

/** verifyPackage, throwing a FirmwareError that lists every mismatch. */
export function assertPackage(bytes: Uint8Array, expected: PackageDigest, opts: VerifyOptions & { what?: string } = {}): PackageVerification {
  const v = verifyPackage(bytes, expected, opts);
  if (!v.ok) {
    throw new FirmwareError(`${opts.what ?? 'package'} does not match its announced digest (${v.mismatches.map((m) => m.field).join(', ')})`, {
      expected: v.mismatches.map((m) => `${m.field} ${show(m, 'expected')}`).join(', '),
      seen: v.mismatches.map((m) => `${m.field} ${show(m, 'seen')}${crcHint(m)}`).join(', '),
    });
  }
  return v;
}
