// johnny-five (through firmata-io and serialport 13) driving the virtual StandardFirmata board over a real
// pty, with the board's relays wired to the virtual station's rails.
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rails, type RailName } from '../../sim/rails.ts';
import { startFirmataBoard, type FirmataBoardOptions, type RailWiring, type VirtualFirmataBoard } from '../../sim/firmata/board.ts';
import { openPtyPair, type PtyPair } from '../../sim/pty.ts';
import { AbortedError, ConfigError, InfrastructureError } from '../errors.ts';
import { FirmataLine } from './firmata.ts';
import { cycle, pulse } from './line.ts';
import { openPowerLines, type PowerLines } from './open.ts';
import type { PowerConfigInput } from './config.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-power-'));
// After the file's last test: every test's ptys live in it.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bench(pins: Partial<Record<RailName, RailWiring>>, extra: Pick<FirmataBoardOptions, 'version'> = {}): Promise<{ rails: Rails; board: VirtualFirmataBoard }> {
  const rails = new Rails();
  const board = await startFirmataBoard({ rails, pins, dir, name: `b${cleanups.length}-${Date.now().toString(36)}`, ...extra });
  cleanups.push(() => board.close());
  return { rails, board };
}

async function open(config: PowerConfigInput): Promise<PowerLines> {
  const lines = await openPowerLines(config, { station: 'bench-t' });
  cleanups.push(() => lines.close());
  return lines;
}

/** Every level a rail takes, in order, with the performance.now() at which it took it. */
function recordRailTimed(rails: Rails, rail: RailName): Array<{ level: boolean; at: number }> {
  const seen: Array<{ level: boolean; at: number }> = [];
  rails.on('change', (name, level) => {
    if (name === rail) seen.push({ level, at: performance.now() });
  });
  return seen;
}

/** Every level a rail takes, in order. */
function recordRail(rails: Rails, rail: RailName): boolean[] {
  const seen: boolean[] = [];
  rails.on('change', (name, level) => {
    if (name === rail) seen.push(level);
  });
  return seen;
}

describe('firmata relay lines', () => {
  test('an NO relay energises its coil to switch on; the rail wired through the NO contact follows', async () => {
    const { rails, board } = await bench({ moduleVbat: { pin: 2, contact: 'NO' } });
    const power = await open({
      boards: { relays: { port: board.info.port } },
      lines: { 'module-vbat': { kind: 'firmata', board: 'relays', pin: 2, relay: 'NO', safe: 'on' } },
    });
    const vbat = power.line('module-vbat');
    expect(vbat.name).toBe('bench-t/module-vbat');
    expect(board.pinLevel(2)).toBe(true); // opened at its safe level "on"
    expect(rails.get('moduleVbat')).toBe(true);

    await vbat.set(false);
    expect(board.pinLevel(2)).toBe(false);
    expect(rails.get('moduleVbat')).toBe(false);
    expect(await vbat.get()).toBe(false);

    await vbat.set(true);
    expect(board.pinLevel(2)).toBe(true);
    expect(rails.get('moduleVbat')).toBe(true);
    expect(await vbat.get()).toBe(true);
  });

  test('an NC relay inverts the pin: on = coil off, and the rail through the NC contact follows', async () => {
    const { rails, board } = await bench({ targetVdd: { pin: 4, contact: 'NC' } });
    const power = await open({
      boards: { relays: { port: board.info.port } },
      lines: { 'target-vdd': { kind: 'firmata', board: 'relays', pin: 4, relay: 'NC', initial: 'off', safe: 'on' } },
    });
    const vdd = power.line('target-vdd');
    expect(board.pinLevel(4)).toBe(true); // off through NC = coil energised
    expect(rails.get('targetVdd')).toBe(false);
    expect(await vdd.get()).toBe(false);

    await vdd.set(true);
    expect(board.pinLevel(4)).toBe(false);
    expect(rails.get('targetVdd')).toBe(true);
    expect(await vdd.get()).toBe(true);
  });

  test('a line configured NO on an NC-wired relay switches the rail the wrong way round', async () => {
    const { rails, board } = await bench({ targetVdd: { pin: 4, contact: 'NC' } });
    const power = await open({
      boards: { relays: { port: board.info.port } },
      lines: { 'target-vdd': { kind: 'firmata', board: 'relays', pin: 4, relay: 'NO', initial: 'on' } },
    });
    expect(rails.get('targetVdd')).toBe(false);
    await power.line('target-vdd').set(false);
    expect(rails.get('targetVdd')).toBe(true);
  });

  test('several lines share one board and one port; switching one leaves the others as they are', async () => {
    const { rails, board } = await bench({ moduleVbat: 2, moduleResetN: 3, targetVdd: 4, targetNrst: 5 });
    const config = (lines: string[]): PowerConfigInput => ({
      boards: { relays: { port: board.info.port, connectTimeoutMs: 3000 } },
      lines: Object.fromEntries(
        lines.map((l) => [l, { kind: 'firmata' as const, board: 'relays', pin: board.info.pins[l as RailName]!, relay: 'NC' as const, safe: l === 'targetNrst' ? ('off' as const) : ('on' as const) }]),
      ),
    });
    // A first run leaves the target held in reset (its safe level here), coil energised on pin 5.
    const first = await openPowerLines(config(['targetNrst']), { station: 'bench-t' });
    await first.line('targetNrst').set(true);
    await first.close();
    expect(board.pinLevel(5)).toBe(true);
    expect(rails.get('targetNrst')).toBe(false);

    // The next run opens other relays of the same 8-pin port; firmata-io writes whole ports, so the
    // rig must have learnt pin 5's latch, or writing pin 2 would release the reset.
    const power = await open(config(['moduleVbat', 'moduleResetN', 'targetVdd']));
    const nrst = recordRail(rails, 'targetNrst');
    await power.line('moduleVbat').set(false);
    await power.line('targetVdd').set(false);
    await power.line('moduleVbat').set(true);
    expect(rails.snapshot()).toEqual({ moduleVbat: true, moduleResetN: true, targetVdd: false, targetNrst: false });
    expect(nrst).toEqual([]);
  });

  test('cycle switches the rail off for the given time and back on; pulse does the same to a reset line', async () => {
    const { rails, board } = await bench({ moduleVbat: 2, targetNrst: 5 });
    const power = await open({
      boards: { relays: { port: board.info.port } },
      lines: {
        vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC' },
        nrst: { kind: 'firmata', board: 'relays', pin: 5, relay: 'NC' },
      },
    });
    const vbat = recordRailTimed(rails, 'moduleVbat');
    const nrst = recordRailTimed(rails, 'targetNrst');
    await cycle(power.line('vbat'), 50);
    await pulse(power.line('nrst'), 20);
    expect(vbat.map((e) => e.level)).toEqual([false, true]);
    expect(nrst.map((e) => e.level)).toEqual([false, true]);
    // From the board handling the off write to it handling the on write: never shorter than asked,
    // whatever the pty adds (a lower bound the protocol promises, not a speed).
    expect(vbat[1]!.at - vbat[0]!.at).toBeGreaterThanOrEqual(50);
    expect(nrst[1]!.at - nrst[0]!.at).toBeGreaterThanOrEqual(20);
  });

  test('the crash-path write reaches a StandardFirmata older than 2.5 (no SET_DIGITAL_PIN_VALUE) as a port write', async () => {
    const { rails, board } = await bench({ moduleVbat: 2, targetNrst: 5 }, { version: [2, 4] });
    const power = await open({
      boards: { relays: { port: board.info.port } },
      lines: {
        vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC', initial: 'off', safe: 'on' },
        nrst: { kind: 'firmata', board: 'relays', pin: 5, relay: 'NC', initial: 'off', safe: 'on' },
      },
    });
    const vbat = power.line('vbat');
    expect(vbat).toBeInstanceOf(FirmataLine);
    expect(rails.snapshot()).toMatchObject({ moduleVbat: false, targetNrst: false });
    (vbat as FirmataLine).applySafeStateSync();
    // The board handles commands in order: its answer to this query comes after it handled the write.
    expect(await vbat.get()).toBe(true);
    expect(rails.get('moduleVbat')).toBe(true);
    expect(rails.get('targetNrst')).toBe(false); // pin 5 shares the port; the port write kept its latch
  });

  test('an aborted cycle still switches the line back on, and says so', async () => {
    const { rails, board } = await bench({ moduleVbat: 2 });
    const power = await open({ boards: { relays: { port: board.info.port } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC' } } });
    const vbat = recordRail(rails, 'moduleVbat');
    const ac = new AbortController();
    rails.on('change', (name, level) => {
      if (name === 'moduleVbat' && !level) ac.abort(new Error('test timed out'));
    });
    const err = await cycle(power.line('vbat'), 60_000, { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toMatch(/bench-t\/vbat: power cycle aborted after \d+ ms of 60000 ms; the line is back on/);
    expect(vbat).toEqual([false, true]);
    expect(await power.line('vbat').get()).toBe(true);
  });

  test('bad durations are refused before the line is touched', async () => {
    const { rails, board } = await bench({ moduleVbat: 2 });
    const power = await open({ boards: { relays: { port: board.info.port } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC' } } });
    const vbat = recordRail(rails, 'moduleVbat');
    await expect(cycle(power.line('vbat'), -5)).rejects.toThrow(ConfigError);
    await expect(pulse(power.line('vbat'), Number.NaN)).rejects.toThrow(/duration must be a finite number/);
    expect(vbat).toEqual([]);
  });

  test('a board that never answers gives a connect-timeout error naming the port', async () => {
    const silent: PtyPair = await openPtyPair(dir, `silent-${Date.now().toString(36)}`);
    cleanups.push(() => silent.close());
    const err = await openPowerLines(
      { boards: { relays: { port: silent.rigPath, connectTimeoutMs: 400 } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2 } } },
      { station: 'bench-t' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain(`bench-t: Firmata board "relays" on ${silent.rigPath}: no Firmata handshake within 400 ms`);
    expect((err as InfrastructureError).seen).toMatch(/no REPORT_VERSION answer/);
  });

  test('an aborted handshake is an AbortedError and frees the port', async () => {
    const silent: PtyPair = await openPtyPair(dir, `abort-${Date.now().toString(36)}`);
    cleanups.push(() => silent.close());
    const { SerialPort } = await import('serialport');
    // The board's side of the wire: the first byte the rig sends is its handshake's query; abort right then.
    const boardSide = new SerialPort({ path: silent.simPath, baudRate: 57600, lock: false });
    cleanups.push(() => new Promise<void>((resolve) => (boardSide.isOpen ? boardSide.close(() => resolve()) : resolve())));
    await new Promise<void>((resolve, reject) => {
      boardSide.once('open', resolve);
      boardSide.once('error', reject);
    });
    const ac = new AbortController();
    boardSide.once('data', () => ac.abort(new Error('test cancelled')));
    const opening = openPowerLines(
      { boards: { relays: { port: silent.rigPath, connectTimeoutMs: 30_000 } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2 } } },
      { station: 'bench-t', signal: ac.signal },
    );
    const err = await opening.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toContain(`on ${silent.rigPath}: handshake aborted`);
    // serialport's exclusive lock would refuse this open if the aborted attempt had kept the port.
    const again = await new Promise<InstanceType<typeof SerialPort>>((resolve, reject) => {
      const p = new SerialPort({ path: silent.rigPath, baudRate: 57600 }, (e) => (e ? reject(e) : resolve(p)));
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });

  test('a port that does not exist is named in the error', async () => {
    const missing = path.join(dir, 'no-such-board');
    const err = await openPowerLines({ boards: { relays: { port: missing } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2 } } }, { station: 'bench-t' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain(`on ${missing}: could not open the serial port`);
  });

  test('a line that cannot be opened leaves the lines already opened at their safe level, and the port free', async () => {
    const { rails, board } = await bench({ moduleVbat: 2 });
    const config: PowerConfigInput = {
      boards: { relays: { port: board.info.port } },
      lines: {
        vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC', initial: 'off', safe: 'on' },
        serialPin: { kind: 'firmata', board: 'relays', pin: 1 }, // D1 is the board's own TX line
      },
    };
    const vbat = recordRail(rails, 'moduleVbat');
    const err = await openPowerLines(config, { station: 'bench-t' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain('bench-t: serialPin: pin 1 of Firmata board "relays"');
    expect(vbat).toEqual([false, true]);
    // The port was closed (serialport's lock would refuse a second open otherwise).
    const again = await open({ boards: { relays: { port: board.info.port } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC' } } });
    expect(await again.line('vbat').get()).toBe(true);
  });

  test('config mistakes are ConfigErrors that name the line', async () => {
    await expect(openPowerLines({ lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2 } } }, { station: 'bench-t' })).rejects.toThrow(/lines\.vbat\.board: no board "relays"/);
    await expect(
      openPowerLines({ boards: { r: { port: '/dev/null' } }, lines: { a: { kind: 'firmata', board: 'r', pin: 2 }, b: { kind: 'firmata', board: 'r', pin: 2 } } }, { station: 'bench-t' }),
    ).rejects.toThrow(/pin 2 of board "r" is already line "a"/);
    await expect(openPowerLines({ lines: { x: { kind: 'gpio', chip: 'pinctrl-rp1' } } }, { station: 'bench-t' })).rejects.toThrow(ConfigError);
  });

  test('a board that vanishes (USB unplugged) makes every switch fail with the port named', async () => {
    const { board } = await bench({ moduleVbat: 2 });
    const power = await open({ boards: { relays: { port: board.info.port } }, lines: { vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC' } } });
    await board.close(); // socat gone: the rig's end hangs up, as an unplugged adapter does
    const err = await power.line('vbat').set(false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain(board.info.port);
    await expect(power.close()).rejects.toThrow(InfrastructureError);
  });

  test('closing drives the safe level and closes the port; a closed line refuses to switch', async () => {
    const { rails, board } = await bench({ targetVdd: 4 });
    const power = await openPowerLines(
      { boards: { relays: { port: board.info.port } }, lines: { vdd: { kind: 'firmata', board: 'relays', pin: 4, relay: 'NC', safe: 'off', initial: 'on' } } },
      { station: 'bench-t' },
    );
    expect(rails.get('targetVdd')).toBe(true);
    const vdd = power.line('vdd');
    await power.close();
    expect(rails.get('targetVdd')).toBe(false);
    await expect(vdd.set(true)).rejects.toThrow(/bench-t: vdd: cannot switch on: the line is closed/);
  });
});
