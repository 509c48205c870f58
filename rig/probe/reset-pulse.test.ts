// An NRST pulse just before programming: the probe must wait the reset out instead of sending a halt that
// OpenOCD 0.12 cannot act on while it sees the target in reset.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startJtagTarget, type JtagTarget } from '../../sim/jtag/index.ts';
import { InfrastructureError } from '../errors.ts';
import { buildProbeArgs } from './args.ts';
import { Probe } from './probe.ts';

const FLASH = 0x0800_0000;
let sim: JtagTarget;
let probe: Probe;
const img = Buffer.alloc(2048, 0x5a);

beforeAll(async () => {
  const preload = Buffer.alloc(64 * 1024, 0xff);
  preload.writeUInt32LE(0x2000_1000, 0);
  preload.writeUInt32LE(0x0800_0101, 4);
  sim = await startJtagTarget({ target: 'stm32f1x', flashImage: preload });
  probe = await Probe.open({
    ...buildProbeArgs({ interface: { kind: 'remote_bitbang', host: sim.info.host, port: sim.info.port }, target: 'stm32f1x', workAreaSize: 0 }),
    station: 'virtual-stm32f1x',
  });
});
afterAll(async () => {
  await probe?.close();
  await sim?.close();
});

test('program right after OpenOCD noticed a 100 ms NRST pulse: writes without a halt timeout', async () => {
  sim.target.setNrst(false);
  const end = performance.now() + 2_000;
  while ((await probe.state()) !== 'reset') {
    expect(performance.now()).toBeLessThan(end);
    await new Promise((r) => setTimeout(r, 20));
  }
  // The fault's own pulse length, as the relay board would hold it.
  const pulse = new Promise<void>((r) =>
    setTimeout(() => {
      sim.target.setNrst(true);
      r();
    }, 100),
  );
  const mark = probe.log.mark();
  const result = await probe.program(FLASH + 0x6000, img);
  await pulse;
  expect(result.written).toBe(true);
  expect(sim.target.readFlash(0x6000, img.length).equals(img)).toBe(true);
  // The halt went to a core out of reset: OpenOCD never waited out its 5 s halt timeout.
  expect(probe.log.since(mark).filter((l) => /Halt timed out|timed out while waiting for target halted/.test(l))).toEqual([]);
}, 30_000);

test('a target held in reset: program fails within its time, saying the target stayed in reset', async () => {
  sim.target.setNrst(false);
  try {
    const err = await probe.program(FLASH + 0x7000, img, { timeoutMs: 1_500, preverify: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(/^virtual-stm32f1x: the target stayed in reset for \d+ ms/);
    expect((err as Error).message).toContain('curstate "reset"');
  } finally {
    sim.target.setNrst(true);
  }
  // Released, the same probe programs again.
  expect((await probe.program(FLASH + 0x7000, img)).written).toBe(true);
}, 30_000);
