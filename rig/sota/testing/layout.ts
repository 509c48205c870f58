// The virtual MCU's layout on a 512 KiB STM32F1 (docs/virtual-mcu.md §2) as a station's config declares it:
// the one layout the unit tests of the MCU side (boot records, dut checks, doctor) share.
import type { McuLayout } from '../../config/schema.ts';

export const vmcuLayout: McuLayout = {
  bootloader: { address: 0x0800_0000, size: 0x4000 },
  record: [
    { address: 0x0800_4000, size: 0x800 },
    { address: 0x0800_4800, size: 0x800 },
  ],
  slotA: { address: 0x0802_0000, size: 0x20000 },
  slotB: { address: 0x0804_0000, size: 0x20000 },
  scratch: { address: 0x0806_0000, size: 0x800 },
  swapUnit: 0x800,
};
