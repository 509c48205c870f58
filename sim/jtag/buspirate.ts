// A Bus Pirate in its binary "OpenOCD" mode (the JTAG firmware mode OpenOCD 0.12's `buspirate` adapter
// driver speaks) in front of the virtual STM32's TAP chain. OpenOCD's remote_bitbang makes a round trip
// per DAP scan and a read() per sampled bit; the Bus Pirate driver queues up to 128 scans (8192 TCK cycles)
// into one TAP_SHIFT command and reads all their TDO bits back in one reply, so a bulk read costs one
// exchange per ~512 bytes instead of one per word. The wire bytes (from OpenOCD's buspirate.c and the Bus
// Pirate firmware's binary modes):
//
//   terminal mode:  20 × 0x00 → "BBIO1" (raw bitbang mode)
//   BBIO mode:      0x00 → "BBIO1"; 0x06 → "OCD1" (OpenOCD mode); 0x0F → back to terminal mode
//   OpenOCD mode:   0x00 → "BBIO1" (back to BBIO)
//                   0x01 mode                       port mode (HiZ, push-pull, open drain); no reply
//                   0x02 feature action             LED, VREG, TRST, SRST, PULLUP on/off; no reply.
//                                                    TRST and SRST are active low: action 0 asserts
//                   0x03                            → 0x03 0x08 + four big-endian ADC readings
//                   0x05 hi lo <tdi,tms>×⌈n/8⌉      n = hi·256 + lo TCK cycles, LSB first; → 0x05 hi lo
//                                                    + ⌈n/8⌉ TDO bytes
//                   0x07 speed, then 0xAA 0x55      the host's UART speed switch; → 0x07 speed
//
// The emulator keeps no timers: a command split across reads waits for its remaining bytes, and one whose
// last byte came more than `staleMs` before the next bytes is dropped as the remains of a killed host (a new
// OpenOCD starts with 20 zeros, which must not be taken as shift data).
import { openPtySocket } from '../pty.ts';
import type { DebugPort } from './debug-port.ts';

const CMD_UNKNOWN = 0x00;
const CMD_PORT_MODE = 0x01;
const CMD_FEATURE = 0x02;
const CMD_READ_ADCS = 0x03;
const CMD_TAP_SHIFT = 0x05;
const CMD_ENTER_OOCD = 0x06;
const CMD_UART_SPEED = 0x07;
const BBIO_RESET = 0x0f;
const FEATURE_TRST = 0x04;
const FEATURE_SRST = 0x08;
/** The firmware's TAP_SHIFT limit (0x2000 cycles); OpenOCD never sends more. */
const MAX_SHIFT_BITS = 0x2000;
const ZEROS_FOR_BBIO = 20;
/** ADC readings × 155.1515 = volts (OpenOCD's conversion): pin 0 V, pull-up 0 V, 3.3 V and 5.0 V rails. */
const ADC_READINGS = [0, 0, 512, 776];

const BBIO1 = Buffer.from('BBIO1', 'latin1');
const OCD1 = Buffer.from('OCD1', 'latin1');

type Mode = 'terminal' | 'bbio' | 'ocd';

export interface BusPirateStats {
  /** TAP_SHIFT commands: the adapter's round trips. */
  shifts: number;
  /** TCK cycles shifted. */
  bits: number;
  /** Commands dropped as incomplete leftovers, and bytes no mode understood. */
  dropped: number;
}

export class BusPirate {
  private mode: Mode = 'terminal';
  private zeros = 0;
  private pending: Buffer = Buffer.alloc(0);
  private pendingSince = 0;
  /** The UART speed command waits for the host's 0xAA 0x55 before it answers. */
  private speedAck: number | undefined;
  readonly stats: BusPirateStats = { shifts: 0, bits: 0, dropped: 0 };

  constructor(
    private readonly debugPort: DebugPort,
    private readonly log: (line: string) => void = () => {},
    private readonly staleMs = 500,
  ) {}

  /** Bytes from the host; returns the reply bytes to send back (possibly none). */
  receive(chunk: Uint8Array, now = performance.now()): Buffer {
    if (this.pending.length > 0 && now - this.pendingSince > this.staleMs) {
      this.log(`buspirate: dropped ${this.pending.length} bytes of an unfinished command (its host went away)`);
      this.stats.dropped++;
      this.pending = Buffer.alloc(0);
      this.speedAck = undefined;
      this.mode = 'terminal';
      this.zeros = 0;
    }
    const input = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const replies: Buffer[] = [];
    let i = 0;
    while (i < input.length) {
      const used = this.step(input, i, replies);
      if (used === 0) break; // an incomplete command: wait for the rest
      i += used;
    }
    if (i < input.length) {
      this.pendingSince = now;
      this.pending = Buffer.from(input.subarray(i));
    } else this.pending = Buffer.alloc(0);
    return replies.length === 1 ? replies[0]! : Buffer.concat(replies);
  }

  /** Handles the command at input[at]; returns the bytes it used, 0 when more are needed. */
  private step(input: Buffer, at: number, replies: Buffer[]): number {
    const c = input[at]!;
    if (this.mode === 'terminal') {
      // The firmware's user terminal; 20 zeros in a row enter binary mode.
      this.zeros = c === 0 ? this.zeros + 1 : 0;
      if (this.zeros >= ZEROS_FOR_BBIO) {
        this.zeros = 0;
        this.mode = 'bbio';
        replies.push(BBIO1);
      }
      return 1;
    }
    if (this.mode === 'bbio') {
      if (c === CMD_UNKNOWN) replies.push(BBIO1);
      else if (c === CMD_ENTER_OOCD) {
        this.mode = 'ocd';
        this.debugPort.claim(this);
        replies.push(OCD1);
      } else if (c === BBIO_RESET) this.mode = 'terminal';
      else {
        // SPI, I2C, UART, raw-wire (OpenOCD's SWD mode, 0x05)…: this adapter offers only the JTAG mode, and an
        // answer the host does not expect makes it stop at once instead of waiting out its timeouts.
        this.log(`buspirate: binary mode 0x${c.toString(16).padStart(2, '0')} is not offered (only OpenOCD JTAG mode, 0x06)`);
        this.stats.dropped++;
        replies.push(Buffer.from('ERR!', 'latin1'));
      }
      return 1;
    }
    if (this.speedAck !== undefined) {
      if (input.length - at < 2) return 0;
      replies.push(Buffer.from([CMD_UART_SPEED, this.speedAck]));
      this.speedAck = undefined;
      return 2;
    }
    switch (c) {
      case CMD_UNKNOWN:
        this.mode = 'bbio';
        replies.push(BBIO1);
        return 1;
      case CMD_PORT_MODE:
        return input.length - at < 2 ? 0 : 2;
      case CMD_FEATURE: {
        if (input.length - at < 3) return 0;
        const feature = input[at + 1]!;
        const asserted = input[at + 2] === 0; // TRST and SRST are active-low outputs
        if (!this.debugPort.holds(this)) return 3;
        if (feature === FEATURE_SRST) this.debugPort.setSrst(asserted);
        else if (feature === FEATURE_TRST && asserted) this.debugPort.trst();
        return 3;
      }
      case CMD_READ_ADCS: {
        const r = Buffer.alloc(10);
        r[0] = CMD_READ_ADCS;
        r[1] = 8;
        ADC_READINGS.forEach((v, k) => r.writeUInt16BE(v, 2 + 2 * k));
        replies.push(r);
        return 1;
      }
      case CMD_TAP_SHIFT: {
        if (input.length - at < 3) return 0;
        const bits = Math.min(MAX_SHIFT_BITS, (input[at + 1]! << 8) | input[at + 2]!);
        const bytes = Math.ceil(bits / 8);
        if (input.length - at < 3 + 2 * bytes) return 0;
        const tdi = Buffer.allocUnsafe(bytes);
        const tms = Buffer.allocUnsafe(bytes);
        for (let k = 0; k < bytes; k++) {
          tdi[k] = input[at + 3 + 2 * k]!;
          tms[k] = input[at + 4 + 2 * k]!;
        }
        const reply = Buffer.allocUnsafe(3 + bytes);
        reply[0] = CMD_TAP_SHIFT;
        reply[1] = bits >> 8;
        reply[2] = bits & 0xff;
        // Another debugger took the target: this adapter's TDO floats high, as with its cable pulled.
        if (this.debugPort.holds(this)) this.debugPort.shift(tms, tdi, bits, reply.subarray(3));
        else reply.fill(0xff, 3);
        this.stats.shifts++;
        this.stats.bits += bits;
        replies.push(reply);
        return 3 + 2 * bytes;
      }
      case CMD_UART_SPEED:
        if (input.length - at < 2) return 0;
        this.speedAck = input[at + 1]!;
        return 2;
      default:
        this.log(`buspirate: ignored unknown OpenOCD-mode command 0x${c.toString(16).padStart(2, '0')}`);
        this.stats.dropped++;
        return 1;
    }
  }
}

export interface BusPirateTty {
  /** The serial port OpenOCD opens (`buspirate port <path>`): a pty link. */
  readonly port: string;
  readonly adapter: BusPirate;
  close(): Promise<void>;
}

/** The Bus Pirate on a serial port of its own: a pty that stays while OpenOCDs come and go, as its USB port does. */
export async function startBusPirateTty(options: { debugPort: DebugPort; dir: string; name?: string; log?: (line: string) => void }): Promise<BusPirateTty> {
  const log = options.log ?? (() => {});
  const adapter = new BusPirate(options.debugPort, log);
  const pty = await openPtySocket(options.dir, options.name ?? 'probe-buspirate');
  let closing = false;
  pty.socket.on('data', (chunk: Buffer) => {
    const reply = adapter.receive(chunk);
    if (reply.length > 0) pty.socket.write(reply);
  });
  pty.socket.on('error', (err) => log(`buspirate: connection error: ${err.message}`));
  pty.socket.on('close', () => {
    if (!closing) log('buspirate: the pty side went away (socat gone?)');
  });
  return {
    port: pty.rigPath,
    adapter,
    close() {
      closing = true;
      return pty.close();
    },
  };
}
