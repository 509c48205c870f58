// A manifest lists a set of images and packages for one MCU component with their sizes and hashes, file
// paths relative to the manifest, and how the component's images name their version (a locator,
// locator.ts). fixtures/manifest.json (written by scripts/make-fixtures.ts) is one; `rig image add` writes
// one for real firmware (release.ts). Loading checks every file against it, so a stale or hand-edited
// fixture fails here and not in the middle of an upgrade.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, FirmwareError } from '../errors.ts';
import { Hashes } from './digest.ts';
import { IMAGE_HEADER_OFFSET } from './header.ts';
import { Image } from './image.ts';
import { locateVersion, locatorSchema, type VersionLocator } from './locator.ts';
import { Package } from './package.ts';

export const MANIFEST_FORMAT = 1;

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{1,8}$/, 'a hex number like 0x08000000');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters');
const md5 = z.string().regex(/^[0-9a-f]{32}$/, '32 lowercase hex characters');
const name = z.string().regex(/^[A-Za-z0-9_.-]+$/);
const u32 = z.number().int().min(0).max(0xffffffff);

const fileDigest = {
  file: z.string().min(1),
  size: z.number().int().nonnegative(),
  md5,
  crc32: u32,
  sha256,
};
const imageRef = z.object({ version: name, size: z.number().int().nonnegative(), sha256 });

const imageEntry = z.object({
  ...fileDigest,
  component: name,
  version: name,
  /** Vector table entries 0 and 1, for a reader that wants to check where the image boots (fixtures). */
  initialSp: hex32.optional(),
  resetHandler: hex32.optional(),
  /** Where the image came from (`rig image add`), for the person reading the manifest. */
  origin: z.string().optional(),
  /** Where this image is linked, when not at the manifest's loadAddress (a bootloader in a dut-mode set). */
  loadAddress: hex32.optional(),
  /** What the image is in an A/B set: the bootloader at the flash base, or an application for slot A. */
  role: z.enum(['bootloader', 'application']).optional(),
  /** Planted defects its descriptor selects (docs/virtual-mcu.md §6); [] or absent: the reference behaviour. */
  defects: z.array(z.string().regex(/^[a-z0-9-]+$/)).optional(),
});

const packageEntry = z.object({
  ...fileDigest,
  component: name,
  version: name,
  type: z.enum(['full', 'delta']),
  sourceVersion: name.nullable(),
  source: imageRef.nullable(),
  target: imageRef,
  /** Present on packages made wrong on purpose: the digest fields above are the intact file's. */
  corrupted: z
    .object({ description: z.string(), offsets: z.array(z.number().int().nonnegative()), xor: z.number().int().min(1).max(255), fileSha256: sha256 })
    .optional(),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  generator: z.string(),
  component: name,
  /** Address the images are linked for; the rig may program them at another slot (station config). */
  loadAddress: hex32,
  /** Offset of the rig's image header (rig/images/header.ts) in every image; only with the rig's header. */
  headerOffset: hex32.optional(),
  /** How the images name their version (locator.ts); default the rig's header at headerOffset. */
  locator: locatorSchema.optional(),
  /** The CRC algorithm of every crc32 field. */
  crcAlgorithm: z.literal('crc-32'),
  images: z.record(name, imageEntry),
  packages: z.record(name, packageEntry),
});

export type ManifestJson = z.input<typeof manifestSchema>;
export type ImageEntry = z.infer<typeof imageEntry>;
export type PackageEntry = z.infer<typeof packageEntry>;

const parseHex = (s: string) => Number.parseInt(s, 16) >>> 0;

export class FirmwareSet {
  readonly manifestPath: string;
  readonly component: string;
  readonly loadAddress: number;
  readonly headerOffset: number;
  /** How this component's images name their version. */
  readonly locator: VersionLocator;
  readonly images: ReadonlyMap<string, Image>;
  readonly packages: ReadonlyMap<string, Package>;
  /** The manifest entries as written, for a report's parameters. */
  readonly entries: { images: Record<string, ImageEntry>; packages: Record<string, PackageEntry> };

  constructor(init: Omit<FirmwareSet, 'image' | 'package' | 'imageByHash'>) {
    this.manifestPath = init.manifestPath;
    this.component = init.component;
    this.loadAddress = init.loadAddress;
    this.headerOffset = init.headerOffset;
    this.locator = init.locator;
    this.images = init.images;
    this.packages = init.packages;
    this.entries = init.entries;
  }

  image(version: string): Image {
    const img = this.images.get(version);
    if (!img) {
      throw new ConfigError(`no image ${version} in ${this.manifestPath}`, {
        expected: `one of ${[...this.images.keys()].join(', ')}`,
        seen: JSON.stringify(version),
      });
    }
    return img;
  }

  package(name: string): Package {
    const pkg = this.packages.get(name);
    if (!pkg) {
      throw new ConfigError(`no package ${name} in ${this.manifestPath}`, {
        expected: `one of ${[...this.packages.keys()].join(', ')}`,
        seen: JSON.stringify(name),
      });
    }
    return pkg;
  }

  /** The known image with these exact bytes' SHA-256, e.g. to name what a read-back holds. */
  imageByHash(sha256: string): Image | undefined {
    return [...this.images.values()].find((i) => i.sha256 === sha256);
  }
}

function mismatch(file: string, what: string, expected: unknown, seen: unknown): FirmwareError {
  return new FirmwareError(`${file} does not match the manifest (${what})`, {
    expected: `${what} ${String(expected)}`,
    seen: `${what} ${String(seen)}`,
  });
}

function checkDigest(file: string, bytes: Uint8Array, e: { size: number; md5: string; crc32: number; sha256: string }): void {
  const h = new Hashes(bytes);
  if (bytes.length !== e.size) throw mismatch(file, 'size', e.size, bytes.length);
  if (h.sha256 !== e.sha256) throw mismatch(file, 'sha256', e.sha256, h.sha256);
  if (h.md5 !== e.md5) throw mismatch(file, 'md5', e.md5, h.md5);
  if (h.crc() !== e.crc32) throw mismatch(file, 'crc32', e.crc32, h.crc());
}

/**
 * The manifest the rig works with when none is named: $RIG_MANIFEST (a user's releases, `rig image add`),
 * else the project's fixtures/manifest.json.
 */
export function currentManifestPath(): string {
  const env = process.env.RIG_MANIFEST;
  return env ? path.resolve(env) : defaultManifestPath();
}

/** Reads a manifest and every file it names; ConfigError for a malformed manifest, FirmwareError for a file that disagrees. */
export async function loadManifest(manifestPath: string = currentManifestPath()): Promise<FirmwareSet> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`cannot read firmware manifest ${manifestPath}`, {
      expected: 'a JSON manifest (make one with scripts/make-fixtures.ts)',
      seen: cause instanceof Error ? cause.message : String(cause),
      cause,
    });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`firmware manifest ${manifestPath} is malformed`, {
      expected: `manifest format ${MANIFEST_FORMAT}`,
      seen: z.prettifyError(parsed.error),
    });
  }
  const m = parsed.data;
  const dir = path.dirname(manifestPath);
  const headerOffset = m.headerOffset === undefined ? IMAGE_HEADER_OFFSET : parseHex(m.headerOffset);
  const locator: VersionLocator = (m.locator as VersionLocator | undefined) ?? { kind: 'rig-header', offset: headerOffset };
  const read = async (file: string) => new Uint8Array(await readFile(path.resolve(dir, file)));

  const images = new Map<string, Image>();
  for (const [key, e] of Object.entries(m.images)) {
    const bytes = await read(e.file);
    checkDigest(e.file, bytes, e);
    // The key is the version, or the version and a variant name (`2_0_0-never-confirms`): several images of one
    // version can then sit in one set, told apart by their bytes.
    if (key !== e.version && !key.startsWith(`${e.version}-`)) throw mismatch(e.file, 'version', `${key}/${e.version}`, e.version);
    // The bytes are the image (their digest was just checked); what the image says of itself, if anything,
    // must agree (a release added with its version given may carry no version the locator finds).
    const found = locateVersion(bytes, locator);
    if (found.found) {
      if (found.intact === false) throw mismatch(e.file, found.where, 'intact', found.damage);
      if (found.version !== e.version) throw mismatch(e.file, 'version', e.version, `${found.version} (${found.where})`);
      if (found.component !== undefined && found.component !== e.component) throw mismatch(e.file, 'component', e.component, `${found.component} (${found.where})`);
    }
    images.set(key, new Image(bytes, e));
  }

  const packages = new Map<string, Package>();
  for (const [key, e] of Object.entries(m.packages)) {
    const bytes = await read(e.file);
    if (e.corrupted) {
      const h = new Hashes(bytes);
      if (h.sha256 !== e.corrupted.fileSha256) throw mismatch(e.file, 'corrupted file sha256', e.corrupted.fileSha256, h.sha256);
    } else {
      checkDigest(e.file, bytes, e);
    }
    packages.set(key, new Package(bytes, {
      name: key,
      component: e.component,
      version: e.version,
      type: e.type,
      sourceVersion: e.sourceVersion ?? undefined,
      declared: { size: e.size, md5: e.md5, crc: e.crc32, sha256: e.sha256 },
      source: e.source ?? undefined,
      target: e.target,
    }));
  }

  return new FirmwareSet({
    manifestPath,
    component: m.component,
    loadAddress: parseHex(m.loadAddress),
    headerOffset,
    locator,
    images,
    packages,
    entries: { images: m.images, packages: m.packages },
  });
}

/**
 * fixtures/manifest.json of this checkout, found by walking up from this module, so the same code finds
 * it from rig/images (tsx, vitest) and from dist/rig/images (the built CLI).
 */
export function defaultManifestPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'fixtures', 'manifest.json');
    if (existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) {
      throw new ConfigError('fixtures/manifest.json not found above rig/images', {
        expected: 'a checkout with fixtures/ (scripts/make-fixtures.ts writes it)',
        seen: `nothing up to ${dir}`,
      });
    }
    dir = up;
  }
}
