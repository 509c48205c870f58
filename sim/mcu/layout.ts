// The virtual MCU's flash layout (docs/virtual-mcu.md §2): the same addresses on both parts, so one set of
// fixture images serves both; the sizes of the record copies, the swap unit and the scratch area follow the
// part's erase units (F1: 2 KiB pages; F4: sectors 1, 2 and 128 KiB sectors 5–7).
import type { TargetProfile } from '../target/profiles.ts';

export interface Region {
  address: number;
  size: number;
}

export interface McuLayout {
  flashBase: number;
  /** Bytes the swap exchanges at a time: the erase unit of the slots. */
  swapUnit: number;
  bootloader: Region;
  record: [Region, Region];
  slotA: Region;
  slotB: Region;
  scratch: Region;
}

const BOOTLOADER = 0x08000000;
const BOOTLOADER_SIZE = 16 * 1024;
const RECORD = 0x08004000;
const SLOT_A = 0x08020000;
const SLOT_B = 0x08040000;
const SLOT_SIZE = 128 * 1024;
const SCRATCH = 0x08060000;

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** The layout on this part, or why there is none (a flash too small for it). */
export function layoutFor(profile: TargetProfile): { layout: McuLayout } | { layout: null; why: string } {
  const base = profile.flashBase;
  const end = base + profile.flashSizeKiB * 1024;
  const unitAt = (address: number): Region | undefined => {
    const u = profile.units.find((x) => base + x.offset === address);
    return u ? { address, size: u.size } : undefined;
  };
  const record0 = unitAt(RECORD);
  const record1 = record0 && unitAt(RECORD + record0.size);
  const swapUnit = unitAt(SLOT_A)?.size;
  if (!record0 || !record1 || swapUnit === undefined) return { layout: null, why: `the ${profile.part} has no erase unit boundaries at ${hex(RECORD)} and ${hex(SLOT_A)}` };
  const scratchEnd = SCRATCH + swapUnit;
  if (scratchEnd > end) {
    return { layout: null, why: `the ${profile.part} flash ends at ${hex(end)}, before the scratch area ${hex(SCRATCH)}..${hex(scratchEnd)} the layout needs` };
  }
  // Every unit of both slots and the scratch must be one swap unit, or a unit-by-unit exchange cannot work.
  for (const slot of [SLOT_A, SLOT_B]) {
    for (let a = slot; a < slot + SLOT_SIZE; a += swapUnit) {
      if (unitAt(a)?.size !== swapUnit) return { layout: null, why: `the ${profile.part} has erase units of mixed sizes in ${hex(slot)}..${hex(slot + SLOT_SIZE)}` };
    }
  }
  if (unitAt(SCRATCH)?.size !== swapUnit) return { layout: null, why: `the ${profile.part} scratch unit at ${hex(SCRATCH)} is not ${swapUnit} bytes` };
  if (record1.address + record1.size > SLOT_A) return { layout: null, why: `the ${profile.part} boot record units overlap slot A` };
  return {
    layout: {
      flashBase: base,
      swapUnit,
      bootloader: { address: BOOTLOADER, size: BOOTLOADER_SIZE },
      record: [record0, record1],
      slotA: { address: SLOT_A, size: SLOT_SIZE },
      slotB: { address: SLOT_B, size: SLOT_SIZE },
      scratch: { address: SCRATCH, size: swapUnit },
    },
  };
}
