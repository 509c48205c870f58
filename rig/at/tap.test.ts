// The taps and the console on real ptys (socat), as the virtual station and a USB-UART give them: the far
// ends play the MCU's and the module's TX lines.
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { InfrastructureError } from '../errors.ts';
import type { TapFrame } from './passive.ts';
import { ConsolePort, TapPair } from './tap.ts';
import type { ConsoleLine } from './tap.ts';
import { startPtyPair } from './testing/pty.ts';
import type { PtyPair } from './testing/pty.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function pty(): Promise<PtyPair> {
  const p = await startPtyPair();
  cleanup.push(() => p.dispose());
  return p;
}

async function writer(path: string): Promise<(bytes: string | Buffer) => Promise<void>> {
  const s = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => s.open((e) => (e ? rej(e) : res())));
  s.on('error', () => undefined);
  cleanup.push(() => new Promise<void>((r) => (s.isOpen ? s.close(() => r()) : r())));
  return (bytes) => new Promise<void>((res, rej) => s.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, (e) => (e ? rej(e) : s.drain(() => res()))));
}

/** Resolves with the frames once `done` says so, bounded. */
function collect<T>(sink: T[], done: (all: T[]) => boolean, ms = 5000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (done(sink)) {
        clearInterval(timer);
        resolve(sink);
      } else if (Date.now() - started > ms) {
        clearInterval(timer);
        reject(new Error(`only ${JSON.stringify(sink.map((x) => (x as { text?: string }).text))} within ${ms} ms`));
      }
    }, 10);
  });
}

describe('TapPair on ptys', () => {
  it('frames both directions, attributes an echo-less answer to the command tapped on the other line, and recovers a cut-short block', async () => {
    const [mcuLine, moduleLine] = [await pty(), await pty()];
    const frames: TapFrame[] = [];
    const taps = new TapPair({ station: 'bench-t', mcu: mcuLine.a, module: moduleLine.a, baudRate: 115200 }, (f) => frames.push(f));
    await taps.open();
    cleanup.push(() => taps.close());
    const [mcuTx, moduleTx] = [await writer(mcuLine.b), await writer(moduleLine.b)];

    await mcuTx('AT+CPIN?\r');
    await collect(frames, (f) => f.length >= 1);
    await moduleTx('\r\n+CPIN: READY\r\n\r\nOK\r\n');
    await collect(frames, (f) => f.some((x) => x.kind === 'final'));
    await mcuTx('AT+QIOTOTARD=0,512\r');
    await collect(frames, (f) => f.filter((x) => x.kind === 'command').length === 2);
    // The module loses power 100 bytes into a 512-byte block and prints its boot banner after the restart.
    await moduleTx(Buffer.concat([Buffer.from('\r\n+QIOTOTARD: 0,512\r\n'), Buffer.alloc(100, 0x55)]));
    await moduleTx('\r\nRDY\r\n');
    await collect(frames, (f) => f.some((x) => x.text === 'RDY'));

    expect(frames.map((f) => [f.dir, f.kind, f.text])).toEqual([
      ['mcu', 'command', 'AT+CPIN?'],
      ['module', 'answer', '+CPIN: READY'],
      ['module', 'final', 'OK'],
      ['mcu', 'command', 'AT+QIOTOTARD=0,512'],
      ['module', 'noise', '+QIOTOTARD: 0,512 (only 107 of its bytes came)'],
      ['module', 'noise', `${'U'.repeat(60)}… (partial line)`],
      ['module', 'urc', 'RDY'],
    ]);
    // The RDY came long after the rest of the block should have: the wait was bounded by the line's rate.
    const rdy = frames.at(-1)!;
    expect(rdy.t).toBeGreaterThan(frames[3]!.t);
    expect(taps.vanished).toBeUndefined();
  });

  it('a tap whose adapter goes away says so; one that cannot open is an infrastructure error naming the port', async () => {
    const [mcuLine, moduleLine] = [await pty(), await pty()];
    const taps = new TapPair({ station: 'bench-t', mcu: mcuLine.a, module: moduleLine.a, baudRate: 115200 }, () => undefined);
    await taps.open();
    cleanup.push(() => taps.close());
    await moduleLine.kill();
    await collect([0], () => taps.vanished !== undefined);
    expect(taps.vanished).toContain(moduleLine.a);

    const other = await pty();
    const missing = new TapPair({ station: 'bench-t', mcu: other.a, module: '/dev/nonexistent-tap', baudRate: 115200 }, () => undefined);
    const err = await missing.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect(String((err as Error).message)).toMatch(/bench-t: could not open the tap module → MCU port \/dev\/nonexistent-tap/);
    // The MCU side it had opened is closed again: it can be opened by someone else.
    expect(missing.mcu.listener.isOpen).toBe(false);
  });
});

describe('ConsolePort on a pty', () => {
  it('gives timestamped lines, control bytes shown as dots', async () => {
    const line = await pty();
    const lines: ConsoleLine[] = [];
    const con = new ConsolePort({ station: 'bench-t', path: line.a, baudRate: 115200 }, (l) => lines.push(l));
    await con.open();
    cleanup.push(() => con.close());
    const tx = await writer(line.b);
    const before = performance.now();
    await tx('[boot] BOOT 1_0_0\r\n[boot] record seq=1 state=confirmed\r\n\x1b[0m[app] STM32 1_0_0 start confirmed\r\n');
    await collect(lines, (l) => l.length === 3);
    expect(lines.map((l) => l.text)).toEqual(['[boot] BOOT 1_0_0', '[boot] record seq=1 state=confirmed', '.[0m[app] STM32 1_0_0 start confirmed']);
    expect(lines.every((l) => l.t >= before)).toBe(true);
  });
});
