// Target memory for the flash and readback commands: read in chunks so the Recorder's progress hook can
// drive a bar, and images named the way the rest of the rig names them (a manifest version, or a file).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { FirmwareError } from '../errors.ts';
import { identifyContent } from '../images/identify.ts';
import { loadManifest } from '../images/manifest.ts';
import type { Probe } from '../probe/probe.ts';
import type { Recorder } from '../sota/recorder.ts';
import { UsageError } from './output.ts';
import { didYouMean } from './suggest.ts';

/** Bytes per read call: small enough for a bar that moves (≈ 0.15 s each at 110 KiB/s), large enough to cost little. */
export const READ_CHUNK = 16 * 1024;

export async function readWithProgress(probe: Probe, address: number, length: number, recorder: Recorder, phase: string, signal: AbortSignal): Promise<Buffer> {
  const out = Buffer.alloc(length);
  recorder.progress?.(phase, 0, length);
  for (let off = 0; off < length; off += READ_CHUNK) {
    const n = Math.min(READ_CHUNK, length - off);
    const chunk = await probe.readRegion(address + off, n, { signal });
    chunk.copy(out, off);
    recorder.progress?.(phase, off + n, length);
  }
  return out;
}

export interface NamedImage {
  /** "STM32 2_0_0 (manifest)" or the file path. */
  label: string;
  bytes: Uint8Array;
  version: string | undefined;
}

/** A manifest version (2_0_0) or a file path. */
export async function resolveImage(arg: string): Promise<NamedImage> {
  if (/^[A-Za-z0-9_.-]+$/.test(arg) && !existsSync(arg)) {
    const firmware = await loadManifest();
    if (!firmware.images.has(arg)) {
      throw new UsageError(`no image ${arg} in ${firmware.manifestPath}${didYouMean(arg, firmware.images.keys())}`, { expected: `a version (${[...firmware.images.keys()].join(', ')}) or a .bin file`, seen: arg });
    }
    const img = firmware.image(arg);
    return { label: `${img.component} ${img.version} (manifest)`, bytes: img.bytes, version: img.version };
  }
  try {
    return { label: arg, bytes: new Uint8Array(await readFile(arg)), version: undefined };
  } catch (err) {
    throw new UsageError(`cannot read image file ${arg}`, { expected: 'a readable file or a manifest version', seen: (err as Error).message });
  }
}

/** `slot`, `flash`, or `<address>:<length>` (decimal or 0x hex). */
export type Region = { kind: 'slot' } | { kind: 'flash' } | { kind: 'range'; address: number; length: number };

export function parseRegion(text: string | undefined): Region {
  if (text === undefined || text === 'slot') return { kind: 'slot' };
  if (text === 'flash') return { kind: 'flash' };
  const m = /^(0x[0-9a-f]+|\d+):(0x[0-9a-f]+|\d+)$/i.exec(text);
  if (!m) throw new UsageError(`not a region: ${text}${/^[a-z]+$/i.test(text) ? didYouMean(text, ['slot', 'flash']) : ''}`, { expected: 'slot, flash, or <address>:<length> (e.g. 0x08000000:0x6000)', seen: text });
  const num = (s: string): number => (s.toLowerCase().startsWith('0x') ? Number.parseInt(s, 16) : Number(s));
  const address = num(m[1]!);
  const length = num(m[2]!);
  if (address > 0xffff_ffff || length === 0 || address + length > 0x1_0000_0000) {
    throw new UsageError(`region ${text} is outside the 32-bit address space or empty`, { expected: 'a non-empty range below 4 GiB', seen: text });
  }
  return { kind: 'range', address, length };
}

export function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

export function imageTooLarge(station: string, bytes: number, slot: number): FirmwareError {
  return new FirmwareError(`the image does not fit the application slot`, { station, expected: `at most ${slot} bytes (layout.slotSize)`, seen: `${bytes} bytes` });
}

/**
 * What the bytes read are, by the bytes: a release of the manifest, part of one (a read shorter than an
 * image, or starting inside the slot), erased, or unknown (then what the component's locator makes of it).
 * A read that starts before the slot and covers its start is named from the slot on.
 */
export async function nameContent(bytes: Uint8Array, address: number, slotAddress: number, slotSize: number): Promise<string> {
  const firmware = await loadManifest().catch(() => undefined);
  const opts = { known: firmware?.images.values() ?? [], ...(firmware ? { locator: firmware.locator } : {}) };
  if (address < slotAddress && address + bytes.length > slotAddress) {
    const from = slotAddress - address;
    return `from the slot at ${hex(slotAddress)}: ${identifyContent(bytes.subarray(from), opts).text}`;
  }
  const inSlot = address >= slotAddress && address < slotAddress + slotSize;
  return identifyContent(bytes, { ...opts, offset: inSlot ? address - slotAddress : 0 }).text;
}
