// What some bytes are. An image IS its bytes (SHA-256 over its length): a read-back is the known image it
// equals byte for byte, or part of one, or erased flash, or unknown. The version locator of the component
// (locator.ts) only helps to NAME bytes that match no known image ("the MCUboot header names 1.4.0, but the
// bytes are no release"), and to name a release when it is added.
import { ConfigError, FirmwareError, RigError } from '../errors.ts';
import { sha256Hex } from './digest.ts';
import { Image } from './image.ts';
import { DEFAULT_LOCATOR, formatLocator, locateVersion, VERSION_RE, type Located, type VersionLocator } from './locator.ts';

export interface ContentIdentity {
  /** The known image these bytes hold byte for byte over its length (the bytes may go on beyond it). */
  image: Image | undefined;
  /** Known images these bytes are a part of, when they are shorter than an image or start inside one. */
  partOf: Image[];
  /** Every byte is 0xFF. */
  erased: boolean;
  /** What the component's locator says about the bytes. */
  located: Located;
  /** One line for a person: "STM32 2_0_0 (25344 bytes, sha256 43ce9bb0fc7f…)", "erased (256 bytes of 0xFF)" … */
  text: string;
}

export interface IdentifyOptions {
  /** The images to recognise (a manifest's, the run's current and target). */
  known?: Iterable<Image>;
  locator?: VersionLocator;
  /** Where bytes[0] lies inside the image: a read that starts past the slot address. Default 0. */
  offset?: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const short = (sha: string): string => `${sha.slice(0, 12)}…`;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function names(images: readonly Image[]): string {
  const versions = images.map((i) => i.version);
  const component = images[0]?.component ?? '';
  return versions.length === 1 ? `${component} ${versions[0]}` : `${component} ${versions.slice(0, -1).join(', ')} and ${versions.at(-1)} (the same there)`;
}

function describeLocated(l: Extract<Located, { found: true }>): string {
  const what = `${l.component ? `${l.component} ` : ''}${l.version}`;
  const check = l.intact === true ? ', intact by its own check' : l.intact === false ? `, damaged: ${l.damage}` : '';
  return `the ${l.where} names ${what}${check}`;
}

/** Names `bytes` (a read-back or a file): the known image they are, else what they look like. Never throws. */
export function identifyContent(bytes: Uint8Array, opts: IdentifyOptions = {}): ContentIdentity {
  const offset = opts.offset ?? 0;
  // In the order given (release order, for naming); the longest first where one must be chosen.
  const known = [...new Map([...(opts.known ?? [])].map((i) => [i.sha256, i])).values()];
  const longestFirst = [...known].sort((a, b) => b.size - a.size);
  const located = locateVersion(bytes, opts.locator ?? DEFAULT_LOCATOR);
  const erased = bytes.length > 0 && bytes.every((b) => b === 0xff);
  const base = { located, erased, partOf: [] as Image[] };

  if (offset === 0) {
    const image = longestFirst.find((i) => bytes.length >= i.size && i.equals(bytes.subarray(0, i.size)));
    if (image) {
      // What follows the image: erased flash, or the remains of something longer that was there before.
      let end = bytes.length;
      while (end > image.size && bytes[end - 1] === 0xff) end--;
      const after = end === image.size ? '' : `, then ${end - image.size} bytes that are not erased (up to offset ${hex(end)})`;
      return { ...base, image, text: `${image.component} ${image.version} (${image.size} bytes, sha256 ${short(image.sha256)})${after}` };
    }
  }
  const partOf = bytes.length === 0 ? [] : known.filter((i) => offset + bytes.length <= i.size && (offset > 0 || bytes.length < i.size) && sameBytes(i.bytes.subarray(offset, offset + bytes.length), bytes));
  if (partOf.length > 0) {
    const range = offset === 0 ? `the first ${bytes.length} bytes` : `bytes ${hex(offset)}–${hex(offset + bytes.length - 1)}`;
    const of = partOf.length === 1 ? `of ${names(partOf)} (${partOf[0]!.size} bytes)` : `of ${names(partOf)}`;
    return { ...base, partOf, image: undefined, text: `${range} ${of}` };
  }
  if (erased) return { ...base, image: undefined, text: `erased (${bytes.length} bytes of 0xFF)` };
  const unknown = `${bytes.length} bytes that are no known image (sha256 ${short(sha256Hex(bytes))})`;
  if (located.found) return { ...base, image: undefined, text: `${unknown}: ${describeLocated(located)}` };
  return { ...base, image: undefined, text: `${unknown}; ${located.where}: ${located.reason}` };
}

/** A release whose version nobody gave and its locator did not find: the command line must say it (usage). */
export class UnnamedImageError extends RigError {
  readonly kind = 'usage' as const;
}

export interface ReleaseIdentity {
  image: Image;
  /** Where the version came from. */
  versionFrom: 'given' | 'image' | 'given and image';
  located: Located;
}

/**
 * A release file as an Image: its bytes, its component, and its version as given, or found by the
 * locator. A locator that finds a different version, a different component, or a header whose own check
 * fails is a FirmwareError: a release named wrongly would make every verdict about it wrong.
 * Undefined version and nothing found: an UnnamedImageError saying to give one.
 */
export function identifyRelease(bytes: Uint8Array, opts: { component: string; version?: string | undefined; locator?: VersionLocator; label?: string }): ReleaseIdentity {
  const locator = opts.locator ?? DEFAULT_LOCATOR;
  const label = opts.label ?? 'the image';
  if (opts.version !== undefined && !VERSION_RE.test(opts.version)) {
    throw new ConfigError(`not a version: ${JSON.stringify(opts.version)}`, { expected: '1–64 characters of A-Z a-z 0-9 _ . - (what Developer Center accepts)', seen: opts.version });
  }
  const located = locateVersion(bytes, locator);
  if (located.found) {
    if (located.intact === false) {
      throw new FirmwareError(`${label} is damaged by its own header's account`, { expected: `an image whose ${located.where} holds`, seen: `${located.version}: ${located.damage}` });
    }
    if (located.component !== undefined && located.component !== opts.component) {
      throw new FirmwareError(`${label} is for another component`, { expected: `component ${opts.component}`, seen: `${located.component} (${located.where})` });
    }
    if (opts.version !== undefined && opts.version !== located.version) {
      throw new FirmwareError(`${label} names another version than the one given`, {
        expected: `version ${opts.version}`,
        seen: `${located.version} (${located.where}; give the image's own version, or --locator none if its header is not to be trusted)`,
      });
    }
  }
  const version = opts.version ?? (located.found ? located.version : undefined);
  if (version === undefined) {
    throw new UnnamedImageError(`which version is ${label}?`, {
      expected: locator.kind === 'none'
        ? 'a version given (--version): this component\'s images carry none the rig reads (locator none)'
        : `a version given (--version), or one the locator ${formatLocator(locator)} finds in the image`,
      seen: located.found ? located.version : locator.kind === 'none' ? 'no --version' : `${located.where}: ${located.reason}`,
    });
  }
  const versionFrom = opts.version === undefined ? 'image' : located.found ? 'given and image' : 'given';
  return { image: new Image(bytes, { component: opts.component, version }), versionFrom, located };
}
