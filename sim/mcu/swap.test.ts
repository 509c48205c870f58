// The bootloader's swap under power cuts (docs/virtual-mcu.md §4): cut at 20 evenly spread moments of an
// install — record writes included — and every one ends with a bootable slot A (the old image or the new
// one, never neither, the other one in slot B); the unsafe-swap bootloader ends unbootable for some. On a
// manual clock, so each cut lands at an exact moment of the flash model's erase and program times.
import { describe, expect, test } from 'vitest';
import { ManualClock } from '../clock.ts';
import { Stm32Target } from '../target/stm32.ts';
import { Mcu } from './core.ts';
import { defaultMcuOptions } from './firmware.ts';
import { bodyCrc, readHeader } from './image.ts';
import { layoutFor } from './layout.ts';
import { encodeRecord, readRecord } from './record.ts';
import { ConsoleLog, mcuFixture } from './testbed.ts';

const OLD = mcuFixture('STM32_1_0_0.bin');
const NEW = mcuFixture('STM32_2_0_0.bin');

/** Bootloader, 1_0_0 in slot A, 2_0_0 in slot B and a pending record: what the application leaves before its reset. */
function pendingInstall(bootloader: string) {
  const clock = new ManualClock();
  const target = new Stm32Target({ target: 'stm32f1x' });
  const layout = layoutFor(target.profile).layout!;
  const at = (address: number): number => address - layout.flashBase;
  target.loadFlash(mcuFixture(bootloader), 0);
  target.loadFlash(OLD, at(layout.slotA.address));
  target.loadFlash(NEW, at(layout.slotB.address));
  target.loadFlash(encodeRecord({ seq: 1, state: 'pending', units: Math.ceil(NEW.length / layout.swapUnit), crc: bodyCrc(NEW, NEW.length), length: NEW.length }), at(layout.record[0].address));
  target.reset();
  const console = new ConsoleLog();
  const stamps: { line: string; at: number }[] = [];
  const mcu = new Mcu(target, clock, layout, { ...defaultMcuOptions, uartBaud: 0, timeScale: 1 }, {
    uartSend: () => {},
    clearTx: () => {},
    console: (text) => {
      console.feed(text);
      stamps.push({ line: text.trim(), at: clock.now() });
    },
    log: () => {},
  });
  const booted = (from: number) => () => console.lines.slice(from).some((l) => /^\[boot\] (boot slot A|no bootable image)/.test(l));
  const slot = (address: number, length: number): Buffer => target.readFlash(at(address), length);
  return { clock, target, mcu, console, stamps, layout, booted, slot };
}

/** The window of the install: from the pending record read to the boot of slot A, in MCU ms. */
async function installWindow(bootloader: string): Promise<{ start: number; end: number }> {
  const b = pendingInstall(bootloader);
  expect(await b.clock.until(b.booted(0), 600_000)).toBe(true);
  const start = b.stamps.find((s) => s.line.includes('state=pending'))!.at;
  const end = b.stamps.find((s) => s.line.startsWith('[boot] boot slot A'))!.at;
  expect(b.console.lines).toContain('[boot] boot slot A STM32 2_0_0 trial');
  b.mcu.close();
  return { start, end };
}

/** Cuts the supply at `cutAt`, powers on, lets the bootloader finish; what the flash and console say then. */
async function cutAndReboot(bootloader: string, cutAts: number[]) {
  const b = pendingInstall(bootloader);
  for (const cutAt of cutAts) {
    await b.clock.advance(cutAt - b.clock.now());
    b.target.setPower(false);
    b.target.setPower(true);
  }
  const mark = b.console.mark();
  expect(await b.clock.until(b.booted(mark), 600_000), `no boot line after the cut: ${JSON.stringify(b.console.lines.slice(-8))}`).toBe(true);
  const a = b.slot(b.layout.slotA.address, NEW.length);
  const result = {
    lines: b.console.lines.slice(mark),
    slotA: a.subarray(0, OLD.length).equals(OLD) ? 'old' : a.equals(NEW) ? 'new' : 'neither',
    slotB: b.slot(b.layout.slotB.address, OLD.length).equals(OLD) ? 'old' : b.slot(b.layout.slotB.address, NEW.length).equals(NEW) ? 'new' : 'neither',
    torn: b.mcu.flash.lastTorn,
    record: readRecord(b.target.flash.bytes, b.layout).inForce,
    header: readHeader(a),
  };
  b.mcu.close();
  return result;
}

const moments = (w: { start: number; end: number }, n = 20): number[] => Array.from({ length: n }, (_, k) => w.start + ((w.end - w.start) * (k + 1)) / (n + 1));

describe('power cuts during the install of 2_0_0 over 1_0_0 (stm32f1x, 5 swap units of 2 KiB)', () => {
  test('the safe bootloader: 20 evenly spread cuts, each ends bootable with one image in A and the other in B', async () => {
    const w = await installWindow('BOOT_vbl-1.0.bin');
    const outcomes: string[] = [];
    let torn = 0;
    for (const cutAt of moments(w)) {
      const r = await cutAndReboot('BOOT_vbl-1.0.bin', [cutAt]);
      const at = `cut at ${(cutAt - w.start).toFixed(1)} ms of ${(w.end - w.start).toFixed(1)}`;
      expect(r.lines.some((l) => l.startsWith('[boot] no bootable image')), `${at}: ${JSON.stringify(r.lines)}`).toBe(false);
      expect(r.slotA, at).not.toBe('neither');
      expect(r.slotB, at).toBe(r.slotA === 'new' ? 'old' : 'new');
      // The new image ends in trial (and the application confirms it next); the old one confirmed.
      expect(r.lines.findLast((l) => l.startsWith('[boot] boot slot A')), at).toBe(r.slotA === 'new' ? '[boot] boot slot A STM32 2_0_0 trial' : '[boot] boot slot A STM32 1_0_0 confirmed');
      if (r.torn) torn++;
      outcomes.push(`${r.slotA}${r.lines.some((l) => l.startsWith('[boot] resume swap')) ? '+resumed' : ''}`);
    }
    // Nearly every moment falls inside an erase or a program: those cuts left torn units the resume redid.
    expect(torn).toBeGreaterThanOrEqual(15);
    expect(outcomes.filter((o) => o === 'new+resumed').length).toBeGreaterThanOrEqual(10);
  });

  test('a cut during the resumed swap is as safe: two cuts in a row, five times', async () => {
    const w = await installWindow('BOOT_vbl-1.0.bin');
    const span = w.end - w.start;
    for (const f of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      // The second cut lands 10 ms after the power-on, inside the resumed work (an erase alone takes 20 ms).
      const r = await cutAndReboot('BOOT_vbl-1.0.bin', [w.start + span * f, w.start + span * f + 10]);
      expect(r.slotA, `cuts at ${f}`).toBe('new');
      expect(r.slotB, `cuts at ${f}`).toBe('old');
    }
  });

  test('the unsafe-swap bootloader: the same 20 cuts leave slot A torn — unbootable — for some of them', async () => {
    const w = await installWindow('BOOT_vbl-1.0-unsafe.bin');
    const results = [];
    for (const cutAt of moments(w)) results.push(await cutAndReboot('BOOT_vbl-1.0-unsafe.bin', [cutAt]));
    const bricked = results.filter((r) => r.lines.some((l) => l.startsWith('[boot] no bootable image')));
    expect(bricked.length).toBeGreaterThanOrEqual(1);
    for (const r of bricked) {
      expect(r.slotA).toBe('neither');
      expect(r.lines.findLast((l) => l.startsWith('[boot] '))).toMatch(/^\[boot\] no bootable image: slot A /);
    }
    // The restarted swap exchanged the units already done a second time: no log says where it was.
    expect(results.some((r) => r.lines.includes('[boot] resume swap at unit 1/5 step 1'))).toBe(true);
  });

  test.each([
    ['BOOT_vbl-1.0.bin', 'new', '[boot] boot slot A STM32 2_0_0 trial'],
    ['BOOT_vbl-1.0-unsafe.bin', 'neither', '[boot] no bootable image: slot A STM32 1_0_0: body CRC'],
  ])('fixtures/README.md: a cut at "swap unit 2/5 step 1" with %s leaves slot A %s', async (bootloader, slotA, last) => {
    const b = pendingInstall(bootloader);
    expect(await b.clock.until(() => b.console.lines.includes('[boot] swap unit 2/5 step 1'), 600_000)).toBe(true);
    b.target.setPower(false);
    b.target.setPower(true);
    const mark = b.console.mark();
    expect(await b.clock.until(b.booted(mark), 600_000)).toBe(true);
    const a = b.slot(b.layout.slotA.address, NEW.length);
    expect(a.equals(NEW) ? 'new' : a.subarray(0, OLD.length).equals(OLD) ? 'old' : 'neither').toBe(slotA);
    expect(b.console.lines.findLast((l) => l.startsWith('[boot] boot slot A') || l.startsWith('[boot] no bootable'))).toContain(last);
    b.mcu.close();
  });
});
