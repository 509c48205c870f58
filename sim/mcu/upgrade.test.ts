// The virtual MCU end to end, as a dut-mode rig meets it: a real sim process, its JSON line, its taps and
// console as ptys, upgrades driven only by the cloud admin API and the rails, and the verdict's evidence
// read over SWD with the real openocd 0.12. (The MCU's rules one by one, defects and power cuts are in
// mcu.test.ts, in-process.)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { addPackage, simsPerTest, type PortReader, type SimHandle } from '../harness.ts';
import { virtualOpenocdArgs } from '../jtag/openocd-args.ts';
import { OpenocdSession } from '../jtag/openocd-session.ts';
import { decodeRecord } from './record.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = (name: string): Buffer => readFileSync(path.join(root, 'fixtures', 'mcu', name));
const bootloader = path.join(root, 'fixtures', 'mcu', 'BOOT_vbl-1.0.bin');
const SLOT_A = 0x08020000;
const RECORD = 0x08004000;

const sim = simsPerTest(afterEach, []);
const sessions: OpenocdSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
});

async function openocd(s: SimHandle): Promise<OpenocdSession> {
  const j = s.info.jtag!;
  const ocd = await OpenocdSession.start({ args: virtualOpenocdArgs({ target: j.target, host: j.host, port: j.port }) });
  sessions.push(ocd);
  return ocd;
}

/** Flash bytes read over SWD (MEM-AP reads of the running target, no halt). */
async function readOverSwd(ocd: OpenocdSession, address: number, length: number): Promise<Buffer> {
  const words = (await ocd.ok(`read_memory 0x${address.toString(16)} 32 ${Math.ceil(length / 4)}`, 30_000)).trim().split(/\s+/);
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(Number(w) >>> 0, i * 4));
  return b.subarray(0, length);
}

/** The boot record in force, decoded from both copies read over SWD. */
async function recordOverSwd(ocd: OpenocdSession, copySize: number): Promise<{ seq: number; state: string }> {
  const copies = [await readOverSwd(ocd, RECORD, 32), await readOverSwd(ocd, RECORD + copySize, 32)].map(decodeRecord);
  const valid = copies.filter((c): c is Exclude<typeof c, string> => typeof c !== 'string').sort((a, b) => b.seq - a.seq);
  expect(valid.length, `no valid boot record copy: ${JSON.stringify(copies)}`).toBeGreaterThan(0);
  return valid[0]!;
}

interface Watch {
  console: PortReader;
  tx: PortReader;
  rx: PortReader;
}

/** A station with the bootloader in flash and 1_0_0 in slot A, booted; its console and taps open. */
async function station(extra: string[]): Promise<{ s: SimHandle; w: Watch }> {
  const s = await sim(['--baud', '0', '--mcu', 'on', '--flash-image', bootloader, ...extra]);
  const mcu = s.info.mcu!;
  const w = {
    console: await s.openReader(mcu.console.port, 'mcu console'),
    tx: await s.openReader(mcu.taps.mcuToModule, 'tap MCU→module'),
    rx: await s.openReader(mcu.taps.moduleToMcu, 'tap module→MCU'),
  };
  // A factory programmer puts the application in slot A; an NRST pulse on the rails boots it.
  await s.api('POST', '/target/flash/load', { file: path.join(root, 'fixtures', 'mcu', 'STM32_1_0_0.bin'), offset: SLOT_A - 0x08000000 });
  await s.api('POST', '/target/reset');
  await w.console.waitFor('[app] STM32 1_0_0 start confirmed\r\n', 10_000);
  await w.tx.waitFor('AT+QIOTOTAREQ=1\r', 10_000);
  return { s, w };
}

describe('a dut-mode upgrade on the virtual MCU, judged over SWD with the real openocd', () => {
  test('stm32f1x, full package 1_0_0 → 2_0_0: slot A = 2_0_0, record confirmed; the taps carry the exact bytes', async () => {
    const { s, w } = await station(['--time-scale', '0.02']);
    expect(s.info.mcu).toMatchObject({ bootRecord: 'vmcu-1', taps: { baud: 115200 }, layout: { swapUnit: 2048, slotA: { address: SLOT_A, size: 131072 } } });
    const image = fixture('STM32_2_0_0.bin');
    const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data: image });
    await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }] });
    await w.console.waitFor('[boot] swap done\r\n', 30_000);
    const swapStarted = w.console.text.indexOf('[boot] swap unit 1/5 step 1');
    expect(swapStarted).toBeGreaterThan(0);
    await w.console.waitFor('[app] STM32 2_0_0 start trial\r\n[app] self-test ok\r\n[app] confirmed\r\n', 20_000);
    await w.rx.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 20_000);

    // The dialogue on the MCU's TX line, in order, and the first block on the module's TX line byte for byte.
    // (Each tap is its own pty: one may deliver a moment after the other.)
    await w.tx.waitFor('AT+QIOTMCUVER="STM32","2_0_0"\r', 5_000);
    const sent = w.tx.text;
    const order = ['AT+QIOTUPDATE=1\r', 'AT+QIOTOTARD=0,1024\r', 'AT+QIOTOTARD=8192,768\r', 'AT+QIOTUPDATE=3\r', 'AT+QIOTMCUVER="STM32","2_0_0"\r'];
    const at = order.map((c) => sent.indexOf(c));
    expect(at.every((i) => i >= 0), JSON.stringify(at)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const first = w.rx.rx.indexOf('+QIOTOTARD: 0,1024\r\n');
    expect(first).toBeGreaterThan(0);
    const dataAt = first + '+QIOTOTARD: 0,1024\r\n'.length;
    expect(w.rx.rx.subarray(dataAt, dataAt + 1024).equals(image.subarray(0, 1024))).toBe(true);

    const ocd = await openocd(s);
    expect((await readOverSwd(ocd, SLOT_A, image.length)).equals(image)).toBe(true);
    expect(await recordOverSwd(ocd, 2048)).toMatchObject({ state: 'confirmed' });
    const mcu = await s.api<{ image: unknown; bootRecord: { inForce: { state: string } } }>('GET', '/mcu');
    expect(mcu.image).toEqual({ component: 'STM32', version: '2_0_0', state: 'confirmed', defects: [] });
    expect(mcu.bootRecord.inForce.state).toBe('confirmed');
  });

  test('stm32f4x, delta 1_0_0 → 2_0_0: the MCU applies the delta to slot A; slot A = 2_0_0, record confirmed', async () => {
    const { s, w } = await station(['--target', 'stm32f4x', '--time-scale', '0.02']);
    expect(s.info.mcu).toMatchObject({ layout: { swapUnit: 131072, record: [{ address: RECORD, size: 16384 }, { address: 0x08008000, size: 16384 }] } });
    const delta = fixture('STM32_1_0_0_to_2_0_0.vcdiff');
    const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', type: 'delta', sourceVersion: '1_0_0', data: delta });
    await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }] });
    await w.console.waitFor(`[app] plan 1_0_0->2_0_0 accepted\r\n[app] piece 0+${delta.length} of ${delta.length}\r\n`, 20_000);
    await w.console.waitFor('[boot] swap unit 1/1 step 3\r\n[boot] swap done\r\n', 30_000);
    await w.console.waitFor('[app] confirmed\r\n', 20_000);
    await w.rx.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 20_000);
    const image = fixture('STM32_2_0_0.bin');
    const ocd = await openocd(s);
    expect((await readOverSwd(ocd, SLOT_A, image.length)).equals(image)).toBe(true);
    // Slot B now holds the old image: what a later revert would bring back.
    const old = fixture('STM32_1_0_0.bin');
    expect((await readOverSwd(ocd, 0x08040000, old.length)).equals(old)).toBe(true);
    expect(await recordOverSwd(ocd, 16384)).toMatchObject({ state: 'confirmed' });
  });

  test('a halt freezes the MCU and its clock; resume continues it; reset halt restarts it from the bootloader', async () => {
    const { s, w } = await station(['--time-scale', '0.05']);
    const ocd = await openocd(s);
    await ocd.ok('halt');
    const frozen = await s.api<{ halted: boolean; runs: string; program: string; mcuTimeMs: number }>('GET', '/mcu');
    expect(frozen).toMatchObject({ halted: true, runs: 'halted', program: 'application' });
    const lines = w.console.mark();
    const sent = w.tx.mark();
    // A plan arrives while the core is frozen: the module announces it, the MCU cannot answer.
    const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data: fixture('STM32_2_0_0.bin') });
    await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }] });
    await w.rx.waitFor('+QIOTEVT: 7,10700,', 10_000);
    const still = await s.api<{ mcuTimeMs: number }>('GET', '/mcu');
    expect(still.mcuTimeMs).toBe(frozen.mcuTimeMs);
    expect(w.console.mark()).toBe(lines);
    expect(w.tx.mark()).toBe(sent);
    await ocd.ok('resume');
    // The 10700 waited in the UART's DMA buffer: the client takes it up where it stopped.
    await w.console.waitFor('[app] plan ->2_0_0 accepted\r\n', 10_000, lines);
    const resumed = await s.api<{ mcuTimeMs: number; runs: string }>('GET', '/mcu');
    expect(resumed.runs).toBe('application');
    expect(resumed.mcuTimeMs).toBeGreaterThan(frozen.mcuTimeMs);

    await ocd.ok('reset halt');
    const held = await s.api<{ runs: string; program: string; console: string[]; lastReset: string }>('GET', '/mcu');
    expect(held).toMatchObject({ runs: 'halted', program: 'bootloader', console: [], lastReset: 'sysresetreq' });
    const mark = w.console.mark();
    await ocd.ok('resume');
    await w.console.waitFor(/\[boot\] BOOT vbl-1\.0\r\n\[boot\] record seq=\d+ state=/, 10_000, mark);
  });
});

describe('what the sim says about its MCU', () => {
  test('by default (--mcu off): no "mcu" key, no GET /mcu', async () => {
    const s = await sim(['--baud', '0']);
    expect(s.info.mcu).toBeUndefined();
    expect((await s.admin('GET', '/mcu')).status).toBe(404);
  });

  test('a flash too small for the layout: "layout": null and why; the taps and console are still there', async () => {
    const s = await sim(['--baud', '0', '--mcu', 'on', '--flash-size-kib', '256', '--flash-image', bootloader]);
    expect(s.info.mcu).toMatchObject({ layout: null, why: expect.stringMatching(/flash ends at 0x08040000, before the scratch area 0x08060000/) });
    expect(s.info.mcu!.taps.mcuToModule).toMatch(/tap-mcu-tx-rig$/);
    const mcu = await s.api<{ runs: string; layout: unknown }>('GET', '/mcu');
    expect(mcu).toMatchObject({ runs: 'inert', layout: null });
  });

  test('an erased chip or an application at the flash base: the core is inert, nothing on the console or the UART', async () => {
    const s = await sim(['--baud', '0', '--mcu', 'on', '--flash-image', path.join(root, 'fixtures', 'images', 'STM32_1_0_0.bin')]);
    const mcu = await s.api<{ runs: string; console: string[]; bootloader: unknown }>('GET', '/mcu');
    expect(mcu).toMatchObject({ runs: 'inert', console: [], bootloader: null });
  });
});
