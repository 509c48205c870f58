// The boot record `VBR1` (docs/virtual-mcu.md §4): two copies written ping-pong, each one erase unit, the
// valid copy with the higher sequence number in force; a swap status log of 8-byte entries after the record
// in the copy that holds a swapping or reverting record. A torn copy or entry fails its CRC and counts as
// absent, so a power cut while writing one leaves the previous state in force.
import { crc32 } from '../cloud/hash.ts';
import type { FlashWriter } from '../target/flash-writer.ts';
import type { McuLayout } from './layout.ts';

export const RecordState = { confirmed: 1, pending: 2, swapping: 3, trial: 4, reverting: 5 } as const;
export type RecordStateName = keyof typeof RecordState;
const stateNames = Object.fromEntries(Object.entries(RecordState).map(([k, v]) => [v, k])) as Record<number, RecordStateName>;

export const RECORD_SIZE = 32;
const LOG_ENTRY = 8;
const MAGIC = 'VBR1';

export interface BootRecord {
  seq: number;
  state: RecordStateName;
  /** Swap units to exchange (pending, swapping, trial, reverting). */
  units: number;
  /** Body CRC and length of the image being installed (pending, swapping, trial). */
  crc: number;
  length: number;
}

export interface LogEntry {
  unit: number;
  step: number;
}

export interface RecordCopy {
  index: 0 | 1;
  record: BootRecord | undefined;
  /** Why the copy does not count, when it does not. */
  why?: string;
}

/** The record in force, read from both copies. */
export interface RecordView {
  copies: [RecordCopy, RecordCopy];
  /** The valid copy with the higher sequence number; undefined when neither is valid. */
  inForce: (BootRecord & { copy: 0 | 1 }) | undefined;
  /** Status entries in the copy in force (swapping and reverting records). */
  log: LogEntry[];
  /** Offset (from the copy's start) of the first fully erased log slot; -1 when the log is full. */
  logNext: number;
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function encodeRecord(r: BootRecord): Uint8Array {
  const b = new Uint8Array(RECORD_SIZE);
  const dv = view(b);
  b.set(Buffer.from(MAGIC, 'latin1'), 0);
  dv.setUint32(0x04, r.seq >>> 0, true);
  dv.setUint32(0x08, RecordState[r.state], true);
  dv.setUint32(0x0c, r.units >>> 0, true);
  dv.setUint32(0x10, r.crc >>> 0, true);
  dv.setUint32(0x14, r.length >>> 0, true);
  dv.setUint32(0x18, 0xffffffff, true);
  dv.setUint32(0x1c, crc32(b.subarray(0, 0x1c)), true);
  return b;
}

export function decodeRecord(b: Uint8Array): BootRecord | string {
  if (b.subarray(0, RECORD_SIZE).every((x) => x === 0xff)) return 'erased';
  if (Buffer.from(b.subarray(0, 4)).toString('latin1') !== MAGIC) return 'no VBR1 magic';
  const dv = view(b);
  if (dv.getUint32(0x1c, true) !== crc32(b.subarray(0, 0x1c))) return 'record CRC does not match (torn)';
  const state = stateNames[dv.getUint32(0x08, true)];
  if (!state) return `unknown state ${dv.getUint32(0x08, true)}`;
  return { seq: dv.getUint32(0x04, true), state, units: dv.getUint32(0x0c, true), crc: dv.getUint32(0x10, true), length: dv.getUint32(0x14, true) };
}

export function encodeLogEntry(e: LogEntry): Uint8Array {
  const b = new Uint8Array(LOG_ENTRY);
  const dv = view(b);
  dv.setUint16(0, e.unit, true);
  b[2] = e.step;
  b[3] = e.step ^ 0xff;
  dv.setUint32(4, crc32(b.subarray(0, 4)), true);
  return b;
}

function decodeLogEntry(b: Uint8Array): LogEntry | undefined {
  const step = b[2]!;
  if (step < 1 || step > 3 || b[3] !== (step ^ 0xff)) return undefined;
  if (view(b).getUint32(4, true) !== crc32(b.subarray(0, 4))) return undefined;
  return { unit: view(b).getUint16(0, true), step };
}

/** Reads both copies from the flash array (offsets from the flash base). */
export function readRecord(flash: Uint8Array, layout: McuLayout): RecordView {
  const copies = layout.record.map((region, index) => {
    const at = region.address - layout.flashBase;
    const r = decodeRecord(flash.subarray(at, at + RECORD_SIZE));
    return typeof r === 'string' ? { index, record: undefined, why: r } : { index, record: r };
  }) as [RecordCopy, RecordCopy];
  const valid = copies.filter((c) => c.record !== undefined);
  const best = valid.sort((a, b) => b.record!.seq - a.record!.seq)[0];
  const inForce = best ? { ...best.record!, copy: best.index } : undefined;
  const log: LogEntry[] = [];
  let logNext = -1;
  if (inForce) {
    const region = layout.record[inForce.copy];
    const at = region.address - layout.flashBase;
    // Entries run until the first fully erased slot; a torn one (a cut while it was programmed) is skipped,
    // and the next write goes after it, since programmed bits cannot be written again without an erase.
    for (let off = RECORD_SIZE; off + LOG_ENTRY <= region.size; off += LOG_ENTRY) {
      const slot = flash.subarray(at + off, at + off + LOG_ENTRY);
      if (slot.every((x) => x === 0xff)) {
        logNext = off;
        break;
      }
      const e = decodeLogEntry(slot);
      if (e) log.push(e);
    }
  }
  return { copies, inForce, log, logNext };
}

/**
 * Writes `next` into the copy that does not hold the record in force (erase, then program), so a cut while it
 * is written leaves the old record in force. Returns the copy written.
 */
export async function writeRecord(writer: FlashWriter, layout: McuLayout, current: RecordView, next: Omit<BootRecord, 'seq'>): Promise<BootRecord & { copy: 0 | 1 }> {
  const copy: 0 | 1 = current.inForce ? (current.inForce.copy === 0 ? 1 : 0) : 0;
  const seq = (current.inForce?.seq ?? 0) + 1;
  const region = layout.record[copy];
  const at = region.address - layout.flashBase;
  const record: BootRecord = { seq, ...next };
  await writer.erase(writer.unitAt(at));
  await writer.program(at, encodeRecord(record));
  return { ...record, copy };
}

/** Appends a status entry to the log of the record in force; false when the log has no room left. */
export async function appendLog(writer: FlashWriter, layout: McuLayout, current: RecordView, entry: LogEntry): Promise<boolean> {
  if (!current.inForce || current.logNext < 0) return false;
  const at = layout.record[current.inForce.copy].address - layout.flashBase + current.logNext;
  await writer.program(at, encodeLogEntry(entry));
  return true;
}
