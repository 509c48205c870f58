#!/usr/bin/env -S npx tsx
// Writes the firmware fixtures: three STM32 images (1_0_0, 1_1_0, 2_0_0), a VCDIFF delta 1_0_0 → 2_0_0, a
// deliberately corrupted full package, and fixtures/manifest.json; and for dut mode on the virtual MCU
// (docs/virtual-mcu.md), fixtures/mcu/: the virtual bootloader and its unsafe-swap variant, the same three
// versions linked for slot A, a delta between them, one image per planted application defect, and
// fixtures/mcu/manifest.json. Deterministic: a seeded PRNG and no timestamps, so running it twice gives
// identical bytes and the committed fixtures can be re-checked.
//
// TypeScript run with tsx rather than a .mjs: the image header layout and the delta encoder are defined
// once, in rig/images, and this script builds images with them instead of restating the layout.
//
//   npx tsx scripts/make-fixtures.ts [--out fixtures] [--size 24576] [--load-address 0x08000000] [--seed sota-rig]

import { fileURLToPath, pathToFileURL } from 'node:url';
import { echo, fs, parseArgv, path } from 'zx';
import {
  applyDelta, deltaPackage, deltaPackageEntry, digestOf, encodeDelta, fullPackageEntry, Image, IMAGE_HEADER_OFFSET, IMAGE_HEADER_SIZE, imageEntry, imageRef, sha256Hex, writeImageHeader,
} from '../rig/images/index.ts';
import type { ManifestJson } from '../rig/images/index.ts';
// The descriptor is the virtual MCU's format (docs/virtual-mcu.md §3): written by the model's own encoder.
import { Defect, encodeDescriptor, namesOf } from '../sim/mcu/image.ts';

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

interface BuildOptions {
  component?: string;
  /** A virtual-MCU descriptor at 0x240, right after the header; the code then starts after it. */
  descriptor?: Uint8Array;
}

/** Vector table + header (+ descriptor) + `code`, with the header filled in last because it covers the rest. */
function buildImage(code: Uint8Array, version: string, loadAddress: number, o: BuildOptions = {}): { bytes: Uint8Array; vectors: Vectors } {
  const codeStart = CODE_START + (o.descriptor?.length ?? 0);
  const bytes = new Uint8Array(codeStart + code.length);
  const dv = new DataView(bytes.buffer);
  // Thumb bit set: a Cortex-M faults on a vector with bit 0 clear.
  const handler = (offset: number) => ((loadAddress + codeStart + offset) | 1) >>> 0;
  const resetHandler = handler(0x00);
  const defaultHandler = handler(0x80);
  const core = [INITIAL_SP, resetHandler, handler(0x40), handler(0x44), handler(0x48), handler(0x4c), handler(0x50),
    0, 0, 0, 0, handler(0x54), handler(0x58), 0, handler(0x5c), handler(0x60)];
  for (let i = 0; i < VECTOR_COUNT; i++) dv.setUint32(i * 4, core[i] ?? defaultHandler, true);
  if (o.descriptor) bytes.set(o.descriptor, CODE_START);
  bytes.set(code, codeStart);
  // Default_Handler is "b ." (0xe7fe), as in every STM32 startup file.
  dv.setUint16(codeStart + 0x80, 0xe7fe, true);
  writeImageHeader(bytes, { component: o.component ?? COMPONENT, version, loadAddress }, IMAGE_HEADER_OFFSET);
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

// fixtures/mcu: small images (a dut-mode upgrade on the virtual station downloads and swaps them in seconds).
export const MCU_DIR = 'mcu';
export const MCU_IMAGE_SIZE = 8 * 1024;
export const SLOT_A = 0x0802_0000;
export const BOOTLOADER_ADDRESS = 0x0800_0000;
export const BOOTLOADER_VERSION = 'vbl-1.0';

/**
 * One image per planted application defect. A defect of the download (skip-md5, wrong-offset, no-restart,
 * ignores-10706) is in the client that runs the upgrade, so it rides on 1_0_0, the image a plan upgrades
 * from; a defect of the new image (never-confirms, crash-at-boot, wrong-version) rides on 2_0_0.
 */
export const APP_DEFECTS: readonly { name: string; base: '1_0_0' | '2_0_0'; bit: number; params?: number[] }[] = [
  { name: 'skip-md5', base: '1_0_0', bit: Defect.skipMd5 },
  { name: 'wrong-offset', base: '1_0_0', bit: Defect.wrongOffset, params: [4] },
  { name: 'no-restart', base: '1_0_0', bit: Defect.noRestart },
  { name: 'ignores-10706', base: '1_0_0', bit: Defect.ignores10706 },
  { name: 'never-confirms', base: '2_0_0', bit: Defect.neverConfirms },
  { name: 'crash-at-boot', base: '2_0_0', bit: Defect.crashAtBoot },
  { name: 'wrong-version', base: '2_0_0', bit: Defect.wrongVersion },
];

type Entry = ManifestJson['images'][string];

async function makeMcuFixtures(opts: FixtureOptions, write: (rel: string, bytes: Uint8Array | string) => Promise<void>): Promise<void> {
  await fs.mkdirp(path.join(opts.out, MCU_DIR));
  const manifest: ManifestJson = {
    format: 1,
    generator: `scripts/make-fixtures.ts --seed ${opts.seed} (fixtures/mcu: ${MCU_IMAGE_SIZE}-byte images for slot A ${hex(SLOT_A)}, the virtual bootloader at ${hex(BOOTLOADER_ADDRESS)})`,
    component: COMPONENT,
    loadAddress: hex(SLOT_A),
    headerOffset: `0x${IMAGE_HEADER_OFFSET.toString(16)}`,
    crcAlgorithm: 'crc-32',
    images: {},
    packages: {},
  };
  const add = async (key: string, built: { bytes: Uint8Array; vectors: Vectors }, e: Pick<Entry, 'component' | 'version' | 'role' | 'defects'>, loadAddress: number) => {
    const file = `${e.component}_${key}.bin`;
    await write(`${MCU_DIR}/${file}`, built.bytes);
    const d = digestOf(built.bytes);
    manifest.images[key] = {
      file, ...e, size: d.size, md5: d.md5, crc32: d.crc, sha256: d.sha256,
      initialSp: hex(built.vectors.initialSp), resetHandler: hex(built.vectors.resetHandler),
      ...(loadAddress === SLOT_A ? {} : { loadAddress: hex(loadAddress) }),
    };
    if (e.role === 'application') {
      manifest.packages[`full_${key}`] = {
        file, component: e.component, version: e.version, type: 'full', size: d.size, md5: d.md5, crc32: d.crc, sha256: d.sha256,
        sourceVersion: null, source: null, target: { version: e.version, size: d.size, sha256: d.sha256 },
      };
    }
    return built.bytes;
  };

  // The bootloader: its code is never executed (the model is sim/mcu); its descriptor says what it is.
  const bootCode = randomBytes(`${opts.seed}/vbl`, MCU_IMAGE_SIZE - CODE_START - 32);
  for (const unsafe of [false, true]) {
    const version = unsafe ? `${BOOTLOADER_VERSION}-unsafe` : BOOTLOADER_VERSION;
    const descriptor = encodeDescriptor({ kind: 1, defects: unsafe ? Defect.unsafeSwap : 0 });
    await add(version, buildImage(bootCode, version, BOOTLOADER_ADDRESS, { component: 'BOOT', descriptor }), {
      component: 'BOOT', version, role: 'bootloader', defects: namesOf(unsafe ? Defect.unsafeSwap : 0),
    }, BOOTLOADER_ADDRESS);
  }

  const code = codeFor({ ...opts, size: MCU_IMAGE_SIZE });
  const apps: Record<string, Uint8Array> = {};
  for (const [version, body] of Object.entries(code)) {
    apps[version] = await add(version, buildImage(body, version, SLOT_A), { component: COMPONENT, version, role: 'application', defects: [] }, SLOT_A);
  }
  for (const d of APP_DEFECTS) {
    const descriptor = encodeDescriptor({ kind: 2, defects: d.bit, params: d.params ?? [] });
    await add(`${d.base}-${d.name}`, buildImage(code[d.base]!, d.base, SLOT_A, { descriptor }), {
      component: COMPONENT, version: d.base, role: 'application', defects: [d.name],
    }, SLOT_A);
  }

  const ref = (version: string) => ({ version, size: apps[version]!.length, sha256: sha256Hex(apps[version]!) });
  const delta = await encodeDelta(apps['1_0_0']!, apps['2_0_0']!);
  applyDelta(delta, apps['1_0_0']!, { source: ref('1_0_0'), target: ref('2_0_0') });
  const deltaFile = `${COMPONENT}_1_0_0_to_2_0_0.vcdiff`;
  await write(`${MCU_DIR}/${deltaFile}`, delta);
  const dd = digestOf(delta);
  manifest.packages['delta_1_0_0_to_2_0_0'] = {
    file: deltaFile, component: COMPONENT, version: '2_0_0', type: 'delta', size: dd.size, md5: dd.md5, crc32: dd.crc,
    sha256: dd.sha256, sourceVersion: '1_0_0', source: ref('1_0_0'), target: ref('2_0_0'),
  };
  await write(`${MCU_DIR}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
}

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
  echo(`make-fixtures: virtual MCU images, ${APP_DEFECTS.length} defect images and a delta in ${MCU_DIR}/`);
  await makeMcuFixtures(opts, write);
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
