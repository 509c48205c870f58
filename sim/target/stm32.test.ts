// The STM32 model on its own bus: flash rules of both flash interfaces, identification registers, and the
// Cortex-M reset/halt behaviour OpenOCD relies on.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { Rails } from '../rails.ts';
import { KEY1, KEY2 } from './flash.ts';
import { Stm32Target } from './stm32.ts';

const FLASH = 0x08000000;
const DHCSR = 0xe000edf0;
const DEMCR = 0xe000edfc;
const AIRCR = 0xe000ed0c;
const DFSR = 0xe000ed30;
const S_HALT = 1 << 17;
const S_RESET_ST = 1 << 25;

/** Bus helpers that fail loudly on an unexpected fault. */
function bus(t: Stm32Target) {
  return {
    r32(addr: number): number {
      const v = t.read32(addr);
      expect(t.fault, `bus fault reading 0x${addr.toString(16)}`).toBe(false);
      return v >>> 0;
    },
    w(addr: number, value: number, size = 4): void {
      t.write(addr, size, value);
      expect(t.fault, `bus fault writing 0x${addr.toString(16)}`).toBe(false);
    },
    /** A write that must fault on the bus; clears the fault. */
    wFault(addr: number, value: number, size = 4): void {
      t.write(addr, size, value);
      expect(t.fault, `expected a bus fault writing 0x${addr.toString(16)}`).toBe(true);
      t.fault = false;
    },
  };
}

describe('STM32F407 flash interface', () => {
  const KEYR = 0x40023c04;
  const SR = 0x40023c0c;
  const CR = 0x40023c10;
  const PGSERR = 1 << 7;
  const PGPERR = 1 << 6;
  const WRPERR = 1 << 4;
  const LOCK = 0x80000000;
  const PG16 = 0x101;

  function unlocked(): { t: Stm32Target; b: ReturnType<typeof bus> } {
    const t = new Stm32Target({ target: 'stm32f4x', flashSizeKiB: 1024 });
    const b = bus(t);
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    expect(b.r32(CR) & LOCK).toBe(0);
    return { t, b };
  }

  test('is locked after reset, and a write into flash outside a program sequence raises PGSERR', () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const b = bus(t);
    expect(b.r32(CR) >>> 0).toBe(LOCK);
    b.w(CR, PG16); // ignored while locked
    expect(b.r32(CR) >>> 0).toBe(LOCK);
    b.w(FLASH, 0x1234, 2);
    expect(b.r32(SR) & PGSERR).toBe(PGSERR);
    expect(b.r32(FLASH)).toBe(0xffffffff);
    b.w(SR, PGSERR); // write-1-to-clear
    expect(b.r32(SR)).toBe(0);
  });

  test('programming only clears bits', () => {
    const { t, b } = unlocked();
    b.w(CR, PG16);
    b.w(FLASH + 2, 0x0ff0, 2);
    b.w(FLASH + 2, 0xff00, 2);
    expect(b.r32(FLASH)).toBe(0x0f00ffff);
    expect(t.readFlash(0, 4)).toEqual(Buffer.from([0xff, 0xff, 0x00, 0x0f]));
    expect(b.r32(SR)).toBe(0);
  });

  test('a defective range (admin fault): its cells ignore or garble a write with no error bit; the rest programs as usual', () => {
    for (const kind of ['ignore', 'garble'] as const) {
      const { t, b } = unlocked();
      t.flash.defect = { kind, offset: 2, length: 2 };
      b.w(CR, PG16);
      b.w(FLASH, 0x1234, 2);
      b.w(FLASH + 2, 0x5678, 2);
      expect(b.r32(SR)).toBe(0);
      expect(t.readFlash(0, 2)).toEqual(Buffer.from([0x34, 0x12]));
      expect(t.readFlash(2, 2)).toEqual(kind === 'ignore' ? Buffer.from([0xff, 0xff]) : Buffer.from([0x78 ^ 0x5a, 0x56 ^ 0x5a]));
    }
  });

  test('an access that does not match PSIZE raises PGPERR and writes nothing', () => {
    const { b } = unlocked();
    b.w(CR, PG16);
    b.w(FLASH, 0x12345678, 4);
    expect(b.r32(SR) & PGPERR).toBe(PGPERR);
    expect(b.r32(FLASH)).toBe(0xffffffff);
  });

  test('a wrong key locks the interface with a bus error until the next reset', () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const b = bus(t);
    b.w(KEYR, KEY1);
    b.wFault(KEYR, 0xdeadbeef);
    b.wFault(KEYR, KEY1);
    b.wFault(KEYR, KEY2);
    expect(b.r32(CR) >>> 0).toBe(LOCK);
    t.reset();
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    expect(b.r32(CR) & LOCK).toBe(0);
  });

  test('sector erase sets exactly that sector to 0xFF; the lock bit and a reset relock', () => {
    const { t, b } = unlocked();
    t.loadFlash(Buffer.alloc(0x20000, 0x00));
    b.w(CR, 0x00010002 | (1 << 3)); // SER, SNB = 1 (0x4000..0x7FFF), STRT
    expect(t.readFlash(0x3fff, 1)[0]).toBe(0x00);
    expect(t.readFlash(0x4000, 0x4000).every((x) => x === 0xff)).toBe(true);
    expect(t.readFlash(0x8000, 1)[0]).toBe(0x00);
    b.w(CR, LOCK);
    expect(t.flashInterface.locked).toBe(true);
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    t.reset();
    expect(t.flashInterface.locked).toBe(true);
  });

  test('a write-protected sector refuses erase and program with WRPERR', () => {
    const { t, b } = unlocked();
    t.flashInterface.setWriteProtected([0]);
    b.w(CR, 0x00010002); // erase sector 0
    expect(b.r32(SR) & WRPERR).toBe(WRPERR);
    b.w(SR, WRPERR);
    b.w(CR, PG16);
    b.w(FLASH, 0, 2);
    expect(b.r32(SR) & WRPERR).toBe(WRPERR);
    expect(t.readFlash(0, 2)).toEqual(Buffer.from([0xff, 0xff]));
  });

  test('identification: DBGMCU_IDCODE, 16-bit flash size in the upper half-word at 0x1FFF7A20', () => {
    const b = bus(new Stm32Target({ target: 'stm32f4x', flashSizeKiB: 512 }));
    expect(b.r32(0xe0042000)).toBe(0x10076413);
    expect(b.r32(0x1fff7a20) >>> 16).toBe(512);
    expect(b.r32(0xe000ed00)).toBe(0x410fc241);
  });
});

describe('STM32F103 flash interface', () => {
  const KEYR = 0x40022004;
  const SR = 0x4002200c;
  const CR = 0x40022010;
  const AR = 0x40022014;
  const PGERR = 1 << 2;
  const EOP = 1 << 5;

  function unlocked(): { t: Stm32Target; b: ReturnType<typeof bus> } {
    const t = new Stm32Target({ target: 'stm32f1x', flashSizeKiB: 512 });
    const b = bus(t);
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    expect(b.r32(CR) & 0x80).toBe(0);
    return { t, b };
  }

  test('accepts the key pair again while unlocked; a wrong key faults and locks until reset', () => {
    const { t, b } = unlocked();
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    expect(t.flashInterface.locked).toBe(false);
    b.wFault(KEYR, 0x1);
    expect(t.flashInterface.locked).toBe(true);
    b.wFault(KEYR, KEY1);
    t.reset();
    b.w(KEYR, KEY1);
    b.w(KEYR, KEY2);
    expect(t.flashInterface.locked).toBe(false);
  });

  test('programs half-words only into erased cells: anything else is PGERR (0x0000 excepted)', () => {
    const { t, b } = unlocked();
    b.w(CR, 0x1); // PG
    b.w(FLASH, 0x1234, 2);
    expect(b.r32(SR) & EOP).toBe(EOP);
    b.w(FLASH, 0x1030, 2); // would only clear bits, but the cell is not erased
    expect(b.r32(SR) & PGERR).toBe(PGERR);
    expect(t.readFlash(0, 2)).toEqual(Buffer.from([0x34, 0x12]));
    b.w(SR, PGERR | EOP);
    b.w(FLASH, 0x0000, 2);
    expect(b.r32(SR) & PGERR).toBe(0);
    expect(t.readFlash(0, 2)).toEqual(Buffer.from([0, 0]));
    b.wFault(FLASH + 4, 0x11223344, 4); // RM0008: not a half-word → bus error
  });

  test('page erase clears the 2 KiB page at AR; mass erase the whole array', () => {
    const { t, b } = unlocked();
    t.loadFlash(Buffer.alloc(0x3000, 0));
    b.w(CR, 0x2); // PER
    b.w(AR, FLASH + 0x800 + 0x123);
    b.w(CR, 0x42); // PER | STRT
    expect(t.readFlash(0x7ff, 1)[0]).toBe(0);
    expect(t.readFlash(0x800, 0x800).every((x) => x === 0xff)).toBe(true);
    expect(t.readFlash(0x1000, 1)[0]).toBe(0);
    b.w(CR, 0x4);
    b.w(CR, 0x44); // MER | STRT
    expect(t.readFlash().every((x) => x === 0xff)).toBe(true);
    b.w(CR, 0x80);
    expect(t.flashInterface.locked).toBe(true);
  });

  test('identification: DBGMCU_IDCODE and the flash-size register at 0x1FFFF7E0', () => {
    const b = bus(new Stm32Target({ target: 'stm32f1x', flashSizeKiB: 256 }));
    expect(b.r32(0xe0042000)).toBe(0x10036414);
    expect(b.r32(0x1ffff7e0) & 0xffff).toBe(256);
    expect(b.r32(0xe000ed00)).toBe(0x411fc231);
  });
});

describe('memory map', () => {
  test('SRAM takes byte, half-word and word writes; unmapped addresses fault', () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const b = bus(t);
    b.w(0x20000000, 0x11223344);
    b.w(0x20000002, 0xaabb, 2);
    b.w(0x20000001, 0xcc, 1);
    expect(b.r32(0x20000000)).toBe(0xaabbcc44);
    t.read32(0x30000000);
    expect(t.fault).toBe(true);
    t.fault = false;
    b.wFault(0x1fff7a20, 0); // system memory is read-only
  });

  test('flash is aliased at 0 and plain peripheral storage keeps what the cfg handlers write', () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const b = bus(t);
    t.loadFlash(Buffer.from([1, 2, 3, 4]));
    expect(b.r32(0)).toBe(0x04030201);
    b.w(0x40023808, 0x00001000); // RCC_CFGR
    b.w(0xe0042004, 0x7); // DBGMCU_CR
    expect(b.r32(0x40023808)).toBe(0x1000);
    expect(b.r32(0xe0042004)).toBe(0x7);
  });

  test('preload from a file and dump to a file round-trip', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'stm32-'));
    try {
      const t = new Stm32Target({ target: 'stm32f1x', flashSizeKiB: 64 });
      const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
      await writeFile(path.join(dir, 'in.bin'), data);
      expect(await t.preloadFile(path.join(dir, 'in.bin'), 0x100)).toBe(5000);
      expect(await t.dumpFile(path.join(dir, 'out.bin'), 0x100, 5000)).toBe(5000);
      expect((await readFile(path.join(dir, 'out.bin'))).equals(data)).toBe(true);
      expect(() => t.loadFlash(Buffer.alloc(16), 64 * 1024 - 8)).toThrow(/outside the STM32F103/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Cortex-M reset and halt', () => {
  function withVectors(): Stm32Target {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const v = Buffer.alloc(8);
    v.writeUInt32LE(0x20002000, 0);
    v.writeUInt32LE(0x08000201, 4);
    t.loadFlash(v);
    return t;
  }

  test('SYSRESETREQ with VC_CORERESET halts at the reset vector, DFSR.VCATCH set, S_RESET_ST read-clear', () => {
    const t = withVectors();
    const b = bus(t);
    b.w(DHCSR, 0xa05f0001);
    b.w(DEMCR, 0x01000001);
    b.w(AIRCR, 0x05fa0004);
    const first = b.r32(DHCSR);
    expect(first & (S_HALT | S_RESET_ST)).toBe(S_HALT | S_RESET_ST);
    expect(b.r32(DHCSR) & S_RESET_ST).toBe(0);
    expect(b.r32(DFSR) & 0x8).toBe(0x8);
    b.w(DFSR, 0x8);
    expect(b.r32(DFSR)).toBe(0);
    // Core registers through DCRSR/DCRDR: PC and SP from the vector table.
    b.w(0xe000edf4, 15);
    expect(b.r32(0xe000edf8)).toBe(0x08000200);
    b.w(0xe000edf4, 13);
    expect(b.r32(0xe000edf8)).toBe(0x20002000);
    b.w(0xe000edf8, 0x1234);
    b.w(0xe000edf4, 0x10000 | 0); // DCRDR → R0
    b.w(0xe000edf4, 0);
    expect(b.r32(0xe000edf8)).toBe(0x1234);
  });

  test('without vector catch a reset runs; DHCSR needs its key; halting needs C_DEBUGEN', () => {
    const t = withVectors();
    const b = bus(t);
    b.w(AIRCR, 0x05fa0004);
    expect(t.coreState).toBe('running');
    b.w(DHCSR, 0x00000003); // no key
    expect(t.coreState).toBe('running');
    b.w(DHCSR, 0xa05f0002); // HALT without DEBUGEN
    expect(t.coreState).toBe('running');
    b.w(DHCSR, 0xa05f0003);
    expect(t.coreState).toBe('halted');
    b.w(DHCSR, 0xa05f0001);
    expect(t.coreState).toBe('running');
  });

  test('NRST keeps the debug logic: a halt request once the core is out of reset halts it at once', () => {
    const t = withVectors();
    const b = bus(t);
    const rails = new Rails();
    const detach = t.attachRails(rails);
    b.w(DHCSR, 0xa05f0001);
    rails.set('targetNrst', false);
    // While NRST is low the core is neither running nor halted, and a halt request cannot take effect.
    b.w(DHCSR, 0xa05f0003);
    expect(t.coreState).toBe('reset');
    rails.set('targetNrst', true);
    // C_HALT clears on a core reset (Cortex-M3/M4 TRM, DHCSR): only DEMCR.VC_CORERESET halts a core leaving
    // reset, and none is armed here, so the core runs. C_DEBUGEN, in the debug domain, survives.
    expect(t.coreState).toBe('running');
    const dhcsr = b.r32(DHCSR);
    expect(dhcsr & 0x3).toBe(0x1);
    expect(dhcsr & S_RESET_ST).toBe(S_RESET_ST);
    b.w(DHCSR, 0xa05f0003);
    expect(t.coreState).toBe('halted');
    expect(b.r32(DHCSR) & S_HALT).toBe(S_HALT);
    detach();
  });

  test('FP_CTRL.ENABLE changes only with KEY and reads back', () => {
    const b = bus(new Stm32Target({ target: 'stm32f1x' }));
    expect(b.r32(0xe0002000)).toBe(0x260);
    b.w(0xe0002000, 1);
    expect(b.r32(0xe0002000) & 1).toBe(0);
    b.w(0xe0002000, 3);
    expect(b.r32(0xe0002000)).toBe(0x261);
  });

  test('rails: NRST low holds the core in reset and its rising edge halts on vector catch; VDD off, on is a power-on reset', () => {
    const t = withVectors();
    const b = bus(t);
    const rails = new Rails();
    const detach = t.attachRails(rails);
    const resets: string[] = [];
    t.on('reset', (cause) => resets.push(cause));
    b.w(DHCSR, 0xa05f0001);
    b.w(DEMCR, 0x01000001);
    rails.set('targetNrst', false);
    expect(t.coreState).toBe('reset');
    expect(b.r32(DHCSR) & S_RESET_ST).toBe(S_RESET_ST);
    rails.set('targetNrst', true);
    expect(t.coreState).toBe('halted');
    rails.set('targetVdd', false);
    expect(t.coreState).toBe('off');
    b.w(0x20000000, 0xdeadbeef);
    rails.set('targetVdd', true);
    // Power-on reset clears the debug logic, so no vector catch: the core runs; SRAM is lost, flash kept.
    expect(t.coreState).toBe('running');
    expect(b.r32(DEMCR)).toBe(0);
    expect(b.r32(0x20000000)).toBe(0);
    expect(b.r32(FLASH)).toBe(0x20002000);
    expect(resets).toEqual(['nrst', 'power-on']);
    detach();
    rails.set('targetVdd', false);
    expect(t.coreState).toBe('running');
  });

  test('core events: every halt, resume, reset hold and release, firmware reset and power change, after the reset event', () => {
    const t = withVectors();
    const b = bus(t);
    const seen: string[] = [];
    t.on('core', (state) => seen.push(state));
    t.on('reset', (cause) => seen.push(`reset:${cause}`));
    b.w(DHCSR, 0xa05f0003);
    b.w(DHCSR, 0xa05f0001);
    t.setNrst(false);
    t.setNrst(true);
    // SYSRESETREQ with a vector catch armed: the reset is announced first, then the halt it ended in.
    b.w(DEMCR, 0x01000001);
    b.w(AIRCR, 0x05fa0004);
    b.w(DEMCR, 0);
    b.w(DHCSR, 0xa05f0001);
    // The firmware's own reset (the watchdog) ends running again: a reset event and no state change.
    t.requestSystemReset('watchdog');
    t.setPower(false);
    t.requestSystemReset('sysresetreq'); // unpowered: nothing happens
    t.setPower(true);
    expect(seen).toEqual([
      'halted', 'running', 'reset', 'reset:nrst', 'running', 'reset:sysresetreq', 'halted', 'running',
      'reset:watchdog', 'off', 'reset:power-on', 'running',
    ]);
  });
});
