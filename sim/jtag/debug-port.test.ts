// The JTAG side at the wire: remote_bitbang characters in, `R` samples out, checked against the chain,
// JTAG-DP and AHB-AP behaviour of docs/virtual-station.md, OpenOCD §1–2 (no OpenOCD involved), then the socket.
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Stm32Target } from '../target/stm32.ts';
import { DebugPort } from './debug-port.ts';
import { startJtagTarget, type JtagTarget } from './index.ts';

const IR_DPACC = 0xa;
const IR_APACC = 0xb;
const IR_IDCODE = 0xe;
const BS_BYPASS = 0x1f;
const CTRL = 1;
const SELECT = 2;
const RDBUFF = 3;
const CSW = 0;
const TAR = 1;
const DRW = 3;

/**
 * A bit-level JTAG host in the style of OpenOCD's bitbang.c: per bit `write(tck0)`, `R` when captured,
 * `write(tck1)`; every path ends in Run-Test/Idle.
 */
class Host {
  constructor(readonly port: DebugPort) {}

  private feed(s: string): string {
    const input = Buffer.from(s, 'latin1');
    const out = Buffer.alloc(input.length);
    const n = this.port.process(input, out);
    return out.subarray(0, n).toString('latin1');
  }

  private static clk(tms: number, tdi: number, capture: boolean): string {
    const v = (tms << 1) | tdi;
    return String(v) + (capture ? 'R' : '') + String(4 + v);
  }

  reset(): void {
    let s = '';
    for (let i = 0; i < 7; i++) s += Host.clk(1, 0, false);
    s += Host.clk(0, 0, false); // → Run-Test/Idle
    expect(this.feed(s)).toBe('');
  }

  /** Shifts `bits` (LSB first) through IR or DR from Run-Test/Idle and back; returns the captured bits. */
  scan(ir: boolean, bits: number[]): number[] {
    let s = Host.clk(1, 0, false); // → Select-DR
    if (ir) s += Host.clk(1, 0, false); // → Select-IR
    s += Host.clk(0, 0, false) + Host.clk(0, 0, false); // → Capture → Shift
    bits.forEach((b, i) => (s += Host.clk(i === bits.length - 1 ? 1 : 0, b, true)));
    s += Host.clk(1, 0, false) + Host.clk(0, 0, false); // Exit1 → Update → Idle
    return [...this.feed(s)].map((c) => Number(c));
  }

  ir(cpu: number, bs = BS_BYPASS): void {
    this.scan(true, toBits(cpu | (bs << 4), 9));
  }

  /** One 36-bit DPACC/APACC scan (35 CPU bits + the BS bypass bit); returns ACK and the captured data. */
  acc(read: boolean, a: number, data = 0): { ack: number; data: number } {
    const out = this.scan(false, [...toBits((read ? 1 : 0) | (a << 1), 3), ...toBits(data, 32), 0]);
    return { ack: fromBits(out.slice(0, 3)), data: fromBits(out.slice(3, 35)) };
  }
}

function toBits(v: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i < 32 ? (v >>> i) & 1 : 0));
}
function fromBits(bits: number[]): number {
  return bits.reduce((acc, b, i) => acc + b * 2 ** i, 0);
}

function setup(target: 'stm32f1x' | 'stm32f4x' = 'stm32f4x') {
  const t = new Stm32Target({ target });
  const port = new DebugPort(t);
  const host = new Host(port);
  host.reset();
  return { t, port, host };
}

/** DP powered up and the AHB-AP selected with 32-bit auto-increment, as OpenOCD leaves it after examine. */
function ready(target: 'stm32f1x' | 'stm32f4x' = 'stm32f4x') {
  const s = setup(target);
  s.host.ir(IR_DPACC);
  s.host.acc(false, CTRL, 0x50000000);
  s.host.acc(false, SELECT, 0);
  s.host.ir(IR_APACC);
  s.host.acc(false, CSW, 0xa2000012);
  return s;
}

describe('JTAG chain', () => {
  test('after reset the DR chain holds both IDCODEs and passes TDI through with a 64-bit delay', () => {
    const { host, t } = setup();
    const out = host.scan(false, Array(96).fill(1));
    expect(fromBits(out.slice(0, 32))).toBe(t.profile.cpuTapId);
    expect(fromBits(out.slice(32, 64))).toBe(t.profile.bsTapId);
    expect(out.slice(64)).toEqual(Array(32).fill(1));
  });

  test('IR capture: CPU 0001, BS xxx01, then TDI', () => {
    const { host } = setup();
    const out = host.scan(true, Array(11).fill(1));
    expect(out.slice(0, 4)).toEqual([1, 0, 0, 0]);
    expect(out.slice(4, 6)).toEqual([1, 0]);
    expect(out.slice(9)).toEqual([1, 1]);
  });

  test('IDCODE instruction with the BS TAP in bypass gives a 33-bit DR', () => {
    const { host, t } = setup('stm32f1x');
    host.ir(IR_IDCODE);
    const out = host.scan(false, [1, 0, ...Array(33).fill(0)]);
    expect(fromBits(out.slice(0, 32))).toBe(t.profile.cpuTapId);
    expect(out.slice(32)).toEqual([0, 1, 0]); // bypass bit captured 0, then TDI delayed by 33 bits
  });

  test('bytes outside the protocol are counted and ignored, and answers keep flowing', () => {
    const { port, host, t } = setup();
    const out = Buffer.alloc(16);
    expect(port.process(Buffer.from('xyz\n\x00\xff', 'latin1'), out)).toBe(0);
    expect(port.stats.unknownBytes).toBe(5);
    host.reset();
    expect(fromBits(host.scan(false, Array(32).fill(0)))).toBe(t.profile.cpuTapId);
  });
});

describe('JTAG-DP', () => {
  test('power-up requests are acknowledged; reads are posted and survive a following write scan', () => {
    const { host } = setup();
    host.ir(IR_DPACC);
    expect(host.acc(false, CTRL, 0x50000000).ack).toBe(0b010);
    host.acc(true, CTRL);
    const collected = host.acc(false, SELECT, 0x000000f0); // a write scan collects the read
    expect(collected).toEqual({ ack: 0b010, data: 0xf0000000 });
    expect(host.acc(true, RDBUFF).data).toBe(0xf0000000); // RDBUFF: the same result again
  });

  test('a bus fault sets STICKYERR, later AP transactions are discarded, and a W1C write clears it', () => {
    const { host, t } = ready();
    host.acc(false, TAR, 0x30000000);
    host.acc(true, DRW);
    host.ir(IR_DPACC);
    host.acc(true, CTRL);
    const stat = host.acc(true, RDBUFF).data;
    expect(stat & 0x20).toBe(0x20);
    host.ir(IR_APACC);
    host.acc(false, TAR, 0x20000000);
    host.acc(false, DRW, 0x12345678); // discarded
    expect(t.read32(0x20000000)).toBe(0);
    host.ir(IR_DPACC);
    host.acc(false, CTRL, 0x50000020);
    host.acc(true, CTRL);
    expect(host.acc(true, RDBUFF).data & 0x20).toBe(0);
  });
});

describe('AHB-AP', () => {
  test('IDR, CFG = 0, nothing behind APSEL 1, packed transfers refused', () => {
    const { host } = ready();
    host.ir(IR_DPACC);
    host.acc(false, SELECT, 0xf0);
    host.ir(IR_APACC);
    host.acc(true, 3); // IDR at 0xFC
    expect(host.acc(true, 1).data).toBe(0x24770011); // collects IDR, posts CFG (0xF4)
    host.ir(IR_DPACC);
    expect(host.acc(false, SELECT, 0x010000f0).data).toBe(0); // CFG
    host.ir(IR_APACC);
    host.acc(true, 3);
    host.ir(IR_DPACC);
    expect(host.acc(true, RDBUFF).data).toBe(0); // AP #1 IDR
    host.acc(false, SELECT, 0);
    host.ir(IR_APACC);
    host.acc(false, CSW, 0xa2000020);
    host.acc(true, CSW);
    expect(host.acc(true, CSW).data >>> 0).toBe(0xa2000040);
  });

  test('DRW reads auto-increment TAR; BD0–BD3 reach the 16-byte block without moving it', () => {
    const { host, t } = ready();
    t.loadFlash(Buffer.from([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]));
    host.acc(false, TAR, 0x08000000);
    host.acc(true, DRW);
    expect(host.acc(true, DRW).data).toBe(1);
    expect(host.acc(true, DRW).data).toBe(2);
    expect(host.acc(true, TAR).data).toBe(3);
    expect(host.acc(true, TAR).data >>> 0).toBe(0x0800000c);
    host.acc(false, TAR, 0x08000ffc);
    host.acc(true, DRW);
    host.acc(true, TAR);
    expect(host.acc(true, TAR).data >>> 0).toBe(0x08000000); // the increment wraps within 4 KiB
    host.acc(false, TAR, 0xe000ed00);
    host.ir(IR_DPACC);
    host.acc(false, SELECT, 0x10);
    host.ir(IR_APACC);
    host.acc(true, 0); // BD0 = CPUID
    expect(host.acc(true, 1).data >>> 0).toBe(t.profile.cpuid); // posts BD1 (0xE000ED04)
  });

  test('half-word and byte writes take their data from the lanes of their address', () => {
    const { host, t } = ready();
    host.acc(false, CSW, 0xa2000011); // 16-bit, auto-increment
    host.acc(false, TAR, 0x20000002);
    host.acc(false, DRW, 0x24890000);
    host.acc(false, CSW, 0xa2000010); // 8-bit
    host.acc(false, TAR, 0x20000001);
    host.acc(false, DRW, 0x00005a00);
    expect(t.read32(0x20000000) >>> 0).toBe(0x24895a00);
  });
});

describe('power', () => {
  test('an unpowered target answers every sample with 1; power-on brings the TAP back in reset with an unpowered DP', () => {
    const { host, t } = ready();
    t.setPower(false);
    const out = host.scan(false, Array(40).fill(0));
    expect(out).toEqual(Array(40).fill(1));
    t.setPower(true);
    host.reset();
    expect(fromBits(host.scan(false, Array(32).fill(0)))).toBe(t.profile.cpuTapId);
    host.ir(IR_DPACC);
    host.acc(true, CTRL);
    expect(host.acc(true, RDBUFF).data).toBe(0);
  });
});

describe('remote_bitbang socket', () => {
  let sim: JtagTarget | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  function connect(port: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
  }
  function answers(s: net.Socket, n: number): Promise<string> {
    return new Promise((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error(`expected ${n} answer bytes, got "${got}"`)), 5000);
      s.on('data', function onData(d: Buffer) {
        got += d.toString('latin1');
        if (got.length >= n) {
          clearTimeout(timer);
          s.off('data', onData);
          resolve(got);
        }
      });
    });
  }
  const idcodeScan = (() => {
    let s = 'Bbr';
    for (let i = 0; i < 7; i++) s += '26';
    s += '04' + '26' + '04' + '04'; // Idle, Select-DR, Capture-DR, Shift-DR
    for (let i = 0; i < 32; i++) s += i === 31 ? '2R6' : '0R4';
    return s + '26' + '04';
  })();

  test('answers a chunk at once, ignores garbage, closes on Q, and serves the next debugger', async () => {
    sim = await startJtagTarget({ target: 'stm32f1x' });
    expect(sim.info).toEqual({ host: '127.0.0.1', port: expect.any(Number), target: 'stm32f1x' });
    const a = await connect(sim.info.port);
    const got = answers(a, 32);
    a.write('garbage\x00' + idcodeScan);
    const bits = await got;
    expect(parseInt([...bits].reverse().join(''), 2)).toBe(0x3ba00477);
    const closed = new Promise((resolve) => a.on('close', resolve));
    a.write('Q');
    await closed;
    const b = await connect(sim.info.port);
    const got2 = answers(b, 32);
    b.write(idcodeScan);
    expect(parseInt([...(await got2)].reverse().join(''), 2)).toBe(0x3ba00477);
    b.destroy();
  });

  test('a peer that floods samples without reading the answers is dropped, not buffered without bound', async () => {
    sim = await startJtagTarget({ target: 'stm32f4x' });
    const a = await connect(sim.info.port);
    a.pause();
    a.on('error', () => {});
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the simulator kept a non-reading peer for 20 s')), 20_000);
      a.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const block = Buffer.alloc(1 << 20, 'R');
    let sent = 0;
    const pump = (): void => {
      while (!a.destroyed && sent < 64 && a.write(block)) sent++;
      if (!a.destroyed && sent < 64) a.once('drain', pump);
    };
    pump();
    await closed;
    expect(sent).toBeLessThan(64);
    const b = await connect(sim.info.port);
    const got = answers(b, 32);
    b.write(idcodeScan);
    expect(parseInt([...(await got)].reverse().join(''), 2)).toBe(0x4ba00477);
    b.destroy();
  });

  test('a debugger that drops mid-scan leaves the simulator serving; a newer connection takes over', async () => {
    sim = await startJtagTarget({ target: 'stm32f4x' });
    const a = await connect(sim.info.port);
    a.write(idcodeScan.slice(0, 40));
    a.destroy();
    const b = await connect(sim.info.port);
    const c = await connect(sim.info.port);
    const bClosed = new Promise((resolve) => b.on('close', resolve));
    await bClosed; // the older connection is dropped in favour of the newer one
    const got = answers(c, 32);
    c.write(idcodeScan);
    expect(parseInt([...(await got)].reverse().join(''), 2)).toBe(0x4ba00477);
    c.destroy();
  });
});
