// The two STM32 parts the virtual station can be. Identification values are the ones OpenOCD's
// target/stm32f1x.cfg and target/stm32f4x.cfg and their flash drivers expect (docs/virtual-station.md, OpenOCD §2.2,
// §3.1, §4.1); a wrong value here shows up as an "UNEXPECTED" TAP or an unknown device in OpenOCD's log.

export type TargetName = 'stm32f1x' | 'stm32f4x';
export const targetNames: readonly TargetName[] = ['stm32f1x', 'stm32f4x'];

export interface FlashUnit {
  /** Offset from the start of flash. */
  offset: number;
  size: number;
}

export interface TargetProfile {
  name: TargetName;
  /** Human name for logs: "STM32F407 (1024 KiB)". */
  part: string;
  /** JTAG-DP IDCODE of the CPU TAP (the one OpenOCD's cfg checks). */
  cpuTapId: number;
  /** IDCODE of the boundary-scan TAP (not checked by OpenOCD 0.12, but reported). */
  bsTapId: number;
  /** SCB CPUID: the partno must be a Cortex-M OpenOCD knows. */
  cpuid: number;
  /** DBGMCU_IDCODE at 0xE0042000: DEV_ID picks the flash driver's device table entry. */
  dbgmcuIdcode: number;
  flashBase: number;
  flashSizeKiB: number;
  /** Erase units: 2 KiB pages on the F103 high-density, sectors of 16/64/128 KiB on the F407. */
  units: readonly FlashUnit[];
  /** 16-bit flash-size register (KiB), read by the flash drivers' auto-probe. */
  flashSizeRegAddr: number;
  /** 96-bit unique device ID. */
  uidAddr: number;
  sramBase: number;
  sramSize: number;
  /** Base of the flash interface registers. */
  flashRegBase: number;
  /** How long the MCU's own flash operations take (docs/virtual-mcu.md §5). */
  flashTiming: FlashTiming;
}

/**
 * Datasheet typicals of the MCU's own erases and programs, in protocol ms (scaled by the sim clock). The
 * debugger's writes through the flash interface stay instantaneous.
 */
export interface FlashTiming {
  /** Bytes one program operation writes: a half-word on the F1, a word (PSIZE x32) on the F4. */
  cellSize: 2 | 4;
  programCellMs: number;
  /** Erase time by erase-unit size in bytes. */
  eraseMs: Readonly<Record<number, number>>;
}

const KiB = 1024;

function f1Pages(sizeKiB: number): FlashUnit[] {
  const pages: FlashUnit[] = [];
  for (let off = 0; off < sizeKiB * KiB; off += 2 * KiB) pages.push({ offset: off, size: 2 * KiB });
  return pages;
}

function f4Sectors(sizeKiB: number): FlashUnit[] {
  const sizes = [16, 16, 16, 16, 64];
  let total = 16 * 4 + 64;
  while (total < sizeKiB) {
    sizes.push(128);
    total += 128;
  }
  const sectors: FlashUnit[] = [];
  let off = 0;
  for (const s of sizes) {
    if (off >= sizeKiB * KiB) break;
    sectors.push({ offset: off, size: s * KiB });
    off += s * KiB;
  }
  return sectors;
}

/**
 * Builds a profile. F103 high density: 256–512 KiB in 2 KiB pages (DEV_ID 0x414). F407: 128 KiB upwards in
 * sectors 4×16 + 64 + n×128 KiB, at most 1024 KiB (12 sectors, single bank, DEV_ID 0x413).
 */
export function targetProfile(name: TargetName, flashSizeKiB?: number): TargetProfile {
  if (name === 'stm32f1x') {
    const size = flashSizeKiB ?? 512;
    if (!Number.isInteger(size) || size < 2 || size > 512 || size % 2 !== 0) {
      throw new RangeError(`stm32f1x flash size must be an even number of KiB from 2 to 512, got ${flashSizeKiB}`);
    }
    return {
      name,
      part: `STM32F103 high density (${size} KiB)`,
      cpuTapId: 0x3ba00477,
      bsTapId: 0x06414041,
      cpuid: 0x411fc231,
      dbgmcuIdcode: 0x10036414,
      flashBase: 0x08000000,
      flashSizeKiB: size,
      units: f1Pages(size),
      flashSizeRegAddr: 0x1ffff7e0,
      uidAddr: 0x1ffff7e8,
      sramBase: 0x20000000,
      sramSize: 64 * KiB,
      flashRegBase: 0x40022000,
      // STM32F103xC/D/E datasheet: tPROG 52.5 µs (half-word), tERASE 20 ms (page).
      flashTiming: { cellSize: 2, programCellMs: 0.052, eraseMs: { [2 * KiB]: 20 } },
    };
  }
  const size = flashSizeKiB ?? 1024;
  const sectors = f4Sectors(size);
  const covered = sectors.reduce((n, s) => n + s.size, 0);
  if (!Number.isInteger(size) || size < 16 || size > 1024 || covered !== size * KiB) {
    throw new RangeError(
      `stm32f4x flash size must end on a sector boundary (16, 32, 48, 64, 128, 256, 384 … 1024 KiB), got ${flashSizeKiB}`,
    );
  }
  return {
    name,
    part: `STM32F407 (${size} KiB)`,
    cpuTapId: 0x4ba00477,
    bsTapId: 0x06413041,
    cpuid: 0x410fc241,
    dbgmcuIdcode: 0x10076413,
    flashBase: 0x08000000,
    flashSizeKiB: size,
    units: sectors,
    flashSizeRegAddr: 0x1fff7a22,
    uidAddr: 0x1fff7a10,
    sramBase: 0x20000000,
    sramSize: 128 * KiB,
    flashRegBase: 0x40023c00,
    // STM32F405/407 datasheet, x32 parallelism: tPROG 16 µs (word), tERASE 250/550/1000 ms (16/64/128 KiB).
    flashTiming: { cellSize: 4, programCellMs: 0.016, eraseMs: { [16 * KiB]: 250, [64 * KiB]: 550, [128 * KiB]: 1000 } },
  };
}
