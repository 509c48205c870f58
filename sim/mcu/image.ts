// What the virtual MCU reads in an image (docs/virtual-mcu.md §3): sota-rig's 64-byte header at 0x200 (written
// from the header layout, as firmware would read it; sim/ does not share the rig's code) and the optional
// 32-byte descriptor at 0x240 that selects planted defects. No descriptor, or a damaged one, is the
// correct reference behaviour.
import { crc32 } from '../cloud/hash.ts';

export const HEADER_OFFSET = 0x200;
export const HEADER_SIZE = 64;
export const DESCRIPTOR_OFFSET = HEADER_OFFSET + HEADER_SIZE;
export const DESCRIPTOR_SIZE = 32;
const DESCRIPTOR_MAGIC = 'VMCU';

export interface ImageHeader {
  component: string;
  version: string;
  length: number;
  loadAddress: number;
  bodyCrc: number;
}

export type ImageCheck = { ok: true; header: ImageHeader } | { ok: false; why: string; header?: ImageHeader };

export const DescriptorKind = { bootloader: 1, application: 2 } as const;

/** Descriptor defect bits (docs/virtual-mcu.md §6). */
export const Defect = {
  neverConfirms: 1 << 0,
  crashAtBoot: 1 << 1,
  skipMd5: 1 << 2,
  wrongOffset: 1 << 3,
  noRestart: 1 << 4,
  wrongVersion: 1 << 5,
  ignores10706: 1 << 6,
  unsafeSwap: 1 << 16,
} as const;

export const defectNames: Readonly<Record<number, string>> = {
  [Defect.neverConfirms]: 'never-confirms',
  [Defect.crashAtBoot]: 'crash-at-boot',
  [Defect.skipMd5]: 'skip-md5',
  [Defect.wrongOffset]: 'wrong-offset',
  [Defect.noRestart]: 'no-restart',
  [Defect.wrongVersion]: 'wrong-version',
  [Defect.ignores10706]: 'ignores-10706',
  [Defect.unsafeSwap]: 'unsafe-swap',
};

export interface Descriptor {
  kind: number;
  defects: number;
  params: [number, number, number];
}

function text(bytes: Uint8Array, at: number, len: number): string {
  const field = bytes.subarray(at, at + len);
  const end = field.indexOf(0);
  return Buffer.from(end < 0 ? field : field.subarray(0, end)).toString('latin1');
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The header at 0x200, if its magic and header CRC hold; the body is not looked at. */
export function readHeader(image: Uint8Array): ImageHeader | undefined {
  if (image.length < HEADER_OFFSET + HEADER_SIZE) return undefined;
  const h = image.subarray(HEADER_OFFSET, HEADER_OFFSET + HEADER_SIZE);
  if (text(h, 0, 4) !== 'SOTA') return undefined;
  const dv = view(h);
  if (dv.getUint32(0x3c, true) !== crc32(h.subarray(0, 0x3c))) return undefined;
  if (dv.getUint16(0x04, true) !== 1 || dv.getUint16(0x06, true) !== HEADER_SIZE) return undefined;
  return {
    component: text(h, 0x08, 16),
    version: text(h, 0x18, 24),
    length: dv.getUint32(0x30, true),
    loadAddress: dv.getUint32(0x34, true),
    bodyCrc: dv.getUint32(0x38, true),
  };
}

/** CRC-32 of every byte of the image outside its header, as the header's body CRC is defined. */
export function bodyCrc(image: Uint8Array, length: number): number {
  const body = new Uint8Array(length - HEADER_SIZE);
  body.set(image.subarray(0, HEADER_OFFSET), 0);
  body.set(image.subarray(HEADER_OFFSET + HEADER_SIZE, length), HEADER_OFFSET);
  return crc32(body);
}

/**
 * Checks a slot (or the bootloader area) the way the bootloader does: header, length within the area, body
 * CRC, and optionally the load address and component.
 */
export function checkImage(area: Uint8Array, expect: { loadAddress?: number; component?: string } = {}): ImageCheck {
  const header = readHeader(area);
  if (!header) {
    const magic = area.subarray(HEADER_OFFSET, HEADER_OFFSET + 4);
    return { ok: false, why: magic.every((b) => b === 0xff) ? 'erased (no image header)' : 'no valid image header' };
  }
  const name = `${header.component} ${header.version}`;
  if (header.length < HEADER_OFFSET + HEADER_SIZE || header.length > area.length) {
    return { ok: false, why: `${name}: length ${header.length} does not fit the ${area.length}-byte area`, header };
  }
  const crc = bodyCrc(area, header.length);
  if (crc !== header.bodyCrc) {
    return { ok: false, why: `${name}: body CRC 0x${crc.toString(16).padStart(8, '0')}, header says 0x${header.bodyCrc.toString(16).padStart(8, '0')}`, header };
  }
  if (expect.loadAddress !== undefined && header.loadAddress !== expect.loadAddress) {
    return { ok: false, why: `${name}: linked for 0x${header.loadAddress.toString(16)}, not 0x${expect.loadAddress.toString(16)}`, header };
  }
  if (expect.component !== undefined && header.component !== expect.component) {
    return { ok: false, why: `${name}: component ${header.component}, not ${expect.component}`, header };
  }
  return { ok: true, header };
}

/** The descriptor at 0x240, or undefined when absent or damaged (then the image is the reference). */
export function readDescriptor(image: Uint8Array): Descriptor | undefined {
  if (image.length < DESCRIPTOR_OFFSET + DESCRIPTOR_SIZE) return undefined;
  const d = image.subarray(DESCRIPTOR_OFFSET, DESCRIPTOR_OFFSET + DESCRIPTOR_SIZE);
  if (text(d, 0, 4) !== DESCRIPTOR_MAGIC) return undefined;
  const dv = view(d);
  if (dv.getUint16(0x04, true) !== 1 || dv.getUint16(0x06, true) !== DESCRIPTOR_SIZE) return undefined;
  if (dv.getUint32(0x1c, true) !== crc32(d.subarray(0, 0x1c))) return undefined;
  return { kind: dv.getUint32(0x08, true), defects: dv.getUint32(0x0c, true), params: [dv.getUint32(0x10, true), dv.getUint32(0x14, true), dv.getUint32(0x18, true)] };
}

/** The 32 descriptor bytes (for the fixtures script and tests). */
export function encodeDescriptor(d: { kind: number; defects: number; params?: readonly number[] }): Uint8Array {
  const b = new Uint8Array(DESCRIPTOR_SIZE);
  const dv = view(b);
  b.set(Buffer.from(DESCRIPTOR_MAGIC, 'latin1'), 0);
  dv.setUint16(0x04, 1, true);
  dv.setUint16(0x06, DESCRIPTOR_SIZE, true);
  dv.setUint32(0x08, d.kind >>> 0, true);
  dv.setUint32(0x0c, d.defects >>> 0, true);
  for (let i = 0; i < 3; i++) dv.setUint32(0x10 + 4 * i, (d.params?.[i] ?? 0) >>> 0, true);
  dv.setUint32(0x1c, crc32(b.subarray(0, 0x1c)), true);
  return b;
}

/** Defect names of a mask, in bit order. */
export function namesOf(mask: number): string[] {
  return Object.entries(defectNames)
    .filter(([bit]) => (mask & Number(bit)) !== 0)
    .map(([, name]) => name);
}
