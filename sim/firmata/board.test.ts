// The virtual StandardFirmata board against the real firmata-io client over a real pty, plus the framing
// rules that keep garbage from wedging it.
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import firmataIo from 'firmata-io';
import { Rails } from '../rails.ts';
import { startFirmataBoard } from './board.ts';
import { FirmataParser, type FirmataCommand } from './protocol.ts';

const { Firmata } = firmataIo;
type Io = InstanceType<typeof Firmata>;

const dir = mkdtempSync(path.join(os.tmpdir(), 'sim-firmata-'));
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});
// After the file's last test: every test's ptys live in it.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function connect(portPath: string): Promise<{ io: Io; port: SerialPort }> {
  const port = new SerialPort({ path: portPath, baudRate: 57600, hupcl: false, autoOpen: false });
  const io = new Firmata(port, { reportVersionTimeout: 0 });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  cleanups.push(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
  await new Promise<void>((resolve) => io.once('ready', () => resolve()));
  return { io, port };
}

const pinState = (io: Io, pin: number): Promise<{ mode?: number; state?: number }> =>
  new Promise((resolve) => io.queryPinState(pin, () => resolve(io.pins[pin]!)));

describe('virtual StandardFirmata board', () => {
  test('answers the handshake firmata.js performs: version, firmware, capabilities, analog mapping', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2 }, dir, name: 'hs' });
    cleanups.push(() => board.close());
    const { io } = await connect(board.info.port);
    expect(io.version).toEqual({ major: 2, minor: 5 });
    expect(io.firmware.name).toBe('StandardFirmata.ino');
    expect(io.pins).toHaveLength(20);
    expect(io.pins[0]!.supportedModes).toEqual([]); // D0/D1 carry the serial link
    expect(io.pins[3]!.supportedModes).toEqual(expect.arrayContaining([io.MODES.INPUT, io.MODES.OUTPUT, io.MODES.PWM]));
    expect(io.pins[14]!.analogChannel).toBe(0);
    expect(io.pins[2]!.analogChannel).toBe(127);
    expect(await pinState(io, 2)).toMatchObject({ mode: io.MODES.OUTPUT, state: 0 });
    expect(await pinState(io, 14)).toMatchObject({ mode: io.MODES.ANALOG });
    expect(board.info).toMatchObject({ pins: { moduleVbat: 2 }, contacts: { moduleVbat: 'NC' } });
  });

  test('digital writes per port and per pin drive the relays, and the relays the rails', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2, targetNrst: { pin: 5, contact: 'NO' } }, dir, name: 'dw' });
    cleanups.push(() => board.close());
    expect(rails.snapshot()).toMatchObject({ moduleVbat: true, targetNrst: false }); // all coils off at boot
    const { io, port } = await connect(board.info.port);
    io.pinMode(5, io.MODES.OUTPUT);
    io.digitalWrite(5, 1); // DIGITAL_MESSAGE for port 0
    expect(await pinState(io, 5)).toMatchObject({ state: 1 });
    expect(rails.get('targetNrst')).toBe(true);
    port.write(Buffer.from([0xf5, 2, 1])); // SET_DIGITAL_PIN_VALUE
    expect(await pinState(io, 2)).toMatchObject({ state: 1 });
    expect(rails.get('moduleVbat')).toBe(false);
    expect(board.pinLevel(5)).toBe(true);
    // A pin switched to INPUT no longer drives its coil.
    io.pinMode(5, io.MODES.INPUT);
    expect(await pinState(io, 5)).toMatchObject({ mode: io.MODES.INPUT });
    expect(rails.get('targetNrst')).toBe(false);
  });

  test('a board configured older than 2.5 reports that version and drops SET_DIGITAL_PIN_VALUE, as StandardFirmata 2.4 does', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2 }, dir, name: 'old', version: [2, 4] });
    cleanups.push(() => board.close());
    const { io, port } = await connect(board.info.port);
    expect(io.version).toEqual({ major: 2, minor: 4 });
    expect(io.firmware.version).toEqual({ major: 2, minor: 4 });
    port.write(Buffer.from([0xf5, 2, 1]));
    expect(await pinState(io, 2)).toMatchObject({ state: 0 });
    expect(rails.get('moduleVbat')).toBe(true);
    io.digitalWrite(2, 1); // DIGITAL_MESSAGE works on every version
    expect(await pinState(io, 2)).toMatchObject({ state: 1 });
    expect(rails.get('moduleVbat')).toBe(false);
  });

  test('a relay that switches drives only its own rail: an operator switching another rail off stays in force', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2, targetVdd: 4, targetNrst: 5 }, dir, name: 'ov' });
    cleanups.push(() => board.close());
    const { io, port } = await connect(board.info.port);
    rails.set('targetVdd', false); // what POST /target/power {on:false} does
    io.digitalWrite(2, 1); // a DIGITAL_MESSAGE for port 0, which carries pins 4 and 5 too
    expect(await pinState(io, 2)).toMatchObject({ state: 1 });
    expect(rails.get('moduleVbat')).toBe(false);
    expect(rails.get('targetVdd')).toBe(false);
    port.write(Buffer.from([0xf5, 2, 0])); // SET_DIGITAL_PIN_VALUE
    io.pinMode(5, io.MODES.OUTPUT); // the mode re-asserted: no contact moves
    expect(await pinState(io, 2)).toMatchObject({ state: 0 });
    expect(rails.snapshot()).toEqual({ moduleVbat: true, moduleResetN: true, targetVdd: false, targetNrst: true });
    // A reset with target-vdd's coil already off moves no contact on that relay either.
    port.write(Buffer.from([0xff]));
    expect(await pinState(io, 4)).toMatchObject({ state: 0 });
    expect(rails.get('targetVdd')).toBe(false);
    // target-vdd's own relay moving does drive its rail.
    io.digitalWrite(4, 1);
    io.digitalWrite(4, 0);
    expect(await pinState(io, 4)).toMatchObject({ state: 0 });
    expect(rails.get('targetVdd')).toBe(true);
  });

  test('reports digital inputs when asked, and again when they change', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: {}, dir, name: 'dr' });
    cleanups.push(() => board.close());
    const { io } = await connect(board.info.port);
    io.pinMode(9, io.MODES.INPUT);
    board.setInput(9, true);
    const values: number[] = [];
    const first = new Promise<void>((resolve) => io.digitalRead(9, (v) => (values.push(v), values.length === 1 && resolve())));
    await first;
    const second = new Promise<void>((resolve) => io.once('digital-read-9', () => resolve()));
    board.setInput(9, false);
    await second;
    expect(values).toEqual([1, 0]);
  });

  test('garbage on the line is dropped and the board keeps answering', async () => {
    const rails = new Rails();
    const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2 }, dir, name: 'gb' });
    cleanups.push(() => board.close());
    const { io, port } = await connect(board.info.port);
    port.write(Buffer.from([0x00, 0x13, 0x7f, 0xf0, 0x6d, 0x90, 0x01, 0xf0, ...new Array(100).fill(0x11), 0xf7, 0xe5, 0xaa, 0xbb, 0x45]));
    port.write(Buffer.from('AT+QIOTREG=1\r\n'));
    io.pinMode(2, io.MODES.OUTPUT);
    io.digitalWrite(2, 1);
    expect(await pinState(io, 2)).toMatchObject({ mode: io.MODES.OUTPUT, state: 1 });
    expect(rails.get('moduleVbat')).toBe(false);
    expect(board.dropped).toBeGreaterThan(100);
  });

  test('closing the board kills socat and removes the pty links', async () => {
    const board = await startFirmataBoard({ rails: new Rails(), pins: {}, dir, name: 'cl' });
    const { existsSync } = await import('node:fs');
    expect(existsSync(board.info.port)).toBe(true);
    await board.close();
    expect(existsSync(board.info.port)).toBe(false);
  });

  test('refuses a wiring that puts two rails on one pin or a rail on the serial pins', async () => {
    await expect(startFirmataBoard({ rails: new Rails(), pins: { moduleVbat: 2, targetVdd: 2 }, dir })).rejects.toThrow(/pin 2 wired to both moduleVbat and targetVdd/);
    await expect(startFirmataBoard({ rails: new Rails(), pins: { moduleVbat: 1 }, dir })).rejects.toThrow(/digital pins are 2\.\.19/);
  });
});

describe('Firmata framing', () => {
  const parse = (bytes: number[]): { commands: FirmataCommand[]; dropped: number } => {
    const commands: FirmataCommand[] = [];
    const p = new FirmataParser((c) => commands.push(c));
    p.push(Uint8Array.from(bytes));
    return { commands, dropped: p.dropped };
  };

  test('a command byte inside a message starts the new message', () => {
    const { commands, dropped } = parse([0x90, 0x05, 0xf4, 0x02, 0x01]);
    expect(commands).toEqual([{ type: 'setPinMode', pin: 2, mode: 1 }]);
    expect(dropped).toBe(2);
  });

  test('a SysEx cut off by a command is dropped; an overlong one too', () => {
    expect(parse([0xf0, 0x6d, 0xf9]).commands).toEqual([{ type: 'reportVersion' }]);
    expect(parse([0xf0, ...new Array(70).fill(1), 0xf7, 0xf5, 3, 1]).commands).toEqual([{ type: 'setDigitalPinValue', pin: 3, value: 1 }]);
  });

  test('digital messages carry 8 pins in two 7-bit bytes', () => {
    expect(parse([0x91, 0x7f, 0x01]).commands).toEqual([{ type: 'digitalMessage', port: 1, mask: 0xff }]);
  });
});
