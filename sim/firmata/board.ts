// A StandardFirmata board (2.5 unless told otherwise; an Arduino Uno's pin map) on a pty, driving a relay
// bank whose contacts switch the virtual station's rails. The rig's johnny-five sees it exactly as it would
// see a real Arduino behind /dev/serial/by-id/…: the same handshake, the same pin modes, the same digital
// messages.
//
// Wiring model (say it once, it matters): each rail runs through one relay; a pin written HIGH in OUTPUT
// mode energises that relay's coil. A rail wired through the NC contact (the default) is at its running
// level while the coil is off, so a board that resets (StandardFirmata drives every digital pin LOW at
// boot) or is unplugged leaves the module and the target powered and out of reset — the fail-safe wiring
// of a real bench. A rail wired through the NO contact is at its running level only while the coil is on.
import { SerialPort } from 'serialport';
import os from 'node:os';
import { openPtyPair, type PtyPair } from '../pty.ts';
import { PacedLink } from '../uart.ts';
import { railNames, type RailName, type Rails } from '../rails.ts';
import {
  ANALOG_MAPPING_QUERY,
  ANALOG_MAPPING_RESPONSE,
  CAPABILITY_QUERY,
  CAPABILITY_RESPONSE,
  FirmataParser,
  MODE,
  PIN_STATE_QUERY,
  PIN_STATE_RESPONSE,
  QUERY_FIRMWARE,
  REPORT_VERSION,
  digitalMessage,
  sevenBitValue,
  sysex,
  twoSevenBit,
  type FirmataCommand,
} from './protocol.ts';

export type RelayContact = 'NO' | 'NC';
export type RailWiring = number | { pin: number; contact: RelayContact };

export interface FirmataBoardOptions {
  rails: Rails;
  /** Which pin's relay switches which rail, e.g. { moduleVbat: 2, targetNrst: { pin: 5, contact: 'NO' } }. */
  pins: Partial<Record<RailName, RailWiring>>;
  /** Directory for the pty links (default: the OS temp dir). */
  dir?: string;
  /** Link name prefix, unique per board in `dir`. */
  name?: string;
  /** Pace the board's replies at this baud rate (StandardFirmata runs at 57600); 0 = unpaced. */
  baud?: number;
  /**
   * Firmata protocol (and firmware) version the board reports, default 2.5. Before 2.5 there is no
   * SET_DIGITAL_PIN_VALUE: such a board drops it without a word, as StandardFirmata 2.4 does.
   */
  version?: readonly [major: number, minor: number];
}

export interface FirmataBoardInfo {
  /** The path the rig opens, as it would open /dev/serial/by-id/usb-Arduino…. */
  port: string;
  /** Rail → pin, for the station's config. */
  pins: Partial<Record<RailName, number>>;
  /** Rail → contact the rail is wired through. */
  contacts: Partial<Record<RailName, RelayContact>>;
}

export interface VirtualFirmataBoard {
  readonly info: FirmataBoardInfo;
  /** The level the board drives on a pin (false for pins not in OUTPUT mode). */
  pinLevel(pin: number): boolean;
  pinMode(pin: number): number;
  /** Drives a pin from outside, as a switch or a sense line would; reported if the rig asked for reports. */
  setInput(pin: number, level: boolean): void;
  /** Bytes dropped as garbage by the board's parser. */
  readonly dropped: number;
  close(): Promise<void>;
}

const FIRMWARE_NAME = 'StandardFirmata.ino';
// Uno: D0/D1 are the serial link itself, D2–D13 digital (PWM on 3, 5, 6, 9, 10, 11), D14–D19 = A0–A5.
const TOTAL_PINS = 20;
const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);
const isDigital = (pin: number): boolean => pin >= 2 && pin < TOTAL_PINS;
const isAnalog = (pin: number): boolean => pin >= 14 && pin < TOTAL_PINS;

function capabilities(pin: number): Array<[mode: number, resolution: number]> {
  if (!isDigital(pin)) return [];
  const caps: Array<[number, number]> = [
    [MODE.INPUT, 1],
    [MODE.OUTPUT, 1],
    [MODE.PULLUP, 1],
  ];
  if (isAnalog(pin)) caps.push([MODE.ANALOG, 10]);
  if (PWM_PINS.has(pin)) caps.push([MODE.PWM, 8]);
  caps.push([MODE.SERVO, 14]);
  return caps;
}

interface PinState {
  mode: number;
  /** The output latch: the level in OUTPUT mode, the pull-up in INPUT/PULLUP mode. */
  latch: number;
}

export async function startFirmataBoard(options: FirmataBoardOptions): Promise<VirtualFirmataBoard> {
  const { rails } = options;
  const version = options.version ?? ([2, 5] as const);
  const hasSetPinValue = version[0] > 2 || (version[0] === 2 && version[1] >= 5);
  const wiring = new Map<number, { rail: RailName; contact: RelayContact }>();
  for (const rail of railNames) {
    const w = options.pins[rail];
    if (w === undefined) continue;
    const { pin, contact } = typeof w === 'number' ? { pin: w, contact: 'NC' as const } : w;
    if (!isDigital(pin)) throw new RangeError(`firmata board: ${rail} on pin ${pin}, but digital pins are 2..${TOTAL_PINS - 1}`);
    if (wiring.has(pin)) throw new RangeError(`firmata board: pin ${pin} wired to both ${wiring.get(pin)!.rail} and ${rail}`);
    wiring.set(pin, { rail, contact });
  }

  const pins: PinState[] = [];
  const inputs = new Map<number, boolean>();
  const reportedPorts = new Set<number>();

  const pair: PtyPair = await openPtyPair(options.dir ?? os.tmpdir(), options.name ?? `firmata-${process.pid}-${Date.now().toString(36)}`);
  let port: SerialPort;
  try {
    port = await new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: pair.simPath, baudRate: 57600, hupcl: false }, (err) => (err ? reject(err) : resolve(p)));
    });
  } catch (err) {
    await pair.close();
    throw new Error(`firmata board: could not open its end of the pty ${pair.simPath}: ${(err as Error).message}`);
  }
  // A board process never dies of a bad byte or a pty hang-up; it just stops answering.
  port.on('error', () => {});
  const out = new PacedLink(options.baud ?? 57600, (chunk) => {
    if (port.isOpen) port.write(chunk);
  });
  const send = (bytes: Buffer): void => out.push(bytes);

  const coilEnergised = (pin: number): boolean => pins[pin]!.mode === MODE.OUTPUT && pins[pin]!.latch === 1;
  // The level each relay last put on its rail. Only a relay whose contacts move drives its rail again: the
  // rails have other writers (the admin API's power switch, faults), and re-driving every rail on every
  // write would silently undo them — switching module-vbat must not switch target-vdd back on.
  const contactLevel = new Map<number, boolean>();
  const driveRail = (pin: number, force = false): void => {
    const w = wiring.get(pin);
    if (!w) return;
    const energised = coilEnergised(pin);
    const level = w.contact === 'NO' ? energised : !energised;
    if (!force && contactLevel.get(pin) === level) return;
    contactLevel.set(pin, level);
    rails.set(w.rail, level);
  };
  const inputLevel = (pin: number): number => {
    const p = pins[pin]!;
    if (p.mode === MODE.OUTPUT) return p.latch;
    const external = inputs.get(pin);
    if (external !== undefined) return external ? 1 : 0;
    return p.mode === MODE.PULLUP || p.latch === 1 ? 1 : 0;
  };
  const portMask = (portNo: number): number => {
    let mask = 0;
    for (let i = 0; i < 8; i++) {
      const pin = portNo * 8 + i;
      if (pin < TOTAL_PINS && isDigital(pin) && inputLevel(pin)) mask |= 1 << i;
    }
    return mask;
  };
  const lastReported = new Map<number, number>();
  const reportPort = (portNo: number, force = false): void => {
    if (!reportedPorts.has(portNo)) return;
    const mask = portMask(portNo);
    if (!force && lastReported.get(portNo) === mask) return;
    lastReported.set(portNo, mask);
    send(digitalMessage(portNo, mask));
  };
  const pinChanged = (pin: number): void => {
    driveRail(pin);
    reportPort(pin >> 3);
  };

  // StandardFirmata's systemResetCallback: digital pins OUTPUT at LOW, analog pins ANALOG, no reporting.
  // Power-up is a reset too, and then every wired rail takes its relay's level.
  const reset = (powerUp = false): void => {
    pins.length = 0;
    for (let pin = 0; pin < TOTAL_PINS; pin++) {
      pins.push({ mode: isAnalog(pin) ? MODE.ANALOG : isDigital(pin) ? MODE.OUTPUT : MODE.INPUT, latch: 0 });
    }
    reportedPorts.clear();
    lastReported.clear();
    for (const pin of wiring.keys()) driveRail(pin, powerUp);
  };
  reset(true);

  const onSysex = (command: number, data: number[]): void => {
    switch (command) {
      case QUERY_FIRMWARE:
        send(sysex(QUERY_FIRMWARE, [...version, ...twoSevenBit(Buffer.from(FIRMWARE_NAME, 'ascii'))]));
        return;
      case CAPABILITY_QUERY: {
        const payload: number[] = [];
        for (let pin = 0; pin < TOTAL_PINS; pin++) {
          for (const [mode, res] of capabilities(pin)) payload.push(mode, res);
          payload.push(0x7f);
        }
        send(sysex(CAPABILITY_RESPONSE, payload));
        return;
      }
      case ANALOG_MAPPING_QUERY: {
        const payload: number[] = [];
        for (let pin = 0; pin < TOTAL_PINS; pin++) payload.push(isAnalog(pin) ? pin - 14 : 0x7f);
        send(sysex(ANALOG_MAPPING_RESPONSE, payload));
        return;
      }
      case PIN_STATE_QUERY: {
        const pin = data[0];
        if (pin === undefined || pin >= TOTAL_PINS) return;
        const p = pins[pin]!;
        send(sysex(PIN_STATE_RESPONSE, [pin, p.mode, ...sevenBitValue(p.latch)]));
        return;
      }
      default:
        // SAMPLING_INTERVAL, STRING_DATA and the rest: accepted and ignored, as a relay board would.
        return;
    }
  };

  const onCommand = (c: FirmataCommand): void => {
    switch (c.type) {
      case 'reportVersion':
        send(Buffer.from([REPORT_VERSION, ...version]));
        return;
      case 'systemReset':
        reset();
        return;
      case 'setPinMode': {
        if (c.pin >= TOTAL_PINS || !capabilities(c.pin).some(([m]) => m === c.mode)) return;
        const p = pins[c.pin]!;
        // Leaving PWM for OUTPUT drops the pin LOW; OUTPUT otherwise keeps the latch, so a relay does not
        // chatter when the rig re-asserts the mode.
        if (p.mode === MODE.PWM && c.mode === MODE.OUTPUT) p.latch = 0;
        if (c.mode === MODE.PULLUP) p.latch = 1;
        p.mode = c.mode;
        pinChanged(c.pin);
        return;
      }
      case 'digitalMessage': {
        for (let i = 0; i < 8; i++) {
          const pin = c.port * 8 + i;
          if (pin >= TOTAL_PINS || !isDigital(pin)) continue;
          const p = pins[pin]!;
          const bit = (c.mask >> i) & 1;
          // Firmata 2.5: in INPUT mode the bit is the pull-up (Arduino's digitalWrite on an input).
          if (p.mode === MODE.OUTPUT || p.mode === MODE.INPUT) p.latch = bit;
          driveRail(pin);
        }
        reportPort(c.port);
        return;
      }
      case 'setDigitalPinValue': {
        if (!hasSetPinValue || c.pin >= TOTAL_PINS) return;
        const p = pins[c.pin]!;
        if (p.mode !== MODE.OUTPUT) return;
        p.latch = c.value ? 1 : 0;
        pinChanged(c.pin);
        return;
      }
      case 'reportDigital':
        if (c.port * 8 >= TOTAL_PINS) return;
        if (c.enable) {
          reportedPorts.add(c.port);
          reportPort(c.port, true);
        } else reportedPorts.delete(c.port);
        return;
      case 'analogMessage':
      case 'reportAnalog':
        return;
      case 'sysex':
        onSysex(c.command, c.data);
        return;
    }
  };

  const parser = new FirmataParser(onCommand);
  port.on('data', (chunk: Buffer) => parser.push(chunk));

  let closed: Promise<void> | undefined;
  const info: FirmataBoardInfo = {
    port: pair.rigPath,
    pins: Object.fromEntries([...wiring].map(([pin, { rail }]) => [rail, pin])),
    contacts: Object.fromEntries([...wiring].map(([, { rail, contact }]) => [rail, contact])),
  };
  return {
    info,
    pinLevel: (pin) => pins[pin] !== undefined && pins[pin].mode === MODE.OUTPUT && pins[pin].latch === 1,
    pinMode: (pin) => {
      const p = pins[pin];
      if (!p) throw new RangeError(`firmata board: no pin ${pin}`);
      return p.mode;
    },
    setInput: (pin, level) => {
      if (!isDigital(pin)) throw new RangeError(`firmata board: no digital pin ${pin}`);
      inputs.set(pin, level);
      reportPort(pin >> 3);
    },
    get dropped() {
      return parser.dropped;
    },
    close: () => {
      closed ??= (async () => {
        out.close();
        if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
        await pair.close();
      })();
      return closed;
    },
  };
}

