// The MCU's own timed flash writes: datasheet times on the clock given, the array's rules, and the torn
// states a power cut, an NRST pulse or a reset request leave (docs/virtual-mcu.md §5). On a manual clock,
// so each cut lands at an exact moment.
import { describe, expect, test } from 'vitest';
import { ManualClock } from '../clock.ts';
import { FlashOpError, FlashWriter } from './flash-writer.ts';
import { Stm32Target } from './stm32.ts';

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Follows an operation from the moment it starts: 'pending', 'done' or its error. */
function track(p: Promise<void>): { readonly state: string | FlashOpError } {
  const t = { state: 'pending' as string | FlashOpError };
  p.then(
    () => void (t.state = 'done'),
    (e: FlashOpError) => void (t.state = e),
  );
  return t;
}

describe('FlashWriter on the F1 (2 KiB pages, 20 ms erase, 52 µs a half-word)', () => {
  const page = 16; // 0x08008000
  const base = page * 2048;

  test('an erase takes 20 ms on the clock; a program writes in half-words and needs erased cells', async () => {
    const t = new Stm32Target({ target: 'stm32f1x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    t.loadFlash(pattern(2048, 1), base);
    const erase = track(w.erase(page));
    await clock.advance(19.9);
    expect(erase.state).toBe('pending');
    expect(t.readFlash(base, 4)).not.toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await clock.advance(0.1);
    expect(erase.state).toBe('done');
    expect(t.readFlash(base, 2048).every((b) => b === 0xff)).toBe(true);

    const data = pattern(512, 7);
    const program = track(w.program(base, data));
    await clock.advance(256 * 0.052);
    expect(program.state).toBe('done');
    expect(t.readFlash(base, 512)).toEqual(Buffer.from(data));
    // Once programmed, a half-word is refused (PGERR) unless erased first: the cells before it land.
    const again = track(w.program(base + 508, Uint8Array.from([0, 0, 0x12, 0x34, 0x56, 0x78])));
    await clock.advance(1);
    const err = again.state;
    expect(err).toBeInstanceOf(FlashOpError);
    expect((err as FlashOpError).failure).toBe('not-erased');
    expect((err as FlashOpError).message).toMatch(/program at 0x080081fe refused \(PGERR\)/);
    expect(t.readFlash(base + 508, 4)).toEqual(Buffer.from([0, 0, data[510]!, data[511]!]));
    expect(w.stats).toMatchObject({ erases: 1, programs: 2, cut: 0 });
  });

  test('a power cut 40 % into an erase leaves the first 40 % erased and the rest as it was; flash survives power-off', async () => {
    const t = new Stm32Target({ target: 'stm32f1x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    const old = pattern(2048, 3);
    t.loadFlash(old, base);
    const erase = track(w.erase(page));
    await clock.advance(8);
    t.setPower(false);
    await clock.advance(50);
    expect(erase.state).toBe('pending'); // never settles: the code that waited lost power
    t.setPower(true);
    const now = t.readFlash(base, 2048);
    const cutAt = Math.floor(2048 * 0.4) & ~3;
    expect(now.subarray(0, cutAt).every((b) => b === 0xff)).toBe(true);
    expect(now.subarray(cutAt)).toEqual(Buffer.from(old.subarray(cutAt)));
    expect(w.lastTorn).toEqual({ kind: 'erase', offset: base, length: 2048, done: cutAt });
    expect(w.busy).toBe(false);
  });

  test('an NRST pulse 10.4 ms into a 2 KiB program leaves 200 half-words programmed and the rest erased', async () => {
    const t = new Stm32Target({ target: 'stm32f1x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    const data = pattern(2048, 9);
    const program = track(w.program(base, data));
    await clock.advance(200 * 0.052 + 0.01);
    t.reset();
    expect(program.state).toBe('pending');
    const now = t.readFlash(base, 2048);
    expect(now.subarray(0, 400)).toEqual(Buffer.from(data.subarray(0, 400)));
    expect(now.subarray(400).every((b) => b === 0xff)).toBe(true);
    // What the debugger reads over the bus is the same torn page.
    expect(t.read32(0x08000000 + base + 396)).toBe(Buffer.from(data.subarray(396, 400)).readUInt32LE(0));
    expect(t.read32(0x08000000 + base + 400)).toBe(0xffffffff);
    expect(w.lastTorn).toEqual({ kind: 'program', offset: base, length: 2048, done: 400 });
  });

  test('a write-protected page refuses the erase; one operation at a time; cells must be whole', async () => {
    const t = new Stm32Target({ target: 'stm32f1x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    t.flashInterface.setWriteProtected([page]);
    await expect(w.erase(page)).rejects.toMatchObject({ failure: 'protected' });
    const first = track(w.erase(page + 2));
    await expect(w.erase(page + 4)).rejects.toMatchObject({ failure: 'busy' });
    await clock.advance(20);
    expect(first.state).toBe('done');
    await expect(w.program(base + 1, Uint8Array.from([1, 2]))).rejects.toMatchObject({ failure: 'alignment' });
    await expect(w.program(512 * 1024 - 2, Uint8Array.from([1, 2, 3, 4]))).rejects.toMatchObject({ failure: 'range' });
  });
});

describe('FlashWriter on the F4 (sectors, words of 16 µs)', () => {
  test('a reset request half-way through a 1 s erase of a 128 KiB sector leaves it half erased', async () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    const sector = 5; // 0x08020000
    const base = 0x20000;
    t.loadFlash(pattern(128 * 1024, 5), base);
    expect(w.eraseMs(sector)).toBe(1000);
    expect(w.eraseMs(0)).toBe(250);
    expect(w.eraseMs(4)).toBe(550);
    const erase = track(w.erase(sector));
    await clock.advance(500);
    t.requestSystemReset('sysresetreq');
    expect(erase.state).toBe('pending');
    const now = t.readFlash(base, 128 * 1024);
    expect(now.subarray(0, 64 * 1024).every((b) => b === 0xff)).toBe(true);
    expect(now.subarray(64 * 1024).equals(pattern(128 * 1024, 5).subarray(64 * 1024))).toBe(true);
  });

  test('programming only clears bits (no PGERR on the F4); 1024 words take 16.384 ms', async () => {
    const t = new Stm32Target({ target: 'stm32f4x' });
    const clock = new ManualClock();
    const w = new FlashWriter(t, clock);
    const base = 0x40000;
    t.loadFlash(Uint8Array.from([0xf0, 0xff, 0x0f, 0xff]), base);
    const p = track(w.program(base, Uint8Array.from([0xcc, 0x33, 0xff, 0x00])));
    await clock.advance(0.016);
    expect(p.state).toBe('done');
    expect(t.readFlash(base, 4)).toEqual(Buffer.from([0xc0, 0x33, 0x0f, 0x00]));
    const big = track(w.program(base + 1024, pattern(4096, 2)));
    await clock.advance(16.383);
    expect(big.state).toBe('pending');
    await clock.advance(0.002);
    expect(big.state).toBe('done');
  });
});
