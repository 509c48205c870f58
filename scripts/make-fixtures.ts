#!/usr/bin/env -S npx tsx
// Writes the firmware fixtures: three STM32 images (1_0_0, 1_1_0, 2_0_0), a VCDIFF delta 1_0_0 → 2_0_0, a
// deliberately corrupted full package, and fixtures/manifest.json. Deterministic: a seeded PRNG and no
// timestamps, so running it twice gives identical bytes and the committed fixtures can be re-checked.
//
// TypeScript run with tsx rather than a .mjs: the image header layout and the delta encoder are defined
// once, in rig/images, and this script builds images with them instead of restating the layout.
//
//   npx tsx scripts/make-fixtures.ts [--out fixtures] [--size 24576] [--load-address 0x08000000] [--seed sota-rig]

import { fileURLToPath, pathToFileURL } from 'node:url';
import { echo, fs, parseArgv, path } from 'zx';
import {
  deltaPackage, deltaPackageEntry, digestOf, fullPackageEntry, Image, IMAGE_HEADER_OFFSET, IMAGE_HEADER_SIZE, imageEntry, imageRef, sha256Hex, writeImageHeader,
} from '../rig/images/index.ts';
import type { ManifestJson } from '../rig/images/index.ts';

export const COMPONENT = 'STM32';
export const DEFAULT_SIZE = 24 * 1024;
export const DEFAULT_LOAD_ADDRESS = 0x0800_0000;
// Top of the 20 KiB SRAM of an STM32F103C8: any address in SRAM serves, the sim only checks the region.
export const INITIAL_SP = 0x2000_5000;
export const DEFAULT_SEED = 'sota-rig';
const MIN_SIZE = 4096;
// The code starts right after the header; handlers are at fixed offsets from there.
const CODE_START = IMAGE_HEADER_OFFSET + IMAGE_HEADER_SIZE;
// 16 Cortex-M core vectors + the 60 interrupts of an STM32F103; the rest up to the header is padding.
const VECTOR_COUNT = 16 + 60;

export interface FixtureOptions {
  out: string;
  size: number;
  loadAddress: number;
  seed: string;
}

// FNV-1a, to turn a readable seed label into a 32-bit PRNG state.
function seedOf(label: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(label, 'utf8')) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  return h;
}

// mulberry32: small, well-known, and the same on every platform (no Math.random, no crypto).
function prng(label: string): () => number {
  let a = seedOf(label);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomBytes(label: string, length: number): Uint8Array {
  const next = prng(label);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const v = next();
    for (let k = 0; k < 4 && i + k < length; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
  }
  return out;
}

interface Vectors {
  initialSp: number;
  resetHandler: number;
}

/** Vector table + header + `code`, with the header filled in last because it covers the rest. */
function buildImage(code: Uint8Array, version: string, loadAddress: number): { bytes: Uint8Array; vectors: Vectors } {
  const bytes = new Uint8Array(CODE_START + code.length);
  const dv = new DataView(bytes.buffer);
  // Thumb bit set: a Cortex-M faults on a vector with bit 0 clear.
  const handler = (offset: number) => ((loadAddress + CODE_START + offset) | 1) >>> 0;
  const resetHandler = handler(0x00);
  const defaultHandler = handler(0x80);
  const core = [INITIAL_SP, resetHandler, handler(0x40), handler(0x44), handler(0x48), handler(0x4c), handler(0x50),
    0, 0, 0, 0, handler(0x54), handler(0x58), 0, handler(0x5c), handler(0x60)];
  for (let i = 0; i < VECTOR_COUNT; i++) dv.setUint32(i * 4, core[i] ?? defaultHandler, true);
  bytes.set(code, CODE_START);
  // Default_Handler is "b ." (0xe7fe), as in every STM32 startup file.
  dv.setUint16(CODE_START + 0x80, 0xe7fe, true);
  writeImageHeader(bytes, { component: COMPONENT, version, loadAddress }, IMAGE_HEADER_OFFSET);
  return { bytes, vectors: { initialSp: INITIAL_SP, resetHandler } };
}

/** Rewrites `length` bytes at `at` with fresh random bytes: a recompiled function. */
function patch(code: Uint8Array, at: number, length: number, label: string): void {
  code.set(randomBytes(label, length), at);
}

function codeFor(opts: FixtureOptions): Record<string, Uint8Array> {
  const codeLength = opts.size - CODE_START;
  const base = randomBytes(`${opts.seed}/code`, codeLength);
  // Offsets into the code, double-word aligned like a linker's sections.
  const at = (fraction: number) => Math.floor((codeLength * fraction) / 8) * 8;

  // 1_1_0: a bug-fix release; three small functions changed, nothing moved.
  const v110 = base.slice();
  for (const [i, f] of [0.2, 0.5, 0.8].entries()) patch(v110, at(f), 48, `${opts.seed}/1_1_0/${i}`);

  // 2_0_0: a feature release; several functions changed, 1 KiB of new code inserted, 256 bytes removed,
  // so everything after the insertion moves (what a delta encoder has to cope with).
  const edited = base.slice();
  for (const [i, f] of [0.1, 0.25, 0.45, 0.6, 0.9].entries()) patch(edited, at(f), 64 + 32 * i, `${opts.seed}/2_0_0/${i}`);
  const insertAt = at(0.35);
  const removeAt = at(0.75);
  const v200 = Buffer.concat([
    edited.subarray(0, insertAt),
    randomBytes(`${opts.seed}/2_0_0/new`, 1024),
    edited.subarray(insertAt, removeAt),
    edited.subarray(removeAt + 256),
  ]);
  return { '1_0_0': base, '1_1_0': v110, '2_0_0': new Uint8Array(v200) };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Generates every fixture into `opts.out`; returns the files written, relative to it. */
export async function makeFixtures(opts: FixtureOptions): Promise<string[]> {
  if (!Number.isInteger(opts.size) || opts.size < MIN_SIZE || opts.size % 8 !== 0) {
    throw new Error(`--size must be a multiple of 8 of at least ${MIN_SIZE} bytes (flash programs in double words); got ${opts.size}`);
  }
  await fs.mkdirp(path.join(opts.out, 'images'));
  await fs.mkdirp(path.join(opts.out, 'packages'));
  const written: string[] = [];
  const write = async (rel: string, bytes: Uint8Array | string) => {
    await fs.writeFile(path.join(opts.out, rel), bytes);
    written.push(rel);
  };

  const manifest: ManifestJson = {
    format: 1,
    generator: `scripts/make-fixtures.ts --size ${opts.size} --load-address ${hex(opts.loadAddress)} --seed ${opts.seed}`,
    component: COMPONENT,
    loadAddress: hex(opts.loadAddress),
    headerOffset: `0x${IMAGE_HEADER_OFFSET.toString(16)}`,
    crcAlgorithm: 'crc-32',
    images: {},
    packages: {},
  };

  const images: Record<string, Image> = {};
  for (const [version, code] of Object.entries(codeFor(opts))) {
    const { bytes, vectors } = buildImage(code, version, opts.loadAddress);
    const file = `images/${COMPONENT}_${version}.bin`;
    await write(file, bytes);
    const image = (images[version] = new Image(bytes, { component: COMPONENT, version }));
    manifest.images[version] = imageEntry(file, image, { initialSp: hex(vectors.initialSp), resetHandler: hex(vectors.resetHandler) });
    manifest.packages[`full_${version}`] = fullPackageEntry(file, image);
  }

  echo(`make-fixtures: encoding delta 1_0_0 → 2_0_0 with xdelta3`);
  // deltaPackage refuses a delta the rig's own decoder cannot turn back into 2_0_0.
  const delta = await deltaPackage(images['1_0_0']!, images['2_0_0']!);
  const deltaFile = `packages/${COMPONENT}_1_0_0_to_2_0_0.vcdiff`;
  await write(deltaFile, delta.bytes);
  manifest.packages['delta_1_0_0_to_2_0_0'] = deltaPackageEntry(deltaFile, delta.bytes, images['1_0_0']!, images['2_0_0']!);

  // Three bytes flipped in the body, header intact: only the download hashes can catch it.
  const v2 = images['2_0_0']!.bytes;
  const corrupt = v2.slice();
  const offsets = [0.3, 0.6, 0.97].map((f) => Math.floor(v2.length * f) | 1);
  for (const o of offsets) corrupt[o]! ^= 0xff;
  const corruptFile = `packages/${COMPONENT}_2_0_0_corrupt.bin`;
  await write(corruptFile, corrupt);
  const d2 = digestOf(v2);
  manifest.packages['corrupt_full_2_0_0'] = {
    file: corruptFile, component: COMPONENT, version: '2_0_0', type: 'full', size: d2.size, md5: d2.md5, crc32: d2.crc,
    sha256: d2.sha256, sourceVersion: null, source: null, target: imageRef(images['2_0_0']!),
    corrupted: {
      description: 'image 2_0_0 with the bytes at `offsets` XORed with `xor`; size/md5/crc32/sha256 are those of the intact 2_0_0',
      offsets, xor: 0xff, fileSha256: sha256Hex(corrupt),
    },
  };

  await write('manifest.json', `${JSON.stringify(manifest, null, 2)}\n`);
  return written;
}

function parseNumber(name: string, value: unknown): number {
  const n = typeof value === 'number' ? value : Number(String(value));
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (decimal or 0x…); got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const argv = parseArgv(process.argv.slice(2), { string: ['out', 'seed', 'load-address', 'size'] });
  const opts: FixtureOptions = {
    out: path.resolve(argv.out ?? path.join(root, 'fixtures')),
    size: parseNumber('size', argv.size ?? DEFAULT_SIZE),
    loadAddress: parseNumber('load-address', argv['load-address'] ?? DEFAULT_LOAD_ADDRESS) >>> 0,
    seed: argv.seed ?? DEFAULT_SEED,
  };
  const files = await makeFixtures(opts);
  echo(`make-fixtures: wrote ${files.length} files to ${opts.out}: ${files.join(', ')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    console.error(`make-fixtures: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
