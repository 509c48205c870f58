// Code that OpenOCD 0.12 loads into SRAM and runs on a Cortex-M, carried out natively. The virtual core
// has no instruction-set emulator; when the debugger starts it at an address whose bytes are exactly one
// of these routines (the bytes OpenOCD 0.12 uploads, recognised by length and SHA-256, with the register
// contract of its source under contrib/loaders/), it does what that routine does: the same bus accesses
// in the same order, through the same flash model, and halts at the routine's `bkpt` with the registers
// the routine leaves. Any other code in SRAM still cannot run: the core just "runs" and never halts.
//
// The flash loaders run concurrently with the debugger, as on silicon: OpenOCD fills a FIFO in SRAM (write
// pointer at its start, read pointer after it) while the routine drains it into flash. A routine here
// runs until it would wait (FIFO empty, flash busy) and is stepped again after the next debugger write to
// SRAM or when the flash model says a timed operation ended.

/** A bus fault on a core access: a real core would take a HardFault and never reach the breakpoint. */
export class CoreBusFault extends Error {
  constructor(readonly address: number) {
    super(`bus fault at 0x${address.toString(16).padStart(8, '0')}`);
  }
}

/** The core's view of the bus (every access may throw CoreBusFault). */
export interface CoreBus {
  read8(addr: number): number;
  read16(addr: number): number;
  read32(addr: number): number;
  write16(addr: number, value: number): void;
  write32(addr: number, value: number): void;
}

/** Advances a started routine; true once it reached its breakpoint (its registers are then final). */
export type AlgorithmStep = () => boolean;

export interface NativeAlgorithm {
  /** What it is, for logs: OpenOCD's source file. */
  readonly name: string;
  /** The routine's bytes as OpenOCD uploads them: their length and SHA-256. */
  readonly size: number;
  readonly sha256: string;
  /** Offset of its `bkpt` from the entry: where the PC stands when it halts. */
  readonly breakpointOffset: number;
  /** Starts it on the core's registers (r0… by number), which it updates when it halts. */
  start(regs: Uint32Array, bus: CoreBus): AlgorithmStep;
}

/** Where a FIFO-fed half-word flash loader keeps what, by register number, and how it reads the flash's SR. */
interface FifoLoaderSpec {
  name: string;
  size: number;
  sha256: string;
  breakpointOffset: number;
  /** Parameters: FIFO start (wp at +0, rp at +4, data from +8), FIFO end, flash address, half-words, flash registers. */
  fifo: number;
  end: number;
  address: number;
  count: number;
  flashRegs: number;
  /** Scratch registers: the write and read pointers as loaded. The status (r6 in both) is returned in r0. */
  wp: number;
  rp: number;
  /** SR's busy bit and the error bits that make the loader store rp = 0 (zeroing this register first) and stop. */
  busy: number;
  errors: number;
  errorZero: number;
  /** Written to CR before each half-word (the F4 loader sets PG | PSIZE_16 itself). */
  control?: number;
}

const STATUS = 6;

/**
 * The flash loaders' common loop: wait for wp ≠ rp (wp = 0 aborts), [CR = control,] copy *rp → *address, poll
 * SR until not busy, an error stores rp = 0 and stops, else store the advanced rp (wrapping to FIFO start +
 * 8) and count down. A step runs until the FIFO is empty or the flash busy, and resumes where it was.
 */
function fifoLoader(spec: FifoLoaderSpec): NativeAlgorithm {
  const { name, size, sha256, breakpointOffset } = spec;
  return {
    name,
    size,
    sha256,
    breakpointOffset,
    start(regs, bus) {
      const fifo = regs[spec.fifo]!;
      const fifoEnd = regs[spec.end]!;
      const flashRegs = regs[spec.flashRegs]!;
      /** Set between a half-word's write into flash and the end of the SR poll that follows it. */
      let rpAfterWrite: number | undefined;
      const exit = (): boolean => {
        regs[0] = regs[STATUS]!;
        return true;
      };
      return () => {
        for (;;) {
          if (rpAfterWrite === undefined) {
            const wp = bus.read32(fifo);
            regs[spec.wp] = wp;
            if (wp === 0) return exit();
            const rp = bus.read32(fifo + 4);
            regs[spec.rp] = rp;
            if (rp === wp) return false;
            if (spec.control !== undefined) {
              regs[STATUS] = spec.control;
              bus.write32(flashRegs + 0x10, spec.control);
            }
            const half = bus.read16(rp);
            regs[STATUS] = half;
            bus.write16(regs[spec.address]!, half);
            rpAfterWrite = (rp + 2) >>> 0;
            regs[spec.address] = (regs[spec.address]! + 2) >>> 0;
          }
          const sr = bus.read32(flashRegs + 0x0c);
          regs[STATUS] = sr;
          if (sr & spec.busy) return false;
          let rp = rpAfterWrite;
          rpAfterWrite = undefined;
          if (sr & spec.errors) {
            regs[spec.errorZero] = 0;
            bus.write32(fifo + 4, 0);
            return exit();
          }
          if (rp >= fifoEnd) rp = (fifo + 8) >>> 0;
          regs[spec.rp] = rp;
          bus.write32(fifo + 4, rp);
          regs[spec.count] = (regs[spec.count]! - 1) >>> 0;
          if (regs[spec.count] === 0) return exit();
        }
      };
    },
  };
}

/**
 * stm32f1x.S (OpenOCD 0.12 contrib/loaders/flash/stm32): r0 flash registers (in), status (out); r1 half-words;
 * r2 FIFO start; r3 FIFO end; r4 flash address; wp in r6, rp in r5; SR BSY bit 0, PGERR|WRPRTERR 0x14.
 */
const stm32f1xLoader = fifoLoader({
  name: 'contrib/loaders/flash/stm32/stm32f1x.S (OpenOCD 0.12)',
  size: 60,
  sha256: '235f3fe81b0e4e476a24939805f082bcc507b020e3db21ac341125725b63b601',
  breakpointOffset: 58,
  fifo: 2,
  end: 3,
  address: 4,
  count: 1,
  flashRegs: 0,
  wp: STATUS,
  rp: 5,
  busy: 0x01,
  errors: 0x14,
  errorZero: 0,
});

/**
 * stm32f2x.S (the stm32f4x driver's loader): r0 FIFO start (in), status (out); r1 FIFO end; r2 flash address;
 * r3 half-words; r4 flash registers; wp in r8, rp in r7; CR = PG | PSIZE_16 before each half-word; SR BSY
 * bit 16, PGSERR|PGPERR|PGAERR|WRPERR 0xF0 (r1 zeroed on an error).
 */
const stm32f2xLoader = fifoLoader({
  name: 'contrib/loaders/flash/stm32/stm32f2x.S (OpenOCD 0.12)',
  size: 76,
  sha256: '3dade9f8110399bc5f484e04987ce2037d892fd56634c89bcb6ceac57ced893d',
  breakpointOffset: 68,
  fifo: 0,
  end: 1,
  address: 2,
  count: 3,
  flashRegs: 4,
  wp: 8,
  rp: 7,
  busy: 0x10000,
  errors: 0xf0,
  errorZero: 1,
  control: 0x101,
});

/**
 * armv7m_crc.s (OpenOCD's verify_image on a Cortex-M): r0 address (in), CRC (out); r1 byte count. CRC-32
 * with polynomial 0x04C11DB7, MSB first, initial 0xFFFFFFFF, no final XOR, over byte loads.
 */
const armv7mCrc: NativeAlgorithm = {
  name: 'contrib/loaders/checksum/armv7m_crc.s (OpenOCD 0.12)',
  size: 52,
  sha256: 'c4ffd9f2d74e74f8cbf2da3f4296896216e477b1e1e130da7e1dbced0cff1c0d',
  breakpointOffset: 46,
  start(regs, bus) {
    return () => {
      const address = regs[0]!;
      const count = regs[1]!;
      let crc = 0xffffffff;
      let byte = 0;
      for (let i = 0; i < count; i++) {
        byte = bus.read8((address + i) >>> 0);
        crc ^= byte << 24;
        for (let b = 0; b < 8; b++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
      }
      regs[0] = crc >>> 0;
      if (count > 0) regs[1] = (byte << 24) >>> 0;
      regs[2] = address;
      regs[3] = count;
      regs[4] = count;
      if (count > 0) regs[5] = 8;
      regs[6] = 0x04c11db7;
      return true;
    };
  },
};

/**
 * armv7m_erase_check.s (`flash erase_check`): r0 points at { words-to-check | result, address } pairs ending
 * with a zero count; r1 the erased word. Each pair's first word becomes 1 (erased) or 0.
 */
const armv7mEraseCheck: NativeAlgorithm = {
  name: 'contrib/loaders/erase_check/armv7m_erase_check.s (OpenOCD 0.12)',
  size: 36,
  sha256: 'e6b158ea65a5358901089e821915cc1009376bf1665d1a17a273fd584c6a38d5',
  breakpointOffset: 34,
  start(regs, bus) {
    return () => {
      let block = regs[0]!;
      const erased = regs[1]!;
      for (;;) {
        let words = bus.read32(block);
        regs[2] = words;
        if (words === 0) break;
        let addr = bus.read32(block + 4);
        let result = 1;
        while (words > 0) {
          const w = bus.read32(addr);
          addr = (addr + 4) >>> 0;
          if (w !== erased) {
            result = 0;
            break;
          }
          words--;
        }
        regs[2] = words;
        regs[3] = addr;
        bus.write32(block, result);
        block = (block + 8) >>> 0;
      }
      regs[0] = block;
      return true;
    };
  },
};

export const nativeAlgorithms: readonly NativeAlgorithm[] = [stm32f1xLoader, stm32f2xLoader, armv7mCrc, armv7mEraseCheck];
