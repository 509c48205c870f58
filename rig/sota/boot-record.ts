// Reading the bootloader's own account of where an upgrade stands, chosen per station (config
// `mcu.bootRecord`), because bootloaders differ between products:
//   vmcu-1   the virtual MCU's record (docs/virtual-mcu.md §4): two ping-pong copies, magic `VBR1`, the valid
//            copy with the higher sequence number wins; no valid copy means "confirmed"
//   mcuboot  MCUboot's image trailer at the end of each slot (its public design: magic, image_ok, copy_done,
//            swap info, swap size, each field in its own 8-byte write unit, BOOT_MAX_ALIGN 8), mapped the
//            way MCUboot's own swap table maps it
//   none     no decoder: the verdict stands on the slots' bytes, the tapped version reports and the console
// A decoder is pure: it names the regions it needs and decodes their bytes, so every state is table-tested.
import type { BootRecordDecoderName, FlashRegion, McuLayout } from '../config/schema.ts';
import { crc32 } from '../images/crc.ts';

/** Where the bootloader says the device stands, in the verdict's words. */
export type BootPhase =
  /** Slot A runs and is final. */
  | 'confirmed'
  /** A new image waits in slot B for the next reset. */
  | 'pending'
  /** The slots are being exchanged (a reset resumes it). */
  | 'swapping'
  /** Slot A holds a new image that has not confirmed; the next reset reverts it. */
  | 'trial'
  /** The old image is being swapped back. */
  | 'reverting'
  /** The record exists but says nothing the decoder knows. */
  | 'unknown';

export interface BootRecord {
  decoder: Exclude<BootRecordDecoderName, 'none'>;
  phase: BootPhase;
  /** One line for a report: `seq 7 trial (2 units, image crc 0x1234abcd, 25344 bytes) from copy 1`. */
  summary: string;
  /** Decoder-specific fields, for the record. */
  fields: Record<string, string | number | boolean | null>;
}

export interface BootRecordDecoder {
  readonly name: Exclude<BootRecordDecoderName, 'none'>;
  /** The flash regions to read, in order. */
  regions(layout: McuLayout): FlashRegion[];
  /** Decodes what was read from `regions(layout)`, in the same order. */
  decode(layout: McuLayout, bytes: readonly Uint8Array[]): BootRecord;
}

const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

// ---- vmcu-1 ------------------------------------------------------------------------------------------

const VBR_MAGIC = 'VBR1';
const VBR_STATES: Record<number, BootPhase> = { 1: 'confirmed', 2: 'pending', 3: 'swapping', 4: 'trial', 5: 'reverting' };
const VBR_HEAD = 0x20;
const VBR_ENTRY = 8;

interface VbrCopy {
  seq: number;
  state: number;
  units: number;
  imageCrc: number;
  imageLength: number;
  /** The swap status log's valid entries, in order. */
  log: { unit: number; step: number }[];
}

function readVbrCopy(b: Uint8Array): VbrCopy | undefined {
  if (b.length < VBR_HEAD) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (new TextDecoder('latin1').decode(b.subarray(0, 4)) !== VBR_MAGIC) return undefined;
  if (crc32(b.subarray(0, 0x1c)) !== v.getUint32(0x1c, true)) return undefined;
  const log: { unit: number; step: number }[] = [];
  for (let at = VBR_HEAD; at + VBR_ENTRY <= b.length; at += VBR_ENTRY) {
    const e = b.subarray(at, at + VBR_ENTRY);
    if (e.every((x) => x === 0xff)) break;
    const step = e[2]!;
    // A torn entry (its CRC or its step's complement wrong) ends the log: the step it names was not done.
    if ((step ^ 0xff) !== e[3] || crc32(e.subarray(0, 4)) !== v.getUint32(at + 4, true)) break;
    log.push({ unit: v.getUint16(at, true), step });
  }
  return { seq: v.getUint32(4, true), state: v.getUint32(8, true), units: v.getUint32(0x0c, true), imageCrc: v.getUint32(0x10, true), imageLength: v.getUint32(0x14, true), log };
}

export const vmcu1Decoder: BootRecordDecoder = {
  name: 'vmcu-1',
  // Only the head and the swap log (3 entries a unit) are read: a 16 KiB sector copy over SWD costs seconds.
  regions: (layout) => {
    const units = Math.ceil(layout.slotA.size / (layout.swapUnit ?? 2048));
    return layout.record.map((r) => ({ address: r.address, size: Math.min(r.size, VBR_HEAD + VBR_ENTRY * 3 * units) }));
  },
  decode(_layout, bytes) {
    const copies = bytes.map((b, i) => ({ i, c: readVbrCopy(b), erased: b.every((x) => x === 0xff) }));
    const valid = copies.filter((x) => x.c !== undefined).sort((a, b) => b.c!.seq - a.c!.seq);
    const damaged = copies.filter((x) => !x.c && !x.erased).map((x) => x.i);
    const note = damaged.length > 0 ? `; copy ${damaged.join(', ')} neither valid nor erased (torn)` : '';
    const best = valid[0];
    if (!best) {
      // §4: an erased record area means confirmed (the bootloader writes seq 1 at its first boot).
      const fields: BootRecord['fields'] = { seq: null, state: null, copy: null, torn: damaged.length };
      return { decoder: 'vmcu-1', phase: 'confirmed', summary: `no valid copy: confirmed by default${note}`, fields };
    }
    const c = best.c!;
    const phase = VBR_STATES[c.state] ?? 'unknown';
    const last = c.log.at(-1);
    const parts = [`seq ${c.seq} ${phase === 'unknown' ? `state ${c.state}` : phase}`];
    if (c.units > 0 || c.imageLength > 0) parts.push(`(${c.units} units, image crc ${hex(c.imageCrc)}, ${c.imageLength} bytes)`);
    if (c.log.length > 0) parts.push(`swap log ${c.log.length} entries, last unit ${last!.unit + 1}/${c.units} step ${last!.step}`);
    return {
      decoder: 'vmcu-1',
      phase,
      summary: `${parts.join(' ')} from copy ${best.i}${note}`,
      fields: { seq: c.seq, state: c.state, units: c.units, imageCrc: c.imageCrc, imageLength: c.imageLength, copy: best.i, logEntries: c.log.length, torn: damaged.length },
    };
  },
};

// ---- mcuboot -----------------------------------------------------------------------------------------

/** MCUboot's trailer magic, as the bytes lie in flash. */
export const MCUBOOT_MAGIC = Uint8Array.from([0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80]);
/** The trailer fields the rig reads, each in its own BOOT_MAX_ALIGN (8) unit, counted back from the slot's end. */
const TRAILER_BYTES = 48;
const SWAP_TYPES: Record<number, string> = { 1: 'none', 2: 'test', 3: 'perm', 4: 'revert', 5: 'fail' };

type Magic = 'good' | 'unset' | 'bad';
type Flag = 'set' | 'unset' | 'bad';

interface Trailer {
  magic: Magic;
  imageOk: Flag;
  copyDone: Flag;
  swapType: string;
  swapSize: number | null;
}

function readTrailer(t: Uint8Array): Trailer {
  const end = t.length;
  const magicBytes = t.subarray(end - 16, end);
  const magic: Magic = magicBytes.every((x) => x === 0xff) ? 'unset' : magicBytes.every((x, i) => x === MCUBOOT_MAGIC[i]) ? 'good' : 'bad';
  const flag = (b: number): Flag => (b === 0xff ? 'unset' : b === 0x01 ? 'set' : 'bad');
  const info = t[end - 40]!;
  const sizeBytes = t.subarray(end - 48, end - 44);
  return {
    magic,
    imageOk: flag(t[end - 24]!),
    copyDone: flag(t[end - 32]!),
    swapType: info === 0xff ? 'none' : (SWAP_TYPES[info & 0x0f] ?? `0x${info.toString(16)}`),
    swapSize: sizeBytes.every((x) => x === 0xff) ? null : new DataView(sizeBytes.buffer, sizeBytes.byteOffset, 4).getUint32(0, true),
  };
}

const trailerOf = (r: FlashRegion): FlashRegion => ({ address: r.address + r.size - TRAILER_BYTES, size: TRAILER_BYTES });

export const mcubootDecoder: BootRecordDecoder = {
  name: 'mcuboot',
  regions: (layout) => [trailerOf(layout.slotA), trailerOf(layout.slotB)],
  decode(_layout, bytes) {
    const primary = readTrailer(bytes[0]!);
    const secondary = readTrailer(bytes[1]!);
    // MCUboot's swap table, in its order: the secondary slot's request first, then a primary in test.
    let phase: BootPhase;
    if (secondary.magic === 'good' && secondary.imageOk !== 'bad') phase = 'pending';
    else if (primary.magic === 'good' && secondary.magic === 'unset' && primary.imageOk === 'unset' && primary.copyDone === 'set') phase = 'trial';
    else if (primary.magic === 'good' && primary.copyDone === 'unset' && primary.swapType !== 'none') phase = primary.swapType === 'revert' ? 'reverting' : 'swapping';
    else if (primary.magic === 'unset' || primary.imageOk === 'set') phase = 'confirmed';
    else phase = 'unknown';
    const show = (t: Trailer) => `magic ${t.magic}, image_ok ${t.imageOk}, copy_done ${t.copyDone}, swap ${t.swapType}${t.swapSize !== null ? ` size ${t.swapSize}` : ''}`;
    const kind = phase === 'pending' ? ` (${secondary.imageOk === 'set' ? 'permanent' : 'test'})` : '';
    return {
      decoder: 'mcuboot',
      phase,
      summary: `${phase}${kind}: primary ${show(primary)}; secondary ${show(secondary)}`,
      fields: {
        primaryMagic: primary.magic,
        primaryImageOk: primary.imageOk,
        primaryCopyDone: primary.copyDone,
        primarySwapType: primary.swapType,
        secondaryMagic: secondary.magic,
        secondaryImageOk: secondary.imageOk,
      },
    };
  },
};

export function bootRecordDecoder(name: BootRecordDecoderName): BootRecordDecoder | undefined {
  return name === 'vmcu-1' ? vmcu1Decoder : name === 'mcuboot' ? mcubootDecoder : undefined;
}

/** Reads and decodes the boot record with `read` (the probe's readRegion); undefined without a decoder. */
export async function readBootRecord(name: BootRecordDecoderName, layout: McuLayout, read: (address: number, size: number) => Promise<Uint8Array>): Promise<BootRecord | undefined> {
  const d = bootRecordDecoder(name);
  if (!d) return undefined;
  const bytes: Uint8Array[] = [];
  for (const r of d.regions(layout)) bytes.push(await read(r.address, r.size));
  return d.decode(layout, bytes);
}
