// The virtual STM32 against the real Debian OpenOCD 0.12 (installed by scripts/setup.mjs), for both parts.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { firmwareImage as image } from '../harness.ts';
import { startJtagTarget, type JtagTarget } from './index.ts';
import { virtualOpenocdArgs } from './openocd-args.ts';
import { OpenocdSession } from './openocd-session.ts';
import type { TargetName } from '../target/profiles.ts';


const profiles: { target: TargetName; cpuTap: string; core: string; cpuid: number; devId: number; program: { at: number; size: number } }[] = [
  // F4 pads an erase to the end of its sector and programs the padding: sector 1 (16 KiB) costs 8192 writes.
  { target: 'stm32f4x', cpuTap: '0x4ba00477', core: 'Cortex-M4 r0p1', cpuid: 0x410fc241, devId: 0x10076413, program: { at: 0x4000, size: 0x4000 } },
  { target: 'stm32f1x', cpuTap: '0x3ba00477', core: 'Cortex-M3 r1p1', cpuid: 0x411fc231, devId: 0x10036414, program: { at: 0x6000, size: 0x1000 } },
];

// remote_bitbang without a work area (half-word writes over the debug port, host-side CRC); the Bus Pirate
// with the cfg's work area, where OpenOCD uploads its flash loader and CRC routine and the core runs them.
const adapters = [
  { adapter: 'remote_bitbang', routines: false },
  { adapter: 'buspirate', routines: true },
] as const;

describe.each(profiles.flatMap((p) => adapters.map((a) => ({ ...p, ...a }))))('$target through the real openocd ($adapter)', (p) => {
  const preload = image(256 * 1024, p.target === 'stm32f4x' ? 4 : 1);
  let dir: string;
  let sim: JtagTarget;
  let ocd: OpenocdSession;
  const routines: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), `jtag-${p.target}-`));
    sim = await startJtagTarget({ target: p.target, flashImage: preload, busPirateDir: p.adapter === 'buspirate' ? dir : undefined });
    sim.target.on('algorithm', (name, outcome) => routines.push(`${path.basename(name.split(' ')[0]!)} ${outcome}`));
    const args =
      p.adapter === 'buspirate'
        ? virtualOpenocdArgs({ target: p.target, host: sim.info.host, port: sim.info.port, buspirate: sim.info.buspirate, workAreaSize: null })
        : virtualOpenocdArgs({ target: p.target, host: sim.info.host, port: sim.info.port });
    ocd = await OpenocdSession.start({ args });
  });
  afterAll(async () => {
    await ocd?.close();
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function readWord(addr: number): Promise<number> {
    return Number(await ocd.ok(`read_memory 0x${addr.toString(16)} 32 1`));
  }

  /** Waits for `curstate` to read `want`: only OpenOCD's background poll (every 100 ms) changes it. */
  async function curstateBecomes(want: string, withinMs = 2_000): Promise<void> {
    const end = performance.now() + withinMs;
    let seen = '';
    while (performance.now() < end) {
      seen = await ocd.ok(`${p.target}.cpu curstate`);
      if (seen === want) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`${p.target}.cpu curstate stayed "${seen}" for ${withinMs} ms, expected "${want}"`);
  }

  test('init finds the two-TAP chain and examines the core', async () => {
    const log = ocd.log.join('\n');
    expect(log).toContain(`${p.target}.cpu tap/device found: ${p.cpuTap}`);
    expect(log).toContain(`${p.target}.bs tap/device found`);
    expect(log).not.toMatch(/UNEXPECTED|IR capture error|Unexpected idcode/);
    expect(log).toContain(`${p.core} processor detected`);
    expect(await readWord(0xe000ed00)).toBe(p.cpuid);
    expect(await readWord(0xe0042000)).toBe(p.devId);
  });

  test('reset halt stops at the reset vector, reset run lets it go', async () => {
    await ocd.ok('reset halt');
    expect(await ocd.ok(`${p.target}.cpu curstate`)).toBe('halted');
    expect(sim.target.coreState).toBe('halted');
    expect(await ocd.ok('reg pc')).toMatch(/pc \(\/32\): 0x08000100/);
    expect(await ocd.ok('reg msp')).toMatch(/msp \(\/32\): 0x20001000/);
    await ocd.ok('reset run');
    expect(await ocd.ok(`${p.target}.cpu curstate`)).toBe('running');
    expect(sim.target.coreState).toBe('running');
  });

  test('reset halt through the adapter SRST line: the DP stays reachable in reset, release halts on vector catch', async () => {
    const causes: string[] = [];
    const onReset = (cause: string): void => void causes.push(cause);
    sim.target.on('reset', onReset);
    try {
      await ocd.ok('reset_config srst_only srst_nogate');
      await ocd.ok('reset halt');
      expect(causes).toContain('srst');
      expect(causes).not.toContain('sysresetreq');
      expect(sim.target.coreState).toBe('halted');
      expect(await ocd.ok('reg pc')).toMatch(/0x08000100/);
    } finally {
      sim.target.off('reset', onReset);
      await ocd.ok('reset_config none');
    }
  });

  test('NRST pulse: a halt while OpenOCD sees the reset is never sent; once its poll saw the core leave reset, halt is immediate', async () => {
    await ocd.ok('reset run');
    sim.target.setNrst(false);
    try {
      await curstateBecomes('reset');
      // OpenOCD 0.12's cortex_m_halt, in its "reset" state, assumes assert_reset armed a vector catch and
      // writes nothing; the wait that follows can only time out (the rig's 5 s "halt" -4 after an NRST pulse).
      const r = await ocd.tcl('halt 300');
      expect(r.code).toBe(-4);
      expect(ocd.log.join('\n')).toMatch(/timed out while waiting for target halted/);
      expect(sim.target.coreState).toBe('reset');
      expect(sim.target.read32(0xe000edf0) & 0x3).toBe(0x1); // C_DEBUGEN kept, C_HALT never requested
    } finally {
      sim.target.setNrst(true);
    }
    expect(sim.target.coreState).toBe('running');
    await curstateBecomes('running');
    const t0 = performance.now();
    await ocd.ok('halt');
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(sim.target.coreState).toBe('halted');
    expect(await ocd.ok(`${p.target}.cpu curstate`)).toBe('halted');
    await ocd.ok('resume');
  });

  test('flash read_bank returns the preloaded 256 KiB byte-exact', async () => {
    const out = path.join(dir, 'readback.bin');
    const text = await ocd.ok(`flash read_bank 0 ${out} 0 0x40000`, 30_000);
    expect(text).toMatch(/wrote 262144 bytes/);
    expect((await readFile(out)).equals(preload)).toBe(true);
  });

  // Without a work area the F4's 16 KiB sector is 8192 half-word writes, each a few DAP round trips: tens of
  // seconds on a loaded machine, more than the default 30 s.
  test('flash write_image erase programs an image that reads back exactly', { timeout: 120_000 }, async () => {
    const img = image(p.program.size, 77);
    const file = path.join(dir, 'small.bin');
    await writeFile(file, img);
    const addr = 0x08000000 + p.program.at;
    await ocd.ok('reset halt');
    routines.length = 0;
    const text = await ocd.ok(`flash write_image erase ${file} 0x${addr.toString(16)} bin`, 60_000);
    expect(text).toMatch(new RegExp(`wrote ${p.program.size} bytes`));
    const loader = p.target === 'stm32f4x' ? 'stm32f2x.S' : 'stm32f1x.S';
    expect(routines).toEqual(p.routines ? [`${loader} started`, `${loader} halted`] : []);
    expect(ocd.log.join('\n').includes('falling back to single memory accesses')).toBe(!p.routines);
    expect(sim.target.readFlash(p.program.at, p.program.size).equals(img)).toBe(true);
    // The neighbours are untouched, and the controller was relocked by OpenOCD.
    expect(sim.target.readFlash(0, p.program.at).equals(preload.subarray(0, p.program.at))).toBe(true);
    expect(sim.target.flashInterface.locked).toBe(true);
    const dump = path.join(dir, 'dump.bin');
    await ocd.ok(`dump_image ${dump} 0x${addr.toString(16)} ${p.program.size}`);
    expect((await readFile(dump)).equals(img)).toBe(true);
    await ocd.ok('reset run');
  });

  test('verify_image names the address of a single flipped byte', async () => {
    const region = sim.target.readFlash(0x8000, 0x1000);
    const file = path.join(dir, 'expected.bin');
    await writeFile(file, region);
    await ocd.ok('reset halt'); // OpenOCD runs its CRC routine only on a halted core
    routines.length = 0;
    expect(await ocd.ok(`verify_image ${file} 0x08008000 bin`)).toMatch(/verified 4096 bytes/);
    expect(routines).toEqual(p.routines ? ['armv7m_crc.s started', 'armv7m_crc.s halted'] : []);
    const flipped = Buffer.from([region[0x123]! ^ 0x10]);
    sim.target.loadFlash(flipped, 0x8123);
    const r = await ocd.tcl(`verify_image ${file} 0x08008000 bin`);
    expect(r.code).not.toBe(0);
    const was = flipped[0]!.toString(16).padStart(2, '0');
    const instead = region[0x123]!.toString(16).padStart(2, '0');
    expect(r.text).toMatch(new RegExp(`diff 0 address 0x08008123\\. Was 0x${was} instead of 0x${instead}`));
    expect(r.text).not.toMatch(/diff 1 /);
  });

  test('a bus fault is a sticky error that OpenOCD clears, and the next read works', async () => {
    const r = await ocd.tcl('read_memory 0x30000000 32 1');
    expect(r.code).not.toBe(0);
    expect(ocd.log.join('\n')).toMatch(/Failed to read memory at 0x3000000/);
    expect(await readWord(0x08000000)).toBe(0x20001000);
  });

  test('with the target unpowered, commands fail promptly; after power-on it answers again', async () => {
    sim.setPower(false);
    const r = await ocd.tcl('read_memory 0x08000000 32 1', 5_000);
    expect(r.code).not.toBe(0);
    const h = await ocd.tcl('reset halt', 5_000);
    expect(h.code).not.toBe(0);
    sim.setPower(true);
    await ocd.ok('reset halt', 5_000);
    expect(await readWord(0x08000004)).toBe(0x08000101);
    expect(sim.target.coreState).toBe('halted');
  });
});
