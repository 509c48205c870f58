// The probe driver against the real Debian OpenOCD 0.12 and the virtual STM32 (sim/jtag), for both parts.
// The driver itself never sees sim/: it gets a Bus Pirate's serial port (the station's probe, with the cfg's
// work area: OpenOCD's flash loader) or a remote_bitbang host and port (the other debuggers, which take the
// target over), as a station config would give. Link faults go through a relay (testing/fault-proxy.ts)
// that cuts or silences a remote_bitbang line mid-command.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { firmwareImage as image } from '../../sim/harness.ts';
import { startJtagTarget } from '../../sim/jtag/index.ts';
import type { JtagTarget, TargetName } from '../../sim/jtag/index.ts';
import { AbortedError, InfrastructureError, isInfrastructureError } from '../errors.ts';
import { buildProbeArgs } from './args.ts';
import { OpenOcdCommandError, RegionMismatchError } from './errors.ts';
import { idcodeFromScanChain, Probe } from './probe.ts';
import { startFaultProxy } from './testing/fault-proxy.ts';
import type { FaultProxy } from './testing/fault-proxy.ts';
import { groupMembers, openOcdChildrenOf } from './testing/procs.ts';

const KiB = 1024;
const FLASH = 0x0800_0000;


interface Profile {
  target: TargetName;
  idcode: number;
  cpuid: number;
  core: string;
  /** A small image placed so that OpenOCD's pad-to-end-of-sector writes nothing extra: the last 2 KiB of
   * F4 sector 1 (16 KiB, whose first 14 KiB the erase wipes), one 2 KiB F1 page. */
  program: { at: number; size: number; erasedFrom: number };
  /** One erase unit: F4 sector 2, an F1 page. */
  erase: { at: number; size: number };
}

const profiles: Profile[] = [
  { target: 'stm32f4x', idcode: 0x4ba0_0477, cpuid: 0x410f_c241, core: 'Cortex-M4 r0p1', program: { at: 0x7800, size: 2 * KiB, erasedFrom: 0x4000 }, erase: { at: 0x8000, size: 16 * KiB } },
  { target: 'stm32f1x', idcode: 0x3ba0_0477, cpuid: 0x411f_c231, core: 'Cortex-M3 r1p1', program: { at: 0x6000, size: 2 * KiB, erasedFrom: 0x6000 }, erase: { at: 0x8000, size: 2 * KiB } },
];

function rate(bytes: number, ms: number): string {
  return `${((bytes / KiB) / (ms / 1000)).toFixed(1)} KiB/s`;
}

describe.each(profiles)('probe on a virtual $target', (p) => {
  const preload = image(256 * KiB, p.target === 'stm32f4x' ? 11 : 7);
  let sim: JtagTarget;
  let probe: Probe;
  let proxy: FaultProxy;
  /** A second probe whose link runs through the fault relay. */
  let linked: Probe;
  let dir: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), `probe-${p.target}-`));
    sim = await startJtagTarget({ target: p.target, flashImage: preload, busPirateDir: dir });
    probe = await Probe.open({
      ...buildProbeArgs({ interface: { kind: 'buspirate', port: sim.info.buspirate! }, target: p.target }),
      station: `virtual-${p.target}`,
    });
  });

  afterAll(async () => {
    await probe?.close();
    await linked?.close();
    await proxy?.close();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(openOcdChildrenOf()).toEqual([]);
  });

  test('examine identifies the part', async () => {
    const info = await probe.examine();
    expect(info).toEqual({
      idcode: p.idcode,
      cpuid: p.cpuid,
      core: p.core,
      deviceId: sim.target.profile.dbgmcuIdcode,
      flashSizeKiB: sim.target.profile.flashSizeKiB,
      flash: { name: `${p.target}.flash`, driver: p.target === 'stm32f4x' ? 'stm32f2x' : 'stm32f1x', base: FLASH, size: sim.target.profile.flashSizeKiB * KiB },
      state: expect.stringMatching(/^(running|halted)$/),
    });
    // The cfg's speed-raising reset handlers are silenced for an adapter without a clock.
    expect(probe.log.text()).not.toMatch(/Translation from khz to adapter speed/);
  });

  test('reset halt stops at the reset vector; reset run lets the core go', async () => {
    expect(await probe.reset('halt')).toBe('halted');
    expect(sim.target.coreState).toBe('halted');
    expect(await probe.rpc('reg pc')).toMatch(/0x08000100/);
    expect(Array.from(await probe.readWords(FLASH, 2))).toEqual([0x2000_1000, 0x0800_0101]);
    expect(await probe.readMemory(p.target === 'stm32f4x' ? 0x1fff_7a22 : 0x1fff_f7e0, 1, { width: 16 })).toEqual([sim.target.profile.flashSizeKiB]);
    expect(await probe.reset('run')).toBe('running');
    expect(sim.target.coreState).toBe('running');
    expect(await probe.state()).toBe('running');
  });

  test('readWords spanning several read_memory calls matches the preload word for word', async () => {
    const count = 16_384 + 16;
    const words = await probe.readWords(FLASH + 0x100, count);
    expect(words.length).toBe(count);
    expect(Buffer.from(words.buffer).equals(preload.subarray(0x100, 0x100 + count * 4))).toBe(true);
  });

  test('read back 256 KiB byte-exact against the preload', async ({ annotate }) => {
    const t0 = performance.now();
    const flash = await probe.readRegion(FLASH, 256 * KiB);
    const ms = performance.now() - t0;
    expect(flash.length).toBe(256 * KiB);
    expect(flash.equals(preload)).toBe(true);
    await annotate(`read-back ${p.target}: 256 KiB in ${ms.toFixed(0)} ms = ${rate(256 * KiB, ms)}`);
  });

  test('program a small image, read it back; pre-verify skips the second write', async ({ annotate }) => {
    const img = image(p.program.size, 99);
    const at = FLASH + p.program.at;
    const first = await probe.program(at, img);
    expect(first).toMatchObject({ address: at, bytes: img.length, written: true });
    expect(sim.target.readFlash(p.program.at, img.length).equals(img)).toBe(true);
    expect((await probe.readRegion(at, img.length)).equals(img)).toBe(true);
    // The erase covered the whole sector/page; what lies before it is untouched.
    expect(sim.target.readFlash(p.program.erasedFrom, p.program.at - p.program.erasedFrom).every((b) => b === 0xff)).toBe(true);
    expect(sim.target.readFlash(0, p.program.erasedFrom).equals(preload.subarray(0, p.program.erasedFrom))).toBe(true);
    expect(await probe.state()).toBe('halted');
    await annotate(`program ${p.target}: ${img.length} bytes written in ${first.writeMs.toFixed(0)} ms = ${rate(img.length, first.writeMs)} (${first.totalMs.toFixed(0)} ms with pre-verify and verify)`);

    const writesBefore = probe.log.text().match(/wrote \d+ bytes from file/g)?.length ?? 0;
    const second = await probe.program(at, img);
    expect(second).toMatchObject({ written: false, writeMs: 0 });
    expect(probe.log.text().match(/wrote \d+ bytes from file/g)?.length ?? 0).toBe(writesBefore);
    await probe.reset('run');
  });

  for (const kind of ['ignore', 'garble'] as const) {
    test(`a flash that ${kind === 'ignore' ? 'ignores' : 'garbles'} a write: program() itself fails, naming the first bad address (its own read-back, not a later one)`, async () => {
      const img = image(p.program.size, 31);
      const at = FLASH + p.program.at;
      // Four bytes 256 in: OpenOCD reports the write done; only reading it back tells.
      sim.target.flash.defect = { kind, offset: p.program.at + 256, length: 4 };
      try {
        const err = await probe.program(at, img, { preverify: false }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RegionMismatchError);
        const e = err as RegionMismatchError;
        expect(e.message).toContain('program: read-back after writing');
        expect(e.comparison.differences[0]!.address).toBe(at + 256);
        expect(e.comparison.differingBytes).toBeGreaterThan(0);
        expect(e.comparison.differingBytes).toBeLessThanOrEqual(4);
      } finally {
        sim.target.flash.defect = undefined;
      }
      await probe.reset('run');
    });
  }

  test('program with progress: one erase, then chunks, the count of bytes written rising to the whole image', async () => {
    const img = image(12 * KiB, 5);
    const off = 0x21000;
    const seen: [number, number][] = [];
    const writesBefore = probe.log.text().match(/wrote \d+ bytes from file/g)?.length ?? 0;
    try {
      const r = await probe.program(FLASH + off, img, { preverify: false, progress: (done, total) => seen.push([done, total]) });
      expect(r).toMatchObject({ written: true, bytes: img.length });
      expect(seen).toEqual([[0, img.length], [4 * KiB, img.length], [8 * KiB, img.length], [12 * KiB, img.length]]);
      expect(probe.log.text().match(/wrote \d+ bytes from file/g)?.length ?? 0).toBe(writesBefore + 3);
      // Each chunk lands where it belongs: a chunk never erased what the one before it wrote.
      expect(sim.target.readFlash(off, img.length).equals(img)).toBe(true);
    } finally {
      sim.target.loadFlash(preload.subarray(0x20000, 0x40000), 0x20000);
    }
  });

  test('verify finds a single flipped byte and names its address', async () => {
    const off = 0x10000;
    const expected = preload.subarray(off, off + 4 * KiB);
    const ok = await probe.verify(FLASH + off, expected);
    expect(ok.equal).toBe(true);

    const flippedAt = off + 0x123;
    const original = preload[flippedAt] as number;
    sim.target.loadFlash(Buffer.of(original ^ 0x10), flippedAt);
    try {
      const err = await probe.verify(FLASH + off, expected).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegionMismatchError);
      const m = err as RegionMismatchError;
      expect(m.kind).toBe('firmware');
      expect(m.comparison).toMatchObject({ equal: false, differingBytes: 1, differences: [{ address: FLASH + flippedAt, expected: original, seen: original ^ 0x10 }] });
      expect(m.message).toContain(`first difference at 0x${(FLASH + flippedAt).toString(16).padStart(8, '0')}`);
      expect(m.station).toBe(`virtual-${p.target}`);
    } finally {
      sim.target.loadFlash(Buffer.of(original), flippedAt);
    }
    expect((await probe.compare(FLASH + off, expected)).equal).toBe(true);
  });

  test('erase clears exactly one sector/page', async () => {
    const { at, size } = p.erase;
    expect(sim.target.readFlash(at, size).equals(preload.subarray(at, at + size))).toBe(true);
    await probe.erase(FLASH + at, size);
    expect((await probe.readRegion(FLASH + at, size)).every((b) => b === 0xff)).toBe(true);
    expect(sim.target.readFlash(at + size, 4 * KiB).equals(preload.subarray(at + size, at + size + 4 * KiB))).toBe(true);
    sim.target.loadFlash(preload.subarray(at, at + size), at);
  });

  test('a command OpenOCD refuses is a ProtocolError with its code, and the session carries on', async () => {
    const err = await probe.erase(FLASH + 0x100, 0x100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenOcdCommandError);
    expect((err as OpenOcdCommandError).code).toBeLessThan(0);
    expect((err as OpenOcdCommandError).command).toContain('flash erase_address');
    expect(probe.alive).toBe(true);
    expect(Array.from(await probe.readWords(FLASH, 1))).toEqual([0x2000_1000]);
    await probe.reset('run');
  });

  test('a closed probe refuses work with a typed error and cannot be restarted', async () => {
    const extra = await Probe.open({
      ...buildProbeArgs({ interface: { kind: 'remote_bitbang', host: sim.info.host, port: sim.info.port }, target: p.target, workAreaSize: 0 }),
      station: `extra-${p.target}`,
    });
    const pid = extra.pid;
    await extra.close();
    expect(groupMembers(pid)).toEqual([]);
    expect(extra.alive).toBe(false);
    await expect(extra.readWords(FLASH, 1)).rejects.toBeInstanceOf(InfrastructureError);
    await expect(extra.restart()).rejects.toBeInstanceOf(InfrastructureError);
    expect(extra.log.text()).toContain('shutdown command invoked');
    // The station's own probe takes the target back (the simulator serves one debugger at a time).
    await probe.restart();
    expect(Array.from(await probe.readWords(FLASH, 1))).toEqual([0x2000_1000]);
  });

  test('examine takes the IDCODE from scan_chain when OpenOCD did not log it (hla, an ST-Link, never does)', async () => {
    const quiet = await Probe.open({
      ...buildProbeArgs({ interface: { kind: 'remote_bitbang', host: sim.info.host, port: sim.info.port }, target: p.target, workAreaSize: 0 }),
      station: `quiet-${p.target}`,
      openocd: fileURLToPath(new URL('./testing/openocd-unlogged-idcode.sh', import.meta.url)),
    });
    try {
      expect((await quiet.examine()).idcode).toBe(p.idcode);
      expect(quiet.log.text()).not.toMatch(/tap\/device found/);
      expect(idcodeFromScanChain(await quiet.rpc('scan_chain'), `${p.target}.cpu`)).toBe(p.idcode);
    } finally {
      await quiet.close();
      // The simulator serves one debugger at a time: the station's own probe takes the target back.
      await probe.restart();
    }
  });

  test('target unpowered: calls fail as infrastructure errors naming the station; waitExamined is bounded, then sees it back', async () => {
    expect(await probe.waitExamined(5_000)).toMatch(/^(running|halted)$/);
    sim.setPower(false);
    try {
      const err = await probe.readWords(FLASH, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as InfrastructureError).station).toBe(`virtual-${p.target}`);
      expect((err as Error).message).toMatch(/"read_memory .*" failed: the target is not examined/);
      expect((err as Error).cause).toBeInstanceOf(OpenOcdCommandError);
      const waited = await probe.waitExamined(300).catch((e: unknown) => e);
      expect(waited).toBeInstanceOf(InfrastructureError);
      expect((waited as Error).message).toMatch(/^virtual-stm32f[14]x: the target was not examined within 300 ms/);
    } finally {
      sim.setPower(true);
    }
    expect(await probe.waitExamined(10_000)).toMatch(/^(running|halted|reset)$/);
    expect(Array.from(await probe.readWords(FLASH, 2))).toEqual([0x2000_1000, 0x0800_0101]);
    expect(probe.alive).toBe(true);
  });

  describe('link and process faults', () => {
    beforeAll(async () => {
      proxy = await startFaultProxy(sim.info.host, sim.info.port);
      linked = await Probe.open({
        ...buildProbeArgs({ interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: proxy.port }, target: p.target, workAreaSize: 0 }),
        station: `linked-${p.target}`,
      });
    });

    async function expectRecovered(): Promise<void> {
      expect(linked.alive).toBe(false);
      await linked.restart();
      expect(linked.alive).toBe(true);
      expect(Array.from(await linked.readWords(FLASH, 2))).toEqual([0x2000_1000, 0x0800_0101]);
    }

    test('OpenOCD killed in the middle of a read-back: typed error, no orphan, restartable', async () => {
      const pid = linked.pid;
      void proxy.arm('notify', 50_000).then(() => process.kill(pid, 'SIGKILL'));
      const err = await linked.readRegion(FLASH, 256 * KiB).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as Error).message).toMatch(/killed by SIGKILL/);
      expect((err as InfrastructureError).lastLines.length).toBeGreaterThan(0);
      expect(groupMembers(pid)).toEqual([]);
      await expectRecovered();
    });

    test('the target socket closed mid-scan: OpenOCD aborts (rc 134) and that is a typed error', async () => {
      const pid = linked.pid;
      void proxy.arm('drop', 50_000);
      const err = await linked.readRegion(FLASH, 256 * KiB).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      // Usually the abort; if OpenOCD's write fails before its read, the driver's link watch gets there first.
      expect((err as Error).message).toMatch(/SIGABRT, rc 134|adapter link is lost/);
      expect((err as InfrastructureError).lastLines.join('\n')).toMatch(/Assertion .*failed|Error on socket/);
      expect(groupMembers(pid)).toEqual([]);
      await expectRecovered();
    });

    test('the target link cut while OpenOCD is idle: OpenOCD does not survive it, and the next call says why', async () => {
      const pid = linked.pid;
      proxy.dropNow();
      // OpenOCD's next poll either aborts mid-scan (rc 134) or fails to write ("Broken pipe", and 0.12
      // would then live on uselessly): the driver kills it at the first such line.
      const exit = await linked.exited;
      expect(['SIGABRT', 'SIGKILL']).toContain(exit.signal);
      const err = await linked.readWords(FLASH, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as Error).message).toMatch(/not running/);
      expect((err as InfrastructureError).seen).toMatch(/rc 134|adapter link is lost/);
      expect(groupMembers(pid)).toEqual([]);
      await expectRecovered();
    });

    test('a target that stops answering: OpenOCD killed within the call\'s timeout', async () => {
      const pid = linked.pid;
      void proxy.arm('silence', 50_000);
      const t0 = performance.now();
      const err = await linked.readRegion(FLASH, 256 * KiB, { timeoutMs: 1000 }).catch((e: unknown) => e);
      const settledMs = performance.now() - t0;
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as Error).message).toMatch(/did not answer "dump_image .*" within \d+ ms; killed it/);
      // A bound, not a speed: the call gives up at its timeout, plus the kill and the exit it waits for.
      expect(settledMs).toBeLessThan(1000 + 2000);
      expect(groupMembers(pid)).toEqual([]);
      await expectRecovered();
    });

    test('an abort in the middle of a read-back kills OpenOCD', async () => {
      const pid = linked.pid;
      const ac = new AbortController();
      void proxy.arm('notify', 50_000).then(() => ac.abort(new Error('suite timed out')));
      const err = await linked.readRegion(FLASH, 256 * KiB, { signal: ac.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortedError);
      expect(isInfrastructureError(err)).toBe(true);
      expect(groupMembers(pid)).toEqual([]);
      await expectRecovered();
    });
  });
});
