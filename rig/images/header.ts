// The version header every sota-rig image carries, so that a flash read-back says by itself which version it
// holds and whether it is whole. It sits at a fixed offset after the Cortex-M vector table (0x200 leaves room
// for the 16 core vectors and up to 112 interrupt vectors, enough for STM32 F0/F1/F4/L4/G4 parts).
//
//   offset  size  field
//   0x00    4     magic "SOTA"
//   0x04    2     header format (1), little-endian like every field below
//   0x06    2     header size (64)
//   0x08    16    component, ASCII, NUL-padded ("STM32")
//   0x18    24    version, ASCII, NUL-padded ("2_0_0")
//   0x30    4     image length in bytes, header included
//   0x34    4     load address the image was linked for (0x08000000)
//   0x38    4     body CRC: CRC-32/IEEE of every image byte outside this header, in address order
//   0x3C    4     header CRC: CRC-32/IEEE of header bytes 0x00..0x3B

import { FirmwareError } from '../errors.ts';
import { Crc32, crc32, formatCrc } from './crc.ts';

export const IMAGE_HEADER_OFFSET = 0x200;
export const IMAGE_HEADER_SIZE = 64;
export const IMAGE_HEADER_MAGIC = 'SOTA';
export const IMAGE_HEADER_FORMAT = 1;
const COMPONENT_FIELD = 16;
const VERSION_FIELD = 24;
// Versions travel in AT commands and 10700 URCs inside quotes: keep them to characters that never need escaping.
const NAME_RE = /^[A-Za-z0-9_.-]+$/;

export interface ImageHeaderFields {
  component: string;
  version: string;
  imageLength: number;
  loadAddress: number;
}

export interface ImageHeader extends ImageHeaderFields {
  /** Where in the image the header was found. */
  offset: number;
  format: number;
  bodyCrc: number;
  headerCrc: number;
}

function checkName(what: string, value: string, max: number): void {
  if (!NAME_RE.test(value) || value.length >= max) {
    throw new FirmwareError(`image header ${what} cannot be encoded`, {
      expected: `1..${max - 1} characters of [A-Za-z0-9_.-]`,
      seen: JSON.stringify(value),
    });
  }
}

function readName(bytes: Uint8Array, at: number, len: number): string {
  const field = bytes.subarray(at, at + len);
  const end = field.indexOf(0);
  return new TextDecoder('latin1').decode(end < 0 ? field : field.subarray(0, end));
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** CRC-32/IEEE of bytes [0, imageLength) with the header's 64 bytes left out. */
export function imageBodyCrc(image: Uint8Array, imageLength: number, offset = IMAGE_HEADER_OFFSET): number {
  return new Crc32()
    .update(image.subarray(0, offset))
    .update(image.subarray(offset + IMAGE_HEADER_SIZE, imageLength))
    .value();
}

/**
 * Writes a complete header (body CRC and header CRC included) into `image` at `offset`. The image must
 * already hold its final body: the body CRC covers everything but the header.
 */
export function writeImageHeader(
  image: Uint8Array,
  fields: Omit<ImageHeaderFields, 'imageLength'>,
  offset = IMAGE_HEADER_OFFSET,
): ImageHeader {
  checkName('component', fields.component, COMPONENT_FIELD);
  checkName('version', fields.version, VERSION_FIELD);
  if (image.length < offset + IMAGE_HEADER_SIZE) {
    throw new FirmwareError('image too short for its header', {
      expected: `at least ${offset + IMAGE_HEADER_SIZE} bytes`,
      seen: `${image.length} bytes`,
    });
  }
  const h = image.subarray(offset, offset + IMAGE_HEADER_SIZE);
  h.fill(0);
  const dv = view(h);
  h.set(new TextEncoder().encode(IMAGE_HEADER_MAGIC), 0);
  dv.setUint16(0x04, IMAGE_HEADER_FORMAT, true);
  dv.setUint16(0x06, IMAGE_HEADER_SIZE, true);
  h.set(new TextEncoder().encode(fields.component), 0x08);
  h.set(new TextEncoder().encode(fields.version), 0x18);
  dv.setUint32(0x30, image.length, true);
  dv.setUint32(0x34, fields.loadAddress >>> 0, true);
  const bodyCrc = imageBodyCrc(image, image.length, offset);
  dv.setUint32(0x38, bodyCrc, true);
  const headerCrc = crc32(h.subarray(0, 0x3c));
  dv.setUint32(0x3c, headerCrc, true);
  return {
    ...fields, imageLength: image.length, loadAddress: fields.loadAddress >>> 0, offset,
    format: IMAGE_HEADER_FORMAT, bodyCrc, headerCrc,
  };
}

/** What a block of flash (an image file or a read-back slot, possibly longer than the image) holds. */
export type ImageIdentity =
  | { state: 'valid'; header: ImageHeader }
  | { state: 'no-header'; seenMagic: string; erased: boolean }
  | { state: 'bad-header'; reason: string }
  | { state: 'truncated'; header: ImageHeader; available: number }
  | { state: 'bad-body-crc'; header: ImageHeader; seenBodyCrc: number };

type HeaderFault = Extract<ImageIdentity, { state: 'no-header' | 'bad-header' }>;

function headerAt(bytes: Uint8Array, offset: number): ImageHeader | HeaderFault {
  if (bytes.length < offset + IMAGE_HEADER_SIZE) {
    return { state: 'bad-header', reason: `only ${bytes.length} bytes, the header ends at ${offset + IMAGE_HEADER_SIZE}` };
  }
  const h = bytes.subarray(offset, offset + IMAGE_HEADER_SIZE);
  const magic = h.subarray(0, 4);
  if (Buffer.from(magic).toString('latin1') !== IMAGE_HEADER_MAGIC) {
    return {
      state: 'no-header',
      seenMagic: Buffer.from(magic).toString('hex'),
      erased: h.every((b) => b === 0xff),
    };
  }
  const dv = view(h);
  const headerCrc = dv.getUint32(0x3c, true);
  const seenHeaderCrc = crc32(h.subarray(0, 0x3c));
  if (headerCrc !== seenHeaderCrc) {
    return { state: 'bad-header', reason: `header CRC ${formatCrc(headerCrc)} but its bytes give ${formatCrc(seenHeaderCrc)}` };
  }
  const format = dv.getUint16(0x04, true);
  const size = dv.getUint16(0x06, true);
  if (format !== IMAGE_HEADER_FORMAT || size !== IMAGE_HEADER_SIZE) {
    return { state: 'bad-header', reason: `header format ${format} size ${size}, this rig reads format ${IMAGE_HEADER_FORMAT} size ${IMAGE_HEADER_SIZE}` };
  }
  const imageLength = dv.getUint32(0x30, true);
  if (imageLength < offset + IMAGE_HEADER_SIZE) {
    return { state: 'bad-header', reason: `image length ${imageLength} ends before the header does (${offset + IMAGE_HEADER_SIZE})` };
  }
  return {
    offset,
    format,
    component: readName(h, 0x08, COMPONENT_FIELD),
    version: readName(h, 0x18, VERSION_FIELD),
    imageLength,
    loadAddress: dv.getUint32(0x34, true),
    bodyCrc: dv.getUint32(0x38, true),
    headerCrc,
  };
}

/**
 * Says what `bytes` holds without throwing: the verdict after a read-back needs "erased", "v1_0_0 intact"
 * and "v2_0_0 torn" as answers, not exceptions. `bytes` may be longer than the image (a whole slot).
 */
export function identifyImage(bytes: Uint8Array, offset = IMAGE_HEADER_OFFSET): ImageIdentity {
  const header = headerAt(bytes, offset);
  if ('state' in header) return header;
  if (bytes.length < header.imageLength) return { state: 'truncated', header, available: bytes.length };
  const seenBodyCrc = imageBodyCrc(bytes, header.imageLength, offset);
  if (seenBodyCrc !== header.bodyCrc) return { state: 'bad-body-crc', header, seenBodyCrc };
  return { state: 'valid', header };
}

/** Reads the header at `offset`; FirmwareError when there is none or it is damaged. Does not check the body. */
export function parseImageHeader(bytes: Uint8Array, offset = IMAGE_HEADER_OFFSET): ImageHeader {
  const header = headerAt(bytes, offset);
  if (!('state' in header)) return header;
  throw new FirmwareError(`no valid image header at offset 0x${offset.toString(16)}`, {
    expected: `magic "${IMAGE_HEADER_MAGIC}" (${Buffer.from(IMAGE_HEADER_MAGIC).toString('hex')}) and a matching header CRC`,
    seen: header.state === 'no-header'
      ? `magic ${header.seenMagic}${header.erased ? ' (erased flash)' : ''}`
      : header.reason,
  });
}

/** One line for logs and reports: "STM32 2_0_0, 25088 bytes, intact" or why it is not. */
export function describeIdentity(id: ImageIdentity): string {
  switch (id.state) {
    case 'valid':
      return `${id.header.component} ${id.header.version}, ${id.header.imageLength} bytes, intact`;
    case 'no-header':
      return id.erased ? 'erased (no image header)' : `no image header (magic ${id.seenMagic})`;
    case 'bad-header':
      return `damaged image header: ${id.reason}`;
    case 'truncated':
      return `${id.header.component} ${id.header.version} truncated: ${id.available} of ${id.header.imageLength} bytes`;
    case 'bad-body-crc':
      return `${id.header.component} ${id.header.version} damaged: body CRC ${formatCrc(id.seenBodyCrc)}, header says ${formatCrc(id.header.bodyCrc)}`;
  }
}
