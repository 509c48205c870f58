// Relays on a StandardFirmata board (an Arduino driving a relay bank), through johnny-five with firmata-io
// as its IO plugin and a serialport 13 SerialPort as the transport — johnny-five's own `port:` option
// would pull in serialport 8 and, without a path, auto-detect the first /usb|acm/ port, which on this rig
// can be the modem (LIBRARIES.md §3.2). One FirmataBoard serves every line wired to it.
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SerialPort } from 'serialport';
import type { Board as J5Board, Relay as J5Relay } from 'johnny-five';
import firmataIo from 'firmata-io';
import { AbortedError, InfrastructureError } from '../errors.ts';
import type { FirmataBoardConfig, FirmataLineConfig } from './config.ts';
import { lineLabel, type SafeStateLine } from './line.ts';
import { registerSafeState } from './safe-state.ts';

const { Firmata } = firmataIo;
// johnny-five's index loads all of its ~70 component classes (~4 MB of a process's RSS); a relay needs two.
const requireJ5 = createRequire(import.meta.url);
const five = { Board: requireJ5('johnny-five/lib/board.js') as typeof J5Board, Relay: requireJ5('johnny-five/lib/relay.js') as typeof J5Relay };
type FirmataIo = InstanceType<typeof Firmata>;

const SET_DIGITAL_PIN_VALUE = 0xf5;
const DIGITAL_MESSAGE = 0x90;
/** SET_DIGITAL_PIN_VALUE came with protocol 2.5; StandardFirmata before it drops the message silently. */
const SET_PIN_VALUE_SINCE = [2, 5] as const;
/** Bound on a PIN_STATE_QUERY round trip; a StandardFirmata board answers within a few byte times. */
const QUERY_TIMEOUT_MS = 1000;

export interface FirmataBoardContext {
  /** Station name, for errors. */
  station?: string;
  /** Board name from the config ("relays"), for errors and line names. */
  name: string;
  signal?: AbortSignal;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class FirmataBoard {
  private readonly lines = new Set<FirmataLine>();
  private broken: string | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    readonly port: string,
    readonly station: string | undefined,
    private readonly serial: SerialPort,
    private readonly io: FirmataIo,
    private readonly board: InstanceType<typeof five.Board>,
  ) {
    serial.on('close', (err?: { disconnected?: boolean }) => {
      if (!this.closing) this.broken = err?.disconnected ? 'the port disconnected' : 'the port closed';
    });
    // johnny-five re-emits transport errors on the board; an unhandled 'error' would kill the rig.
    board.on('error', (err: unknown) => {
      this.broken ??= `the board reported: ${describe(err)}`;
    });
    serial.on('error', (err: unknown) => {
      this.broken ??= `the port reported: ${describe(err)}`;
    });
  }

  /**
   * Opens `config.port` and completes the Firmata handshake within `connectTimeoutMs`, or throws an
   * InfrastructureError naming the port, with the port closed again.
   */
  static async open(config: FirmataBoardConfig, ctx: FirmataBoardContext): Promise<FirmataBoard> {
    const { port: path, connectTimeoutMs } = config;
    const fail = (summary: string, seen: string, cause?: unknown): InfrastructureError =>
      new InfrastructureError(`Firmata board "${ctx.name}" on ${path}: ${summary}`, {
        station: ctx.station,
        expected: `a StandardFirmata board answering the handshake (version, firmware, capabilities, analog mapping) within ${connectTimeoutMs} ms`,
        seen,
        cause,
      });
    if (ctx.signal?.aborted) {
      throw new AbortedError(`Firmata board "${ctx.name}" on ${path}: not opened, already aborted`, { station: ctx.station, seen: describe(ctx.signal.reason) });
    }

    // hupcl:false keeps DTR up when we close: on an Arduino, a DTR drop resets the board, and a reset
    // drives every pin LOW — it would undo the safe levels we just set.
    const serial = new SerialPort({ path, baudRate: config.baudRate, hupcl: false, autoOpen: false });
    // firmata-io and johnny-five take the port before it opens: johnny-five's "connect" is the
    // transport's "open" event, and it will not go "ready" without it.
    // reportVersionTimeout 0: ask for the version at once. A board that resets on open announces itself
    // anyway; one that does not (hupcl:false, or a pty) only answers when asked.
    const io = new Firmata(serial, { reportVersionTimeout: 0 });
    const board = new five.Board({ io, repl: false, sigint: false, debug: false, timeout: connectTimeoutMs * 2 });
    try {
      await new Promise<void>((resolve, reject) => serial.open((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      clearTimeout(io.reportVersionTimeoutId);
      throw fail('could not open the serial port', describe(err), err);
    }
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(fail(`no Firmata handshake within ${connectTimeoutMs} ms`, handshakeProgress(io))), connectTimeoutMs);
        onAbort = () =>
          reject(new AbortedError(`Firmata board "${ctx.name}" on ${path}: handshake aborted`, { station: ctx.station, seen: describe(ctx.signal!.reason) }));
        ctx.signal?.addEventListener('abort', onAbort, { once: true });
        if (ctx.signal?.aborted) onAbort(); // aborted while the port was opening
        board.once('ready', () => resolve());
        board.once('error', (err: unknown) => reject(fail('the board reported an error during the handshake', describe(err), err)));
        serial.once('close', () => reject(fail('the port closed during the handshake', 'close')));
      });
    } catch (err) {
      // johnny-five's own connect timer would fire later and emit an unhandled 'error'.
      if (board.timer) clearTimeout(board.timer);
      board.removeAllListeners('error');
      board.on('error', () => {});
      await closeQuietly(serial);
      throw err;
    } finally {
      clearTimeout(timer);
      if (onAbort) ctx.signal?.removeEventListener('abort', onAbort);
    }
    return new FirmataBoard(ctx.name, path, ctx.station, serial, io, board);
  }

  /** Opens a relay line on this board, driven to its initial level before it is returned. */
  async line(name: string, config: FirmataLineConfig): Promise<FirmataLine> {
    this.assertUsable(name, 'open the line');
    if (config.pin >= this.io.pins.length || !this.io.pins[config.pin]!.supportedModes.includes(this.io.MODES.OUTPUT)) {
      throw new InfrastructureError(`${lineLabel(name, this.station)}: pin ${config.pin} of Firmata board "${this.name}" on ${this.port} cannot drive a relay`, {
        station: this.station,
        expected: 'a pin whose capabilities include OUTPUT',
        seen: config.pin >= this.io.pins.length ? `the board has ${this.io.pins.length} pins` : `modes ${JSON.stringify(this.io.pins[config.pin]!.supportedModes)}`,
      });
    }
    for (const other of this.lines) {
      if (other.pin === config.pin) throw new InfrastructureError(`${lineLabel(name, this.station)}: pin ${config.pin} of Firmata board "${this.name}" is already line ${other.name}`, { station: this.station });
    }
    // firmata-io writes whole 8-pin ports from its own copy of the latches, which starts at 0. Learn the
    // board's real latches first, so switching this relay cannot flip its neighbours.
    await this.learnPort(config.pin >> 3);
    const relay = new five.Relay({ pin: config.pin, type: config.relay, board: this.board });
    const line = new FirmataLine(name, this, relay, config, () => this.lines.delete(line));
    this.lines.add(line);
    try {
      this.io.pinMode(config.pin, this.io.MODES.OUTPUT);
      await line.drive((config.initial ?? config.safe) === 'on');
    } catch (err) {
      this.lines.delete(line);
      throw err;
    }
    line.protect();
    return line;
  }

  /** @internal */
  assertUsable(line: string, action: string, allow: { closing?: boolean } = {}): void {
    if (this.broken || (this.closing && !allow.closing)) {
      throw new InfrastructureError(`${lineLabel(line, this.station)}: cannot ${action}: Firmata board "${this.name}" on ${this.port} is ${this.closing ? 'closed' : 'unusable'}`, {
        station: this.station,
        expected: 'an open board',
        seen: this.broken ?? 'closed by the rig',
      });
    }
  }

  /** @internal Writes through firmata-io and resolves once the bytes have left for the board. */
  async drain(line: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        // A board that stopped reading (a hung USB adapter) fills the tty buffer and drain never returns.
        timer = setTimeout(
          () => reject(new InfrastructureError(`${lineLabel(line, this.station)}: write to ${this.port} did not complete within ${QUERY_TIMEOUT_MS} ms`, { station: this.station, expected: 'the Firmata message sent to the board', seen: 'the port still busy' })),
          QUERY_TIMEOUT_MS,
        );
        this.serial.drain((err) => (err ? reject(new InfrastructureError(`${lineLabel(line, this.station)}: write to ${this.port} failed`, { station: this.station, seen: describe(err), cause: err })) : resolve()));
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** @internal The coil level and mode the board reports for `pin` (PIN_STATE_QUERY). */
  async pinState(line: string, pin: number): Promise<{ mode: number | undefined; level: number }> {
    this.assertUsable(line, 'read the line', { closing: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.io.removeListener(`pin-state-${pin}`, done);
        reject(new InfrastructureError(`${lineLabel(line, this.station)}: Firmata board "${this.name}" on ${this.port} did not report pin ${pin}'s state within ${QUERY_TIMEOUT_MS} ms`, {
          station: this.station,
          expected: 'a PIN_STATE_RESPONSE',
          seen: 'nothing',
        }));
      }, QUERY_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.io.queryPinState(pin, done);
    });
    const p = this.io.pins[pin]!;
    return { mode: p.mode, level: (p.state ?? 0) & 1 };
  }

  /** @internal Firmata's OUTPUT mode number. */
  get outputMode(): number {
    return this.io.MODES.OUTPUT;
  }

  /** The Firmata protocol version the board reported at the handshake, "2.5". */
  get protocolVersion(): string {
    return `${this.io.version.major ?? '?'}.${this.io.version.minor ?? '?'}`;
  }

  private get hasSetPinValue(): boolean {
    const { major, minor } = this.io.version;
    if (major === undefined || minor === undefined) return false;
    return major > SET_PIN_VALUE_SINCE[0] || (major === SET_PIN_VALUE_SINCE[0] && minor >= SET_PIN_VALUE_SINCE[1]);
  }

  /**
   * @internal Synchronous write of one pin straight to the port's descriptor. SET_DIGITAL_PIN_VALUE where
   * the board has it (one pin, whatever our copy of the latches says); before protocol 2.5, a
   * DIGITAL_MESSAGE for the pin's 8-pin port, which every version handles, built from the latches learnt
   * when the lines opened (learnPort), so the neighbours keep their levels.
   */
  writePinSync(pin: number, level: number): void {
    const fd = (this.serial.port as { fd?: number | null } | undefined)?.fd;
    if (typeof fd !== 'number' || !this.serial.isOpen) throw new Error(`${this.port} is not open`);
    if (this.hasSetPinValue) {
      writeSync(fd, Uint8Array.from([SET_DIGITAL_PIN_VALUE, pin & 0x7f, level ? 1 : 0]));
      this.io.updateDigitalPort(pin, level);
      return;
    }
    const portNo = this.io.updateDigitalPort(pin, level);
    const mask = this.io.ports[portNo]!;
    writeSync(fd, Uint8Array.from([DIGITAL_MESSAGE | portNo, mask & 0x7f, (mask >> 7) & 0x7f]));
  }

  private async learnPort(portNo: number): Promise<void> {
    for (let pin = portNo * 8; pin < Math.min(portNo * 8 + 8, this.io.pins.length); pin++) {
      if (!this.io.pins[pin]!.supportedModes.includes(this.io.MODES.OUTPUT)) continue;
      const { mode, level } = await this.pinState(`${this.name} pin ${pin}`, pin);
      if (mode === this.io.MODES.OUTPUT) this.io.updateDigitalPort(pin, level);
    }
  }

  /** Drives every line to its safe level, then closes the port. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      for (const line of [...this.lines]) {
        try {
          await line.releaseFromBoard();
        } catch (err) {
          errors.push(err);
        }
      }
      await closeQuietly(this.serial);
      if (errors.length > 0) throw errors[0];
    })();
    return this.closing;
  }
}

export class FirmataLine implements SafeStateLine {
  readonly safe: boolean;
  readonly pin: number;
  private unregister: (() => void) | undefined;
  private closed: Promise<void> | undefined;

  /** @internal use FirmataBoard.line() */
  constructor(
    readonly name: string,
    private readonly board: FirmataBoard,
    private readonly relay: InstanceType<typeof five.Relay>,
    private readonly config: FirmataLineConfig,
    private readonly forget: () => void,
  ) {
    this.safe = config.safe === 'on';
    this.pin = config.pin;
  }

  /** @internal */
  protect(): void {
    this.unregister = registerSafeState(this);
  }

  /** The coil level that puts the load on: NO contacts close with the coil energised, NC ones without. */
  private coilFor(on: boolean): number {
    return on === (this.config.relay === 'NO') ? 1 : 0;
  }

  async set(on: boolean): Promise<void> {
    if (this.closed) {
      throw new InfrastructureError(`${lineLabel(this.name, this.board.station)}: cannot switch ${on ? 'on' : 'off'}: the line is closed`, { station: this.board.station, expected: 'an open line', seen: 'closed by the rig' });
    }
    this.board.assertUsable(this.name, `switch ${on ? 'on' : 'off'}`);
    await this.drive(on);
  }

  /** @internal */
  async drive(on: boolean): Promise<void> {
    this.board.assertUsable(this.name, `switch ${on ? 'on' : 'off'}`, { closing: true });
    // johnny-five's Relay: close() = contact closed = load on, for NO and NC alike (NC inverts the pin).
    if (on) this.relay.close();
    else this.relay.open();
    await this.board.drain(this.name);
    // The board handles commands in order, so its answer to a pin-state query is proof the write took.
    const { mode, level } = await this.board.pinState(this.name, this.pin);
    const want = this.coilFor(on);
    if (mode !== this.board.outputMode || level !== want) {
      throw new InfrastructureError(`${lineLabel(this.name, this.board.station)}: Firmata board "${this.board.name}" on ${this.board.port} did not switch pin ${this.pin} ${on ? 'on' : 'off'}`, {
        station: this.board.station,
        expected: `pin ${this.pin} in OUTPUT mode at level ${want} (${this.config.relay} relay ${on ? 'closed' : 'open'})`,
        seen: `mode ${mode}, level ${level}`,
      });
    }
  }

  async get(): Promise<boolean> {
    if (this.closed) throw new InfrastructureError(`${lineLabel(this.name, this.board.station)}: cannot read: the line is closed`, { station: this.board.station, expected: 'an open line', seen: 'closed by the rig' });
    this.board.assertUsable(this.name, 'read the line');
    const { mode, level } = await this.board.pinState(this.name, this.pin);
    if (mode !== this.board.outputMode) {
      throw new InfrastructureError(`${lineLabel(this.name, this.board.station)}: pin ${this.pin} of Firmata board "${this.board.name}" on ${this.board.port} is not an output any more`, {
        station: this.board.station,
        expected: `mode OUTPUT (${this.board.outputMode})`,
        seen: `mode ${mode} — did the board reset?`,
      });
    }
    return level === this.coilFor(true);
  }

  applySafeStateSync(): void {
    this.board.writePinSync(this.pin, this.coilFor(this.safe));
  }

  /** @internal Safe level, then release; the board closes the port itself. */
  async releaseFromBoard(): Promise<void> {
    this.closed ??= (async () => {
      try {
        await this.drive(this.safe);
      } finally {
        this.unregister?.();
        this.forget();
      }
    })();
    return this.closed;
  }

  /**
   * Drives the safe level and releases the pin. The board stays open for its other lines; the owner of
   * the board (openPowerLines) closes it with the last line.
   */
  close(): Promise<void> {
    return this.releaseFromBoard();
  }
}

function handshakeProgress(io: FirmataIo): string {
  if (io.isReady) return 'a complete handshake, but johnny-five never saw the port open';
  if (io.version.major === undefined) return 'no REPORT_VERSION answer (nothing, or no Firmata, on the port)';
  if (io.firmware.name === undefined) return `version ${io.version.major}.${io.version.minor} but no firmware report`;
  if (io.pins.length === 0) return `firmware ${io.firmware.name} but no capability response`;
  return `firmware ${io.firmware.name}, ${io.pins.length} pins, but no analog mapping response`;
}

async function closeQuietly(serial: SerialPort): Promise<void> {
  if (!serial.isOpen) return;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, QUERY_TIMEOUT_MS); // the descriptor goes with the process at worst
    serial.close(() => resolve());
  });
  clearTimeout(timer);
}
