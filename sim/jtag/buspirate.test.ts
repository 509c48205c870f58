// The Bus Pirate's binary modes byte for byte, as OpenOCD 0.12's buspirate driver sends them (no OpenOCD
// here; sim/jtag/openocd.test.ts runs the real one through the pty): mode entry, TAP_SHIFT against the
// chain, commands split across reads, the reset lines, the speed handshake, and the leftovers of a host
// that died mid-command.
import { describe, expect, test } from 'vitest';
import { Stm32Target } from '../target/stm32.ts';
import { BusPirate } from './buspirate.ts';
import { DebugPort } from './debug-port.ts';

function setup() {
  const target = new Stm32Target({ target: 'stm32f4x' });
  const port = new DebugPort(target);
  const log: string[] = [];
  const bp = new BusPirate(port, (l) => log.push(l));
  let now = 0;
  const send = (bytes: number[] | Buffer, dt = 1): Buffer => bp.receive(Buffer.from(bytes), (now += dt));
  return { target, port, bp, log, send };
}

function enterOcd(send: ReturnType<typeof setup>['send']): void {
  expect(send(new Array(19).fill(0)).length).toBe(0);
  expect(send([0]).toString('latin1')).toBe('BBIO1');
  expect(send([0x06]).toString('latin1')).toBe('OCD1');
}

/** A TAP_SHIFT command for these (tms, tdi) bits, LSB first, TDI/TMS bytes interleaved. */
function tapShift(bits: [number, number][]): Buffer {
  const n = Math.ceil(bits.length / 8);
  const cmd = Buffer.alloc(3 + 2 * n);
  cmd[0] = 0x05;
  cmd[1] = bits.length >> 8;
  cmd[2] = bits.length & 0xff;
  bits.forEach(([tms, tdi], i) => {
    if (tdi) cmd[3 + 2 * (i >> 3)]! |= 1 << (i & 7);
    if (tms) cmd[4 + 2 * (i >> 3)]! |= 1 << (i & 7);
  });
  return cmd;
}

/** Test-Logic-Reset, then Shift-DR, then 64 captured bits of TDI = 1: the two IDCODEs, CPU TAP first. */
const idcodeScan: [number, number][] = [...Array(5).fill([1, 0]), [0, 0], [1, 0], [0, 0], [0, 0], ...Array(64).fill([0, 1])];

function tdoBits(reply: Buffer, from: number, count: number): bigint {
  let v = 0n;
  for (let i = 0; i < count; i++) if (reply[3 + ((from + i) >> 3)]! & (1 << ((from + i) & 7))) v |= 1n << BigInt(i);
  return v;
}

describe('Bus Pirate binary modes', () => {
  test('20 zeros enter BBIO, 0x06 the OpenOCD mode; TAP_SHIFT clocks the chain and returns its TDO bits', () => {
    const { send, bp } = setup();
    enterOcd(send);
    const reply = send(tapShift(idcodeScan));
    expect([...reply.subarray(0, 3)]).toEqual([0x05, 0, idcodeScan.length]);
    expect(reply.length).toBe(3 + Math.ceil(idcodeScan.length / 8));
    expect(tdoBits(reply, 9, 64)).toBe((0x06413041n << 32n) | 0x4ba00477n);
    expect(bp.stats).toMatchObject({ shifts: 1, bits: idcodeScan.length });
  });

  test('a command split across reads waits for its remaining bytes', () => {
    const { send } = setup();
    enterOcd(send);
    const cmd = tapShift(idcodeScan);
    expect(send(cmd.subarray(0, 2)).length).toBe(0);
    expect(send(cmd.subarray(2, 9)).length).toBe(0);
    const reply = send(cmd.subarray(9));
    expect(tdoBits(reply, 9, 32)).toBe(0x4ba00477n);
  });

  test('SRST and TRST are active-low features: action 0 asserts', () => {
    const { send, target } = setup();
    enterOcd(send);
    expect(send([0x02, 0x08, 0x00]).length).toBe(0);
    expect(target.coreState).toBe('reset');
    send([0x02, 0x08, 0x01]);
    expect(target.coreState).toBe('running');
    // TRST asserted: the TAP is back in Test-Logic-Reset, so the next scan reaches Shift-DR from there.
    send([0x02, 0x04, 0x00]);
    const fromTlr: [number, number][] = [[0, 0], [1, 0], [0, 0], [0, 0], ...Array(32).fill([0, 1])];
    expect(tdoBits(send(tapShift(fromTlr)), 4, 32)).toBe(0x4ba00477n);
  });

  test('port mode and features need no answer; ADCs answer 10 bytes; the speed switch answers after 0xAA 0x55', () => {
    const { send } = setup();
    enterOcd(send);
    expect(send([0x01, 0x02]).length).toBe(0);
    const adc = send([0x03]);
    expect(adc.length).toBe(10);
    expect(adc.readUInt16BE(6) / 155.1515).toBeCloseTo(3.3, 1);
    expect(send([0x07, 0x01]).length).toBe(0);
    expect([...send([0xaa, 0x55])]).toEqual([0x07, 0x01]);
  });

  test('0x00 leaves the OpenOCD mode, 0x0F BBIO; a binary mode this adapter lacks (raw-wire SWD) gets an answer OpenOCD rejects at once', () => {
    const { send, log } = setup();
    enterOcd(send);
    expect(send([0x00]).toString('latin1')).toBe('BBIO1');
    expect(send([0x05]).toString('latin1')).toBe('ERR!');
    expect(log.join('\n')).toMatch(/only OpenOCD JTAG mode/);
    send([0x0f]);
    expect(send([0x06]).length).toBe(0); // terminal mode again: no binary command is understood
  });

  test('an unfinished command left by a host that went away is dropped when a new host starts, after 500 ms', () => {
    const { send, bp, log } = setup();
    enterOcd(send);
    expect(send(tapShift(idcodeScan).subarray(0, 5)).length).toBe(0);
    // Within the window the zeros are taken as the rest of the shift: still waiting for its data.
    expect(send(new Array(4).fill(0), 100).length).toBe(0);
    const fresh = send(new Array(20).fill(0), 600);
    expect(fresh.toString('latin1')).toBe('BBIO1');
    expect(bp.stats.dropped).toBe(1);
    expect(log.join('\n')).toMatch(/dropped \d+ bytes of an unfinished command/);
    expect(send([0x06]).toString('latin1')).toBe('OCD1');
  });

  test('one debugger at a time: another adapter taking the TAP cuts this one off until its host starts again', () => {
    const { send, port } = setup();
    enterOcd(send);
    port.claim({}); // another adapter's debugger, e.g. a remote_bitbang connection
    expect(tdoBits(send(tapShift(idcodeScan)), 0, idcodeScan.length)).toBe((1n << BigInt(idcodeScan.length)) - 1n);
    expect(send([0x00]).toString('latin1')).toBe('BBIO1');
    expect(send([0x06]).toString('latin1')).toBe('OCD1');
    expect(tdoBits(send(tapShift(idcodeScan)), 9, 32)).toBe(0x4ba00477n);
  });

  test('an unpowered target drives no TDO: every bit reads 1', () => {
    const { send, target } = setup();
    enterOcd(send);
    target.setPower(false);
    const reply = send(tapShift(idcodeScan));
    expect(tdoBits(reply, 0, idcodeScan.length)).toBe((1n << BigInt(idcodeScan.length)) - 1n);
  });
});
