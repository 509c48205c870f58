// The whole chain a power-cut fault uses: johnny-five switches a relay on the virtual station's Firmata
// board, the relay cuts the module's VBAT rail, the virtual module stops answering AT; switched back on,
// it boots, says RDY, and answers OK. The station runs as its own process, as the rig always starts it.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SerialPort, ReadlineParser } from 'serialport';
import { openPowerLines, type PowerLines } from './open.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface StationLine {
  module: { port: string; baud: number };
  firmata: { port: string; pins: { moduleVbat: number }; contacts: { moduleVbat: 'NO' | 'NC' } };
}

let sim: ChildProcess;
let station: StationLine;
let modem: SerialPort;
let power: PowerLines;
const lines: string[] = [];
let onLine: (() => void) | undefined;

/** Resolves with the lines received until one equals `want`; rejects after `timeoutMs`. */
function lineFrom(start: number, want: string, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const i = lines.indexOf(want, start);
      if (i < 0) return false;
      clearTimeout(timer);
      onLine = undefined;
      resolve(lines.slice(start, i + 1));
      return true;
    };
    const timer = setTimeout(() => {
      onLine = undefined;
      reject(new Error(`no "${want}" from the virtual module within ${timeoutMs} ms; lines since: ${JSON.stringify(lines.slice(start))}`));
    }, timeoutMs);
    if (!check()) onLine = () => void check();
  });
}

beforeAll(async () => {
  sim = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'sim', 'main.ts'), '--time-scale', '0.01', '--exit-on-stdin-close'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  sim.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-3000)));
  station = await new Promise<StationLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sim/main.ts printed no JSON line within 20 s; stderr: ${stderr}`)), 20_000);
    createInterface({ input: sim.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(JSON.parse(l) as StationLine);
    });
    sim.once('exit', (code) => reject(new Error(`sim/main.ts exited (${code}) before its JSON line; stderr: ${stderr}`)));
  });
  modem = await new Promise<SerialPort>((resolve, reject) => {
    const p = new SerialPort({ path: station.module.port, baudRate: station.module.baud }, (err) => (err ? reject(err) : resolve(p)));
  });
  modem.pipe(new ReadlineParser({ delimiter: '\r\n' })).on('data', (l: string) => {
    if (l.trim() !== '') lines.push(l.trim());
    onLine?.();
  });
  power = await openPowerLines(
    {
      boards: { relays: { port: station.firmata.port, connectTimeoutMs: 5000 } },
      lines: { 'module-vbat': { kind: 'firmata', board: 'relays', pin: station.firmata.pins.moduleVbat, relay: station.firmata.contacts.moduleVbat } },
    },
    { station: 'virtual' },
  );
}, 40_000);

afterAll(async () => {
  await power?.close();
  if (modem?.isOpen) await new Promise<void>((resolve) => modem.close(() => resolve()));
  if (sim && sim.exitCode === null) {
    const exited = new Promise<void>((resolve) => sim.once('exit', () => resolve()));
    sim.stdin!.end(); // --exit-on-stdin-close: the sim closes its parts (ptys, socat) and exits
    await exited;
  }
});

test('a relay cuts the module: AT goes unanswered; switched back on, RDY then OK', async () => {
  const vbat = power.line('module-vbat');
  expect(await vbat.get()).toBe(true);
  let mark = lines.length;
  modem.write('AT\r');
  await lineFrom(mark, 'OK', 5000);

  await vbat.set(false);
  expect(await vbat.get()).toBe(false);
  mark = lines.length;
  modem.write('AT\r');
  // A powered-off module has no way to answer; give a live one ample time (it answered in ms above).
  await expect(lineFrom(mark, 'OK', 500)).rejects.toThrow(/no "OK"/);
  expect(lines.slice(mark)).toEqual([]);

  mark = lines.length;
  await vbat.set(true);
  const boot = await lineFrom(mark, 'RDY', 5000);
  expect(boot).toEqual(['RDY']);
  mark = lines.length;
  modem.write('AT\r');
  expect(await lineFrom(mark, 'OK', 5000)).toContain('OK');
});
