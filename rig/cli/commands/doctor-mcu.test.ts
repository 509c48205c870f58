// rig doctor's MCU-side checks: the layout against the flash, and the taps and console on real ptys whose
// far ends play an MCU that talks to its module when reset (or one that stays silent).
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.ts';
import type { HardwareStationConfig } from '../../config/schema.ts';
import { startPtyPair } from '../../at/testing/pty.ts';
import type { PtyPair } from '../../at/testing/pty.ts';
import { resolveTimeouts } from '../../station/timeouts.ts';
import { checkMcuLayout, checkMcuSide } from './doctor-mcu.ts';
import type { CheckSink } from './doctor-mcu.ts';
import { vmcuLayout as layout } from '../../sota/testing/layout.ts';


describe('checkMcuLayout', () => {
  it('a layout inside the flash has no problem; each region outside it is named with its range', () => {
    expect(checkMcuLayout(layout, { base: 0x0800_0000, size: 512 * 1024 })).toEqual([]);
    expect(checkMcuLayout(layout, { base: 0x0800_0000, size: 256 * 1024 })).toEqual([
      'slot B 0x8040000+131072 lies outside the flash 0x8000000..0x8040000',
      'scratch 0x8060000+2048 lies outside the flash 0x8000000..0x8040000',
    ]);
  });
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function pty(): Promise<PtyPair> {
  const p = await startPtyPair();
  cleanup.push(() => p.dispose());
  return p;
}

async function writer(path: string): Promise<(text: string) => void> {
  const s = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => s.open((e) => (e ? rej(e) : res())));
  s.on('error', () => undefined);
  cleanup.push(() => new Promise<void>((r) => (s.isOpen ? s.close(() => r()) : r())));
  return (text) => void s.write(Buffer.from(text, 'latin1'));
}

function sink(): CheckSink & { rows: { check: string; status: string; detail: string }[] } {
  const rows: { check: string; status: string; detail: string }[] = [];
  return { rows, add: (check, status, detail) => rows.push({ check, status, detail }), skip: (check, detail) => rows.push({ check, status: 'skip', detail }) };
}

async function bench(withConsole: boolean): Promise<{ hw: HardwareStationConfig; mcuTx: (t: string) => void; moduleTx: (t: string) => void; consoleTx: (t: string) => void }> {
  const [mcuLine, moduleLine, consoleLine] = [await pty(), await pty(), await pty()];
  const cfg = parseConfig({
    stations: {
      b: {
        module: { port: '/dev/null' },
        probe: { interface: { kind: 'stlink' }, target: 'stm32f1x' },
        layout: { slotAddress: 0x0802_0000, slotSize: 0x20000 },
        timeouts: { bootMs: 1500, marginMs: 200 },
        mcu: { taps: { mcuToModule: mcuLine.a, moduleToMcu: moduleLine.a }, ...(withConsole ? { console: { port: consoleLine.a } } : {}), layout, bootRecord: 'vmcu-1' },
      },
    },
  });
  return { hw: cfg.stations.b as HardwareStationConfig, mcuTx: await writer(mcuLine.b), moduleTx: await writer(moduleLine.b), consoleTx: await writer(consoleLine.b) };
}

describe('checkMcuSide on ptys', () => {
  it('an erased flash base has nothing to say: the talk check says so, without a reset or a wait', async () => {
    const b = await bench(false);
    const c = sink();
    const undo: (() => Promise<void>)[] = [];
    cleanup.push(async () => {
      for (const u of undo.reverse()) await u();
    });
    await checkMcuSide(c, { station: 'b', hw: b.hw, timeouts: resolveTimeouts(b.hw.timeouts), signal: new AbortController().signal, target: { flash: { base: 0x0800_0000, size: 512 * 1024 } } as never, reset: () => Promise.reject(new Error('must not reset')), firmwarePresent: () => Promise.resolve(false), undo });
    expect(c.rows.map((r) => [r.check, r.status])).toEqual([
      ['MCU layout fits the flash', 'ok'],
      ['MCU taps open', 'ok'],
      ['MCU talks after reset', 'ok'],
    ]);
    expect(c.rows[2]!.detail).toMatch(/^not checked: the flash base 0x8000000 is erased/);
  });

  it('an MCU that talks at reset: taps and console carry lines', async () => {
    const b = await bench(true);
    const c = sink();
    const undo: (() => Promise<void>)[] = [];
    cleanup.push(async () => {
      for (const u of undo.reverse()) await u();
    });
    const reset = () => {
      // What a reset MCU does at start: a boot line, then AT to its module, which answers.
      b.consoleTx('[boot] BOOT 1_0_0\r\n');
      b.mcuTx('AT\r');
      b.moduleTx('\r\nOK\r\n');
      return Promise.resolve('a test reset');
    };
    await checkMcuSide(c, { station: 'b', hw: b.hw, timeouts: resolveTimeouts(b.hw.timeouts), signal: new AbortController().signal, target: { flash: { base: 0x0800_0000, size: 512 * 1024 } } as never, reset, undo });
    expect(c.rows.map((r) => [r.check, r.status])).toEqual([
      ['MCU layout fits the flash', 'ok'],
      ['MCU taps open', 'ok'],
      ['MCU console opens', 'ok'],
      ["MCU tap carries the MCU's commands", 'ok'],
      ["module tap carries the module's answers", 'ok'],
      ['MCU console prints', 'ok'],
    ]);
    expect(c.rows[3]!.detail).toBe('1 lines after a test reset, first "AT"');
    expect(c.rows[5]!.detail).toBe('1 lines, first "[boot] BOOT 1_0_0"');
  });

  it('a silent MCU is a warning within the bound (proxy mode needs no taps); a layout too big for the flash fails', async () => {
    const b = await bench(false);
    const c = sink();
    const undo: (() => Promise<void>)[] = [];
    cleanup.push(async () => {
      for (const u of undo.reverse()) await u();
    });
    await checkMcuSide(c, { station: 'b', hw: b.hw, timeouts: resolveTimeouts(b.hw.timeouts), signal: new AbortController().signal, target: { flash: { base: 0x0800_0000, size: 256 * 1024 } } as never, reset: () => Promise.resolve('a test reset'), undo });
    expect(c.rows.map((r) => [r.check, r.status])).toEqual([
      ['MCU layout fits the flash', 'fail'],
      ['MCU taps open', 'ok'],
      ["MCU tap carries the MCU's commands", 'warn'],
      ["module tap carries the module's answers", 'warn'],
    ]);
    expect(c.rows[2]!.detail).toMatch(/^nothing on .* within 1700 ms of a test reset$/);
  });
});
