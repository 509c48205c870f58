// Where an image says which version it is. Real firmware does not carry the rig's own header, so each
// component names a locator: the rig's header, an MCUboot header, a version string at a fixed offset or
// matching a pattern, or none (the version is given by whoever adds the release). A locator only NAMES an
// image; the rig always decides what an image IS by its bytes (SHA-256 over its length, identify.ts).
//
// MCUboot's image header (docs.mcuboot.com/design, "Image format"; little-endian, 32 bytes at the start of
// the image, the vector table follows at ih_hdr_size):
//   0x00 u32 ih_magic 0x96f3b83d   0x04 u32 ih_load_addr   0x08 u16 ih_hdr_size   0x0a u16 ih_protect_tlv_size
//   0x0c u32 ih_img_size (without the header)   0x10 u32 ih_flags
//   0x14 u8 iv_major  0x15 u8 iv_minor  0x16 u16 iv_revision  0x18 u32 iv_build_num   0x1c u32 pad
// then the body, then the protected TLV area (magic 0x6908, u16 total size) when ih_protect_tlv_size > 0,
// then the TLV area (magic 0x6907, u16 total size) whose entries are u16 type, u16 length, value; type 0x10
// is the SHA-256 of header + body + protected TLVs.
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { sha256Hex } from './digest.ts';
import { describeIdentity, identifyImage, IMAGE_HEADER_OFFSET } from './header.ts';

export const MCUBOOT_MAGIC = 0x96f3b83d;
export const MCUBOOT_HEADER_SIZE = 32;
const MCUBOOT_TLV_INFO_MAGIC = 0x6907;
const MCUBOOT_TLV_PROT_INFO_MAGIC = 0x6908;
const MCUBOOT_TLV_SHA256 = 0x10;
/** How an MCUboot version becomes a QuecThing version: the platform allows only [A-Za-z0-9_.-] (protocol §2.4). */
export const MCUBOOT_DEFAULT_FORMAT = '{major}.{minor}.{revision}';

/** The characters Developer Center allows in a version, and its length limit (QIOT_COMPVER_MAXSIZE). */
export const VERSION_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export type VersionLocator =
  /** The rig's own 64-byte header (header.ts), at `offset` (0x200 by default). */
  | { kind: 'rig-header'; offset: number }
  /** An MCUboot image header at `offset` (0 by default); `format` turns its version into a version name. */
  | { kind: 'mcuboot'; offset: number; format: string }
  /** A version string of at most `length` bytes at `offset`, ended by NUL or erased flash (0xFF). */
  | { kind: 'string'; offset: number; length: number }
  /** The first match of a regular expression over the image's bytes (latin1); the version is its group
   *  named `version`, else its first group, else the whole match. */
  | { kind: 'pattern'; pattern: string }
  /** No version in the image: it is given when the release is added. */
  | { kind: 'none' };

export type LocatorKind = VersionLocator['kind'];
export const LOCATOR_KINDS: readonly LocatorKind[] = ['rig-header', 'mcuboot', 'string', 'pattern', 'none'];

export const DEFAULT_LOCATOR: VersionLocator = { kind: 'rig-header', offset: IMAGE_HEADER_OFFSET };

/** What a locator found in some bytes. */
export type Located =
  | {
      found: true;
      version: string;
      /** The component, when the header names one (the rig's header does). */
      component?: string;
      /** The image's whole length, when the header says it (the rig's header, MCUboot's). */
      length?: number;
      /** Whether the header's own check (body CRC, MCUboot's SHA-256 TLV) holds; undefined when it has none. */
      intact?: boolean;
      /** Why it is not intact. */
      damage?: string;
      /** "MCUboot header at 0x0", "pattern /v(\S+)/ at 0x1f40". */
      where: string;
    }
  | { found: false; where: string; reason: string };

const hex = (n: number): string => `0x${n.toString(16)}`;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function checkVersion(version: string, where: string): Located {
  if (VERSION_RE.test(version)) return { found: true, version, where };
  return { found: false, where, reason: `it says ${JSON.stringify(version)}, not a version (1–64 characters of A-Z a-z 0-9 _ . -)` };
}

export function formatMcubootVersion(format: string, v: { major: number; minor: number; revision: number; build: number }): string {
  return format.replace(/\{(major|minor|revision|build)\}/g, (_, k: keyof typeof v) => String(v[k]));
}

function locateMcuboot(bytes: Uint8Array, offset: number, format: string): Located {
  const where = `MCUboot header at ${hex(offset)}`;
  if (bytes.length < offset + MCUBOOT_HEADER_SIZE) {
    return { found: false, where, reason: `only ${bytes.length} bytes, the header ends at ${hex(offset + MCUBOOT_HEADER_SIZE)}` };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset);
  const magic = dv.getUint32(0, true);
  if (magic !== MCUBOOT_MAGIC) return { found: false, where, reason: `magic ${hex(magic)}, not ${hex(MCUBOOT_MAGIC)}${magic === 0xffffffff ? ' (erased flash)' : ''}` };
  const hdrSize = dv.getUint16(8, true);
  const protSize = dv.getUint16(10, true);
  const imgSize = dv.getUint32(12, true);
  if (hdrSize < MCUBOOT_HEADER_SIZE) return { found: false, where, reason: `ih_hdr_size ${hdrSize}, less than the header's own ${MCUBOOT_HEADER_SIZE} bytes` };
  const version = formatMcubootVersion(format, { major: dv.getUint8(20), minor: dv.getUint8(21), revision: dv.getUint16(22, true), build: dv.getUint32(24, true) });
  const named = checkVersion(version, where);
  if (!named.found) return named;
  // The image ends after its TLV areas; without them (a read shorter than the image) it ends with the body.
  let end = offset + hdrSize + imgSize;
  const bodyEnd = end;
  const u16 = (at: number): number | undefined => (at + 2 <= bytes.length ? (bytes[at]! | (bytes[at + 1]! << 8)) : undefined);
  if (protSize > 0 && u16(end) === MCUBOOT_TLV_PROT_INFO_MAGIC) end += u16(end + 2) ?? 0;
  const protEnd = end;
  let sha: Uint8Array | undefined;
  let tlvSeen = false;
  if (u16(end) === MCUBOOT_TLV_INFO_MAGIC) {
    const total = u16(end + 2) ?? 0;
    tlvSeen = true;
    for (let at = end + 4; at + 4 <= Math.min(end + total, bytes.length); ) {
      const type = u16(at)!;
      const len = u16(at + 2)!;
      if (type === MCUBOOT_TLV_SHA256 && len === 32 && at + 4 + 32 <= bytes.length) sha = bytes.subarray(at + 4, at + 36);
      at += 4 + len;
    }
    end += total;
  }
  const located: Located = { found: true, version, length: end - offset, where };
  if (bodyEnd > bytes.length) return { ...located, intact: false, damage: `truncated: ${bytes.length - offset} of at least ${bodyEnd - offset} bytes` };
  if (sha) {
    const seen = sha256Hex(bytes.subarray(offset, protEnd));
    const want = Buffer.from(sha).toString('hex');
    return seen === want ? { ...located, intact: true } : { ...located, intact: false, damage: `its SHA-256 TLV says ${want.slice(0, 12)}…, the bytes give ${seen.slice(0, 12)}…` };
  }
  return tlvSeen ? { ...located, intact: false, damage: 'no SHA-256 TLV' } : located;
}

function locateString(bytes: Uint8Array, offset: number, length: number): Located {
  const where = `version string at ${hex(offset)}`;
  if (bytes.length <= offset) return { found: false, where, reason: `only ${bytes.length} bytes` };
  const field = bytes.subarray(offset, Math.min(bytes.length, offset + length));
  let end = field.findIndex((b) => b === 0 || b === 0xff);
  if (end < 0) end = field.length;
  if (end === 0) return { found: false, where, reason: field[0] === 0xff ? 'erased flash (0xFF)' : 'an empty string' };
  return checkVersion(latin1(field.subarray(0, end)), where);
}

function locatePattern(bytes: Uint8Array, pattern: string): Located {
  const re = compilePattern(pattern);
  const where = `pattern /${pattern}/`;
  const m = re.exec(latin1(bytes));
  if (!m) return { found: false, where, reason: 'no match in the image' };
  const version = m.groups?.version ?? m[1] ?? m[0];
  return checkVersion(version, `${where} at ${hex(m.index)}`);
}

export function compilePattern(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new ConfigError('version pattern is not a regular expression', { expected: 'a JavaScript regular expression, e.g. FW_VERSION=([0-9_.]+)', seen: `${pattern} (${(err as Error).message})` });
  }
}

/** What `locator` finds in `bytes` (an image file, or a read-back that may be longer or shorter than the image). */
export function locateVersion(bytes: Uint8Array, locator: VersionLocator): Located {
  switch (locator.kind) {
    case 'none':
      return { found: false, where: 'no locator', reason: 'this component has no version in its images' };
    case 'rig-header': {
      const where = `rig header at ${hex(locator.offset)}`;
      const id = identifyImage(bytes, locator.offset);
      if (id.state === 'no-header' || id.state === 'bad-header') return { found: false, where, reason: describeIdentity(id) };
      const { header } = id;
      const base = { found: true as const, version: header.version, component: header.component, length: header.imageLength, where };
      return id.state === 'valid' ? { ...base, intact: true } : { ...base, intact: false, damage: describeIdentity(id) };
    }
    case 'mcuboot':
      return locateMcuboot(bytes, locator.offset, locator.format);
    case 'string':
      return locateString(bytes, locator.offset, locator.length);
    case 'pattern':
      return locatePattern(bytes, locator.pattern);
  }
}

/**
 * The locators worth trying on an image nobody described: the rig's header, then MCUboot's. A version
 * string or pattern is too easy to find by accident to guess.
 */
export function detectLocator(bytes: Uint8Array): VersionLocator {
  if (locateVersion(bytes, DEFAULT_LOCATOR).found) return DEFAULT_LOCATOR;
  const mcuboot: VersionLocator = { kind: 'mcuboot', offset: 0, format: MCUBOOT_DEFAULT_FORMAT };
  if (locateVersion(bytes, mcuboot).found) return mcuboot;
  return { kind: 'none' };
}

// ---- spelling ---------------------------------------------------------------------------------------

const number = z.union([z.number().int().min(0).max(0xffffffff), z.string().regex(/^(0x[0-9a-fA-F]{1,8}|\d+)$/, 'a number or 0x hex').transform(parseNumber)]);

/** A locator as a manifest stores it (offsets as numbers or "0x…" strings). */
export const locatorSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('rig-header'), offset: number.default(IMAGE_HEADER_OFFSET) }).strict(),
  z.object({ kind: z.literal('mcuboot'), offset: number.default(0), format: z.string().regex(/\{(major|minor|revision|build)\}/, 'a template with {major}, {minor}, {revision} or {build}').default(MCUBOOT_DEFAULT_FORMAT) }).strict(),
  z.object({ kind: z.literal('string'), offset: number, length: z.number().int().min(1).max(64).default(64) }).strict(),
  z.object({ kind: z.literal('pattern'), pattern: z.string().min(1).refine((p) => { try { new RegExp(p); return true; } catch { return false; } }, 'a JavaScript regular expression') }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
]);

function parseNumber(s: string): number {
  return s.toLowerCase().startsWith('0x') ? Number.parseInt(s, 16) : Number(s);
}

/** How a manifest writes a locator: offsets in hex, defaults left in so the file says everything. */
export function locatorJson(l: VersionLocator): Record<string, string | number> {
  switch (l.kind) {
    case 'rig-header':
      return { kind: l.kind, offset: hex(l.offset) };
    case 'mcuboot':
      return { kind: l.kind, offset: hex(l.offset), format: l.format };
    case 'string':
      return { kind: l.kind, offset: hex(l.offset), length: l.length };
    case 'pattern':
      return { kind: l.kind, pattern: l.pattern };
    case 'none':
      return { kind: l.kind };
  }
}

export const LOCATOR_SYNTAX = "rig-header[:offset=0x200] | mcuboot[:offset=0x0,format={major}.{minor}.{revision}] | string:offset=0x400[,length=32] | 'pattern:<regex>' | none";

/**
 * The command-line spelling: `none`, `rig-header`, `mcuboot`, `mcuboot:offset=0x20000,format={major}_{minor}_{revision}`,
 * `string:offset=0x400,length=16`, `pattern:FW_VERSION=([0-9_.]+)` (everything after `pattern:` is the regex).
 */
export function parseLocator(text: string): VersionLocator {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  const bad = (why: string): ConfigError => new ConfigError(`locator ${JSON.stringify(text)}: ${why}`, { expected: LOCATOR_SYNTAX, seen: text });
  if (!(LOCATOR_KINDS as readonly string[]).includes(kind)) throw bad(`unknown kind ${JSON.stringify(kind)}`);
  const raw: Record<string, unknown> = { kind };
  if (kind === 'pattern') {
    if (rest === '') throw bad('a pattern needs its regular expression after "pattern:"');
    raw.pattern = rest;
  } else if (rest !== '') {
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw bad(`"${part}" is not key=value`);
      const key = part.slice(0, eq);
      const value = part.slice(eq + 1);
      raw[key] = key === 'length' ? Number(value) : value;
    }
  }
  const parsed = locatorSchema.safeParse(raw);
  if (!parsed.success) throw bad(parsed.error.issues.map((i) => `${i.path.join('.') || 'locator'}: ${i.message}`).join('; '));
  return parsed.data as VersionLocator;
}

/** The command-line spelling back (for messages and `rig image` output). */
export function formatLocator(l: VersionLocator): string {
  switch (l.kind) {
    case 'rig-header':
      return l.offset === IMAGE_HEADER_OFFSET ? 'rig-header' : `rig-header:offset=${hex(l.offset)}`;
    case 'mcuboot': {
      const opts = [l.offset !== 0 ? `offset=${hex(l.offset)}` : '', l.format !== MCUBOOT_DEFAULT_FORMAT ? `format=${l.format}` : ''].filter(Boolean);
      return opts.length > 0 ? `mcuboot:${opts.join(',')}` : 'mcuboot';
    }
    case 'string':
      return `string:offset=${hex(l.offset)},length=${l.length}`;
    case 'pattern':
      return `pattern:${l.pattern}`;
    case 'none':
      return 'none';
  }
}
