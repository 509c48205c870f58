// The routines the virtual core carries out natively, driven the way OpenOCD drives them (registers through
// DCRSR/DCRDR, a resume through DHCSR, the FIFO filled by debugger writes to SRAM) on the chip's own bus and
// flash rules. OpenOCD's own routine bytes are not part of the repository: here each routine is recognised
// by a stand-in fingerprint of test bytes (sim/jtag/openocd.test.ts has the real openocd upload the real
// ones). The rules under test are the routines' documented effects and the silicon's: what a loader does
// with a half-word the flash refuses, a power cut or a reset midway, a bus fault, a halt by the debugger.
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { nativeAlgorithms, type NativeAlgorithm } from './algorithms.ts';
import { KEY1, KEY2 } from './flash.ts';
import { Stm32Target, type TargetEvents } from './stm32.ts';
import type { TargetName } from './profiles.ts';

const FLASH = 0x08000000;
const SRAM = 0x20000000;
const DHCSR = 0xe000edf0;
const DCRSR = 0xe000edf4;
const DCRDR = 0xe000edf8;
const DFSR = 0xe000ed30;
const S_HALT = 1 << 17;
/** Where the test puts the routine, and its FIFO (wp, rp, then data) as OpenOCD would allocate them. */
const CODE = SRAM;
const FIFO = SRAM + 0x100;

const CODE_BYTES = Buffer.from('not thumb code: a stand-in for the routine OpenOCD uploads', 'latin1');

function standIn(source: string): NativeAlgorithm {
  const real = nativeAlgorithms.find((a) => a.name.includes(source));
  if (!real) throw new Error(`no routine ${source}`);
  return { ...real, size: CODE_BYTES.length, sha256: createHash('sha256').update(CODE_BYTES).digest('hex') };
}

/** A chip with the routine uploaded, driven through its debug registers. */
function chip(target: TargetName, source: string) {
  const routine = standIn(source);
  const t = new Stm32Target({ target, flashSizeKiB: target === 'stm32f1x' ? 128 : 256, algorithms: [routine] });
  const events: string[] = [];
  t.on('algorithm', (_name, outcome: TargetEvents['algorithm'][1]) => events.push(outcome));
  const coreStates: string[] = [];
  t.on('core', (state) => coreStates.push(state));
  const w = (addr: number, value: number, size = 4): void => {
    t.write(addr, size, value);
    expect(t.fault, `bus fault writing 0x${addr.toString(16)}`).toBe(false);
  };
  const r = (addr: number): number => {
    const v = t.read32(addr) >>> 0;
    expect(t.fault).toBe(false);
    return v;
  };
  w(DHCSR, 0xa05f0003); // debug enabled, halted
  for (let i = 0; i < CODE_BYTES.length; i++) w(CODE + i, CODE_BYTES[i]!, 1);
  const reg = {
    set(n: number, v: number): void {
      w(DCRDR, v >>> 0);
      w(DCRSR, 0x10000 | n);
    },
    get(n: number): number {
      w(DCRSR, n);
      return r(DCRDR);
    },
  };
  return {
    t,
    events,
    coreStates,
    w,
    r,
    reg,
    breakpoint: CODE + routine.breakpointOffset,
    /** What OpenOCD's cortex_m_resume amounts to for the core: PC, then DHCSR without C_HALT. */
    run(regs: Record<number, number>): void {
      for (const [n, v] of Object.entries(regs)) reg.set(Number(n), v);
      reg.set(15, CODE | 1);
      w(DHCSR, 0xa05f0001);
    },
    halted: (): boolean => (r(DHCSR) & S_HALT) !== 0,
    unlockF1(): void {
      w(0x40022004, KEY1);
      w(0x40022004, KEY2);
      w(0x40022010, 0x1); // PG, as stm32f1x.c sets it before starting its loader
    },
    /** stm32f1x.c's start: PG set, an empty FIFO at FIFO, the loader run with its parameters. */
    startF1(halfWords: number, fifoEnd: number, address: number): void {
      this.unlockF1();
      w(FIFO, FIFO + 8);
      w(FIFO + 4, FIFO + 8);
      this.run({ 0: 0x40022000, 1: halfWords, 2: FIFO, 3: fifoEnd, 4: address });
    },
    /** stm32f2x.c's start: unlocked (the loader sets PG itself), an empty FIFO, the loader run. */
    startF4(halfWords: number, fifoEnd: number, address: number): void {
      w(0x40023c04, KEY1);
      w(0x40023c04, KEY2);
      w(FIFO, FIFO + 8);
      w(FIFO + 4, FIFO + 8);
      this.run({ 0: FIFO, 1: fifoEnd, 2: address, 3: halfWords, 4: 0x40023c00 });
    },
  };
}

/** Debugger writes of a FIFO chunk: the data words, then the write pointer, as target_run_flash_async_algorithm does. */
function fill(c: ReturnType<typeof chip>, at: number, data: Buffer): number {
  for (let i = 0; i < data.length; i += 4) c.w(at + i, data.readUInt32LE(i));
  return at + data.length;
}

function halves(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeUInt16LE((seed * 7919 + i * 104729) & 0xfffe, i * 2);
  return b;
}

describe('stm32f1x flash loader', () => {
  test('drains the FIFO into flash as the debugger fills it, wraps, and halts at its breakpoint with SR in r0', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.unlockF1();
    const start = FIFO + 8;
    const end = start + 24; // room for 12 half-words (OpenOCD never fills it: wp = rp means empty)
    const data = halves(16, 1);
    c.w(FIFO, start);
    c.w(FIFO + 4, start);
    c.coreStates.length = 0;
    c.run({ 0: 0x40022000, 1: 16, 2: FIFO, 3: end, 4: FLASH + 0x800 });
    expect(c.events).toEqual(['started']);
    // Running, but not the firmware: the virtual MCU's program stays frozen where the debugger halted it.
    expect(c.t.coreState).toBe('debug-running');
    expect(c.coreStates).toEqual(['debug-running']);

    const wp = fill(c, start, data.subarray(0, 16));
    expect(c.r(FIFO + 4)).toBe(start); // nothing consumed before the write pointer moved
    c.w(FIFO, wp);
    expect(c.r(FIFO + 4)).toBe(wp);
    fill(c, wp, data.subarray(16, 24)); // up to the end of the FIFO: the write pointer wraps
    c.w(FIFO, start);
    expect(c.r(FIFO + 4)).toBe(start); // the read pointer wrapped too
    expect(c.t.readFlash(0x800, 24).equals(data.subarray(0, 24))).toBe(true);
    expect(c.halted()).toBe(false);

    c.w(FIFO, fill(c, start, data.subarray(24, 32)));
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.halted()).toBe(true);
    expect(c.coreStates).toEqual(['debug-running', 'halted']);
    expect(c.t.readFlash(0x800, 32).equals(data)).toBe(true);
    expect(c.t.readFlash(0x800 + 32, 8).equals(Buffer.alloc(8, 0xff))).toBe(true);
    expect(c.reg.get(15)).toBe(c.breakpoint);
    expect(c.r(DFSR) & 0x2).toBe(0x2); // BKPT
    expect(c.reg.get(0) & 0x14).toBe(0); // SR without PGERR/WRPRTERR
    expect(c.reg.get(4)).toBe(FLASH + 0x800 + 32); // the target address, advanced
    expect(c.r(FIFO + 4)).toBe(start + 8);
  });

  test('a half-word the FPEC refuses (not erased): rp = 0, halts with PGERR in r0, the cell keeps its value', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.t.loadFlash(Buffer.from([0x34, 0x12]), 0x802);
    c.startF1(4, FIFO + 0x40, FLASH + 0x800);
    c.w(FIFO, fill(c, FIFO + 8, Buffer.from([0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd])));
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.r(FIFO + 4)).toBe(0);
    expect(c.reg.get(0) & 0x4).toBe(0x4);
    expect(c.t.readFlash(0x800, 6)).toEqual(Buffer.from([0xaa, 0xaa, 0x34, 0x12, 0xff, 0xff]));
  });

  test('a write pointer of 0 (the debugger aborting) halts it with r0 = 0 and nothing written', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.startF1(100, FIFO + 0x40, FLASH);
    c.w(FIFO, 0);
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.reg.get(0)).toBe(0);
    expect(c.t.readFlash(0, 16).equals(Buffer.alloc(16, 0xff))).toBe(true);
  });

  test('a power cut midway leaves the flash torn where the loader was: written before, erased after', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    const data = halves(32, 2);
    c.startF1(32, FIFO + 8 + 64, FLASH + 0x1000);
    c.w(FIFO, fill(c, FIFO + 8, data.subarray(0, 20)));
    c.t.setPower(false);
    expect(c.events).toEqual(['started', 'interrupted']);
    c.t.setPower(true);
    expect(c.t.readFlash(0x1000, 20).equals(data.subarray(0, 20))).toBe(true);
    expect(c.t.readFlash(0x1000 + 20, 44).equals(Buffer.alloc(44, 0xff))).toBe(true);
    expect(c.t.flashInterface.locked).toBe(true);
    expect(c.t.coreState).toBe('running'); // a power-on reset: the core runs the (erased) vector table
  });

  test('NRST midway interrupts it; the flash interface relocks; later FIFO writes program nothing', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.startF1(8, FIFO + 0x40, FLASH);
    c.w(FIFO, fill(c, FIFO + 8, halves(2, 3)));
    c.t.reset();
    expect(c.events).toEqual(['started', 'interrupted']);
    expect(c.t.flashInterface.locked).toBe(true);
    c.w(FIFO, fill(c, FIFO + 12, halves(2, 4)));
    expect(c.t.readFlash(4, 4).equals(Buffer.alloc(4, 0xff))).toBe(true);
  });

  test('a bus fault (flash address off the map) loses the core in its fault handler: it never halts', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.startF1(2, FIFO + 0x40, 0x30000000);
    c.w(FIFO, fill(c, FIFO + 8, halves(2, 5)));
    expect(c.events).toEqual(['started', 'fault']);
    expect(c.halted()).toBe(false);
    expect(c.t.coreState).toBe('debug-running'); // in a fault handler, still not the firmware
    expect(c.t.fault).toBe(false); // the core's fault is not the debug port's sticky error
    c.w(DHCSR, 0xa05f0003);
    expect(c.t.coreState).toBe('halted');
    c.reg.set(15, FLASH + 0x100);
    c.w(DHCSR, 0xa05f0001);
    expect(c.t.coreState).toBe('running');
  });

  test('a halt from the debugger stops it; resuming elsewhere starts nothing', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.startF1(8, FIFO + 0x40, FLASH);
    c.w(DHCSR, 0xa05f0003);
    c.w(FIFO, fill(c, FIFO + 8, halves(2, 6)));
    expect(c.events).toEqual(['started', 'interrupted']);
    expect(c.t.readFlash(0, 4).equals(Buffer.alloc(4, 0xff))).toBe(true);
    c.reg.set(15, FLASH + 0x100);
    c.w(DHCSR, 0xa05f0001);
    expect(c.events).toEqual(['started', 'interrupted']);
  });

  test('code that is not a known routine (one byte differs) does not run: no event, no halt, no flash write', () => {
    const c = chip('stm32f1x', 'stm32f1x.S');
    c.w(CODE + 5, CODE_BYTES[5]! ^ 1, 1);
    c.startF1(2, FIFO + 0x40, FLASH);
    c.w(FIFO, fill(c, FIFO + 8, halves(2, 7)));
    expect(c.events).toEqual([]);
    expect(c.t.coreState).toBe('running');
    expect(c.r(FIFO + 4)).toBe(FIFO + 8);
    expect(c.t.readFlash(0, 4).equals(Buffer.alloc(4, 0xff))).toBe(true);
  });
});

describe('stm32f2x flash loader (the F4)', () => {
  test('sets PG | PSIZE_16 itself, programs each half-word, halts with the count done', () => {
    const c = chip('stm32f4x', 'stm32f2x.S');
    const data = halves(10, 8);
    c.startF4(10, FIFO + 0x200, FLASH + 0x4000);
    c.w(FIFO, fill(c, FIFO + 8, data));
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.t.readFlash(0x4000, 20).equals(data)).toBe(true);
    expect(c.t.read32(0x40023c10) & 0x301).toBe(0x101);
    expect(c.reg.get(0) & 0xf0).toBe(0);
    expect(c.reg.get(15)).toBe(c.breakpoint);
  });

  test('a write-protected sector: WRPERR, rp = 0, r1 = 0, halts; the sector is untouched', () => {
    const c = chip('stm32f4x', 'stm32f2x.S');
    c.t.flashInterface.setWriteProtected([1]);
    c.startF4(2, FIFO + 0x200, FLASH + 0x4000);
    c.w(FIFO, fill(c, FIFO + 8, halves(2, 9)));
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.r(FIFO + 4)).toBe(0);
    expect(c.reg.get(1)).toBe(0);
    expect(c.reg.get(0) & 0x10).toBe(0x10);
    expect(c.t.readFlash(0x4000, 4).equals(Buffer.alloc(4, 0xff))).toBe(true);
  });
});

describe('checksum and erase check', () => {
  test('armv7m_crc: CRC-32/MPEG-2 of the bytes (check value of "123456789" is 0x0376E6E7)', () => {
    const c = chip('stm32f1x', 'armv7m_crc.s');
    c.t.loadFlash(Buffer.from('123456789', 'latin1'), 0x3001);
    c.run({ 0: FLASH + 0x3001, 1: 9 });
    expect(c.events).toEqual(['started', 'halted']);
    expect(c.reg.get(0)).toBe(0x0376e6e7);
    expect(c.reg.get(15)).toBe(c.breakpoint);
  });

  test('armv7m_crc over an unmapped range: a bus fault, no halt', () => {
    const c = chip('stm32f1x', 'armv7m_crc.s');
    c.run({ 0: 0x30000000, 1: 4 });
    expect(c.events).toEqual(['started', 'fault']);
    expect(c.halted()).toBe(false);
  });

  test('armv7m_erase_check: each block result 1 when every word is the erased value, else 0', () => {
    const c = chip('stm32f1x', 'armv7m_erase_check.s');
    c.t.loadFlash(Buffer.from([0x00]), 0x1800 + 0x7ff);
    const params = SRAM + 0x400;
    c.w(params, 0x800 / 4);
    c.w(params + 4, FLASH + 0x1000);
    c.w(params + 8, 0x800 / 4);
    c.w(params + 12, FLASH + 0x1800);
    c.w(params + 16, 0);
    c.run({ 0: params, 1: 0xffffffff });
    expect(c.events).toEqual(['started', 'halted']);
    expect([c.r(params), c.r(params + 8)]).toEqual([1, 0]);
  });
});
