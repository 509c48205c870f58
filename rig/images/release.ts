// Releases of one MCU component as the rig keeps them: a manifest (manifest.ts) that `rig image add` grows
// one release at a time — the image, its full package, and a VCDIFF delta from every earlier release, the
// way Developer Center would be given them — and a directory of release files that `qualify --releases`
// reads when it holds no manifest.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, FirmwareError } from '../errors.ts';
import { applyDelta, encodeDelta, type ImageRef } from './delta.ts';
import { digestOf } from './digest.ts';
import { identifyRelease, type ReleaseIdentity } from './identify.ts';
import type { Image } from './image.ts';
import { FirmwareSet, loadManifest, MANIFEST_FORMAT, type ImageEntry, type ManifestJson, type PackageEntry } from './manifest.ts';
import { detectLocator, formatLocator, locateVersion, locatorJson, VERSION_RE, type VersionLocator } from './locator.ts';
import { Package } from './package.ts';

export const DEFAULT_LOAD_ADDRESS = 0x0800_0000;

const hex8 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

export function imageRef(image: Image): ImageRef & { version: string } {
  return { version: image.version, size: image.size, sha256: image.sha256 };
}

/** A manifest image entry for `bytes` at `file`. */
export function imageEntry(file: string, image: Image, extra: Partial<ImageEntry> = {}): ImageEntry {
  const d = digestOf(image.bytes);
  return { file, component: image.component, version: image.version, size: d.size, md5: d.md5, crc32: d.crc, sha256: d.sha256, ...extra };
}

/** The full package of an image: the image file itself, as uploaded to Developer Center. */
export function fullPackageEntry(file: string, image: Image): PackageEntry {
  const d = digestOf(image.bytes);
  return {
    file, component: image.component, version: image.version, type: 'full', size: d.size, md5: d.md5, crc32: d.crc, sha256: d.sha256,
    sourceVersion: null, source: null, target: imageRef(image),
  };
}

export function deltaPackageEntry(file: string, delta: Uint8Array, from: Image, to: Image): PackageEntry {
  const d = digestOf(delta);
  return {
    file, component: to.component, version: to.version, type: 'delta', size: d.size, md5: d.md5, crc32: d.crc, sha256: d.sha256,
    sourceVersion: from.version, source: imageRef(from), target: imageRef(to),
  };
}

/** The full package of an image, in memory. */
export function fullPackage(image: Image, name = `full_${image.version}`): Package {
  return new Package(image.bytes, { name, component: image.component, version: image.version, type: 'full', sourceVersion: undefined, declared: digestOf(image.bytes), source: undefined, target: imageRef(image) });
}

/**
 * A delta package from `from` to `to`, made by xdelta3 and checked by decoding it with the rig's own decoder
 * (a delta the rig cannot turn back into `to` is never handed out).
 */
export async function deltaPackage(from: Image, to: Image, name = `delta_${from.version}_to_${to.version}`): Promise<Package> {
  const bytes = await encodeDelta(from.bytes, to.bytes);
  applyDelta(bytes, from.bytes, { source: imageRef(from), target: imageRef(to) });
  return new Package(bytes, { name, component: to.component, version: to.version, type: 'delta', sourceVersion: from.version, declared: digestOf(bytes), source: imageRef(from), target: imageRef(to) });
}

export interface AddReleaseOptions {
  manifestPath: string;
  bytes: Uint8Array;
  /** Required when the manifest does not exist yet; else it must be the manifest's. */
  component?: string | undefined;
  /** As given by the user; else found by the locator. */
  version?: string | undefined;
  /** Only when the manifest is created (default: detected, see detectLocator); else it must be the manifest's. */
  locator?: VersionLocator | undefined;
  /** When the manifest is created: the address the images are linked for. */
  loadAddress?: number | undefined;
  /** Where the bytes came from (a file name), kept in the manifest for its reader. */
  origin?: string | undefined;
}

export interface AddedRelease {
  manifestPath: string;
  created: boolean;
  /** The release was already there with these bytes: nothing written. */
  alreadyThere: boolean;
  locator: VersionLocator;
  release: ReleaseIdentity;
  /** Files written, relative to the manifest's directory. */
  written: string[];
  /** Package names added. */
  packages: string[];
}

async function writeNew(file: string, bytes: Uint8Array): Promise<boolean> {
  if (existsSync(file)) {
    const have = await readFile(file);
    if (Buffer.compare(have, bytes) === 0) return false;
    throw new FirmwareError(`${file} exists with other bytes`, { expected: 'no file there, or the same bytes', seen: `${have.length} bytes that differ; move it away or choose another manifest` });
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return true;
}

/**
 * Adds a release to the manifest at `manifestPath` (created if missing): the image file, its full package
 * and a delta from every release already there. The manifest is written last, in one rename, and then
 * loaded again so that what was written is checked like any manifest.
 */
export async function addRelease(opts: AddReleaseOptions): Promise<AddedRelease> {
  const { manifestPath } = opts;
  const exists = existsSync(manifestPath);
  const set = exists ? await loadManifest(manifestPath) : undefined;
  const raw: ManifestJson = exists ? (JSON.parse(await readFile(manifestPath, 'utf8')) as ManifestJson) : {
    format: MANIFEST_FORMAT, generator: 'rig image add', component: '', loadAddress: hex8(opts.loadAddress ?? DEFAULT_LOAD_ADDRESS), crcAlgorithm: 'crc-32', images: {}, packages: {},
  };
  const component = opts.component ?? set?.component;
  if (component === undefined || !VERSION_RE.test(component)) {
    throw new ConfigError(component === undefined ? `${manifestPath} does not exist yet: which component?` : `not a component name: ${JSON.stringify(component)}`, {
      expected: 'a component name as in Developer Center (10700\'s componentNo), e.g. STM32',
      seen: component ?? 'none given',
    });
  }
  if (set && component !== set.component) {
    throw new ConfigError(`${manifestPath} holds releases of ${set.component}`, { expected: `component ${set.component} (one manifest per component)`, seen: component });
  }
  const locator = set?.locator ?? opts.locator ?? detectLocator(opts.bytes);
  if (set && opts.locator && formatLocator(opts.locator) !== formatLocator(set.locator)) {
    throw new ConfigError(`${manifestPath} names its releases with another locator`, { expected: `${formatLocator(set.locator)} (the manifest's) or no --locator`, seen: formatLocator(opts.locator) });
  }
  const release = identifyRelease(opts.bytes, { component, version: opts.version, locator, label: opts.origin ?? 'the image' });
  const image = release.image;
  const result: AddedRelease = { manifestPath, created: !exists, alreadyThere: false, locator, release, written: [], packages: [] };

  if (set) {
    const same = set.images.get(image.version);
    if (same) {
      if (same.sha256 === image.sha256) return { ...result, alreadyThere: true };
      throw new FirmwareError(`release ${component} ${image.version} is already in ${manifestPath} with other bytes`, { expected: `sha256 ${same.sha256} (a new version needs a new name)`, seen: `sha256 ${image.sha256}` });
    }
    const twin = set.imageByHash(image.sha256);
    if (twin) throw new FirmwareError(`these bytes are already release ${twin.version} in ${manifestPath}`, { expected: `an image other than ${twin.version}`, seen: `sha256 ${image.sha256}, given as ${image.version}` });
  }

  const dir = path.dirname(manifestPath);
  const write = async (rel: string, bytes: Uint8Array): Promise<void> => {
    if (await writeNew(path.join(dir, rel), bytes)) result.written.push(rel);
  };
  const imageFile = `images/${component}_${image.version}.bin`;
  await write(imageFile, image.bytes);
  // An MCUboot image starts with its header; its vector table is at ih_hdr_size.
  const vectors = locator.kind === 'mcuboot' ? undefined : vectorTable(image.bytes);
  raw.component = component;
  raw.locator = locatorJson(locator) as ManifestJson['locator'];
  raw.images[image.version] = imageEntry(imageFile, image, { ...(opts.origin ? { origin: opts.origin } : {}), ...(vectors ?? {}) });
  const full = `full_${image.version}`;
  raw.packages[full] = fullPackageEntry(imageFile, image);
  result.packages.push(full);
  for (const earlier of set?.images.values() ?? []) {
    const pkg = await deltaPackage(earlier, image);
    const file = `packages/${component}_${earlier.version}_to_${image.version}.vcdiff`;
    await write(file, pkg.bytes);
    raw.packages[pkg.name] = deltaPackageEntry(file, pkg.bytes, earlier, image);
    result.packages.push(pkg.name);
  }
  const tmp = `${manifestPath}.${process.pid}.tmp`;
  await mkdir(dir, { recursive: true });
  await writeFile(tmp, `${JSON.stringify(raw, null, 2)}\n`);
  await rename(tmp, manifestPath);
  result.written.push(path.basename(manifestPath));
  await loadManifest(manifestPath);
  return result;
}

/** Vector table entries 0 and 1 when they look like one (an SP in SRAM, a Thumb reset handler). */
function vectorTable(bytes: Uint8Array): { initialSp: string; resetHandler: string } | undefined {
  if (bytes.length < 8) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const sp = dv.getUint32(0, true);
  const reset = dv.getUint32(4, true);
  if ((sp & 0xe000_0000) !== 0x2000_0000 || (reset & 1) !== 1) return undefined;
  return { initialSp: hex8(sp), resetHandler: hex8(reset) };
}

// ---- a directory of release files -----------------------------------------------------------------

/** Natural order of version names: 1_9_0 before 1_10_0, 2.0.0-rc1 before 2.0.0 is not attempted. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[._-]/);
  const pb = b.split(/[._-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN;
    const c = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * The releases in `dir`: its manifest.json when it has one, else every `*.bin` in it, each named by the
 * locator or, when the locator finds nothing, by its file name (`STM32_1_2_0.bin` or `1_2_0.bin`), ordered
 * by version.
 */
export async function loadReleases(dir: string, opts: { component: string; locator?: VersionLocator | undefined }): Promise<FirmwareSet> {
  const manifest = path.join(dir, 'manifest.json');
  if (existsSync(manifest)) return loadManifest(manifest);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.bin')).sort();
  } catch (err) {
    throw new ConfigError(`cannot read release directory ${dir}`, { expected: 'a directory with manifest.json or *.bin release files', seen: (err as Error).message });
  }
  if (names.length === 0) throw new ConfigError(`no releases in ${dir}`, { expected: 'manifest.json or *.bin files (one per released version)', seen: 'neither' });
  const images = new Map<string, Image>();
  const fromName = new RegExp(`^(?:${opts.component}[_-])?v?([A-Za-z0-9_.-]+?)\\.bin$`, 'i');
  let locator = opts.locator;
  for (const name of names) {
    const bytes = new Uint8Array(await readFile(path.join(dir, name)));
    locator ??= detectLocator(bytes);
    const found = locateVersion(bytes, locator);
    const version = found.found ? undefined : fromName.exec(name)?.[1];
    const { image } = identifyRelease(bytes, { component: opts.component, version, locator, label: name });
    const twin = images.get(image.version);
    if (twin) throw new FirmwareError(`two release files in ${dir} are version ${image.version}`, { expected: 'one file per version', seen: `${name} and another (sha256 ${twin.sha256.slice(0, 12)}…)` });
    images.set(image.version, image);
  }
  const ordered = new Map([...images].sort(([a], [b]) => compareVersions(a, b)));
  return new FirmwareSet({
    manifestPath: dir,
    component: opts.component,
    loadAddress: DEFAULT_LOAD_ADDRESS,
    headerOffset: locator?.kind === 'rig-header' ? locator.offset : 0x200,
    locator: locator ?? { kind: 'none' },
    images: ordered,
    packages: new Map(),
    entries: { images: {}, packages: {} },
  });
}
