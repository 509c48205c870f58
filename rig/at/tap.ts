// Serial ports the rig only listens to (dut mode): the two taps on the MCU↔module UART (a dual-channel
// USB-UART whose RX pins sit on the two lines, its TX pins unconnected) and the MCU's debug console. Nothing
// here can write: the classes have no write path, so the rig cannot disturb the dialogue it observes. Each
// byte is framed as it arrives and stamped with the monotonic clock of the chunk that completed its frame.
//
//   const taps = await openTaps({ station, mcu: '/dev/…-if00', module: '/dev/…-if01', baudRate: 115200 }, (f) => …);
//   const console_ = await openConsole({ station, path: '/dev/…', baudRate: 115200 }, (line) => …);
import { InfrastructureError } from '../errors.ts';
import { AtFramer } from './framer.ts';
import { guardHangup } from './hangup.ts';
import { PassiveFramer } from './passive.ts';
import type { TapDirection, TapFrame } from './passive.ts';

interface ListenStream {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb: (err?: Error | null) => void): void;
  on(event: 'data', l: (chunk: Buffer) => void): unknown;
  on(event: 'error', l: (err: Error) => void): unknown;
  on(event: 'close', l: (err?: Error & { disconnected?: boolean }) => void): unknown;
  prependListener(event: 'open', l: () => void): unknown;
}

export interface ListenOptions {
  station: string;
  path: string;
  baudRate: number;
  /** What the port is, for messages: "tap MCU → module", "MCU console". */
  role: string;
}

/** One serial port opened for listening: chunks with their arrival time, and a note when it vanishes. */
export class SerialListener {
  private stream: ListenStream | undefined;
  private closedByUs = false;
  /** Set when the port went away on its own (a USB-UART unplugged): the reason, for the run's errors. */
  vanished: string | undefined;
  /** Bytes received since open. */
  bytes = 0;

  constructor(
    private readonly opts: ListenOptions,
    private readonly onChunk: (chunk: Buffer, t: number) => void,
  ) {}

  get path(): string {
    return this.opts.path;
  }

  get isOpen(): boolean {
    return this.stream?.isOpen === true;
  }

  async open(): Promise<void> {
    const { SerialPort } = await import('serialport');
    const serial = new SerialPort({ path: this.opts.path, baudRate: this.opts.baudRate, lock: true, autoOpen: false }) as unknown as ListenStream;
    serial.prependListener('open', () => guardHangup((serial as { port?: unknown }).port));
    serial.on('data', (chunk) => {
      this.bytes += chunk.length;
      this.onChunk(chunk, performance.now());
    });
    serial.on('error', () => undefined); // reported by 'close' (vanished) or by open's callback
    serial.on('close', (err) => {
      if (!this.closedByUs) this.vanished = err?.message ?? 'closed';
    });
    await new Promise<void>((resolve, reject) =>
      serial.open((err) =>
        err
          ? reject(
              new InfrastructureError(`could not open the ${this.opts.role} port ${this.opts.path}${/lock/i.test(err.message) ? ' (held by another process)' : ''}`, {
                station: this.opts.station,
                expected: `a serial port to listen on at ${this.opts.baudRate} baud`,
                seen: err.message,
                cause: err,
              }),
            )
          : resolve(),
      ),
    );
    this.stream = serial;
    this.closedByUs = false;
    this.vanished = undefined;
  }

  async close(): Promise<void> {
    const s = this.stream;
    if (!s?.isOpen) return;
    this.closedByUs = true;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Bits on the wire per byte (8N1). */
const BITS_PER_BYTE = 10;
/** Slack for a USB-UART's latency timer and the scheduler before a quiet block counts as cut short. */
const BLOCK_QUIET_SLACK_MS = 250;

/** One tapped direction: the listener, its passive framer, and the bound on a block that stops coming. */
export class TapPort {
  readonly framer: PassiveFramer;
  readonly listener: SerialListener;
  private quiet: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: TapDirection,
    private readonly opts: ListenOptions,
    onFrame: (frame: TapFrame) => void,
  ) {
    this.framer = new PassiveFramer(dir, onFrame);
    this.listener = new SerialListener(opts, (chunk, t) => this.onChunk(chunk, t));
  }

  private onChunk(chunk: Buffer, t: number): void {
    this.framer.push(chunk, t);
    clearTimeout(this.quiet);
    this.quiet = undefined;
    if (this.framer.inBlock) {
      // The rest of the block needs this long at the line's rate; a line quiet for longer lost it.
      const ms = Math.ceil((this.framer.blockRemaining * BITS_PER_BYTE * 1000) / this.opts.baudRate) + BLOCK_QUIET_SLACK_MS;
      this.quiet = setTimeout(() => {
        this.quiet = undefined;
        this.framer.abandonBlock();
      }, ms);
      this.quiet.unref();
    }
  }

  open(): Promise<void> {
    return this.listener.open();
  }

  async close(): Promise<void> {
    clearTimeout(this.quiet);
    this.quiet = undefined;
    await this.listener.close();
  }
}

export interface TapsOptions {
  station: string;
  /** The port on the MCU's TX line (MCU → module). */
  mcu: string;
  /** The port on the module's TX line (module → MCU). */
  module: string;
  baudRate: number;
}

/** Both directions of the MCU↔module UART; the module's answers are attributed to the MCU's last command. */
export class TapPair {
  readonly mcu: TapPort;
  readonly module: TapPort;

  constructor(opts: TapsOptions, onFrame: (frame: TapFrame) => void) {
    this.module = new TapPort('module', { station: opts.station, path: opts.module, baudRate: opts.baudRate, role: 'tap module → MCU' }, onFrame);
    this.mcu = new TapPort('mcu', { station: opts.station, path: opts.mcu, baudRate: opts.baudRate, role: 'tap MCU → module' }, (f) => {
      if (f.kind === 'command') this.module.framer.commandSent(f.text);
      onFrame(f);
    });
  }

  async open(): Promise<void> {
    await this.mcu.open();
    try {
      await this.module.open();
    } catch (err) {
      await this.mcu.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.mcu.close(), this.module.close()]);
  }

  /** Why a tap went away on its own, if one did. */
  get vanished(): string | undefined {
    const m = this.mcu.listener.vanished;
    const r = this.module.listener.vanished;
    return m ? `${this.mcu.listener.path}: ${m}` : r ? `${this.module.listener.path}: ${r}` : undefined;
  }
}

/** A console line with the time its terminator arrived. */
export interface ConsoleLine {
  t: number;
  text: string;
}

/** The MCU's debug console: text lines, nothing counted, overlong lines cut. */
export class ConsolePort {
  readonly listener: SerialListener;
  private readonly framer: AtFramer;
  private now = 0;

  constructor(opts: Omit<ListenOptions, 'role'>, onLine: (line: ConsoleLine) => void) {
    this.framer = new AtFramer(
      (f) => {
        if (f.kind === 'line') onLine({ t: this.now, text: f.text.replace(/[^\x20-\x7e\t]/g, '.') });
        else if (f.kind === 'overflow') onLine({ t: this.now, text: `${f.head}… (cut at ${f.limit} bytes)` });
      },
      { binaryLength: () => undefined },
    );
    this.listener = new SerialListener({ ...opts, role: 'MCU console' }, (chunk, t) => {
      this.now = t;
      this.framer.push(chunk);
    });
  }

  open(): Promise<void> {
    return this.listener.open();
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}
