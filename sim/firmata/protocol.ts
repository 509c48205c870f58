// Firmata 2.x framing as StandardFirmata's Firmata.processInput() sees it: MIDI-style commands with a fixed
// number of 7-bit data bytes, and SysEx blocks between START_SYSEX and END_SYSEX. A command byte arriving
// in the middle of a message abandons that message (as a UART glitch would), and stray data bytes are
// dropped, so garbage on the line can never wedge the parser.

export const REPORT_VERSION = 0xf9;
export const DIGITAL_MESSAGE = 0x90;
export const ANALOG_MESSAGE = 0xe0;
export const REPORT_ANALOG = 0xc0;
export const REPORT_DIGITAL = 0xd0;
export const SET_PIN_MODE = 0xf4;
export const SET_DIGITAL_PIN_VALUE = 0xf5;
export const SYSTEM_RESET = 0xff;
export const START_SYSEX = 0xf0;
export const END_SYSEX = 0xf7;

export const QUERY_FIRMWARE = 0x79;
export const CAPABILITY_QUERY = 0x6b;
export const CAPABILITY_RESPONSE = 0x6c;
export const ANALOG_MAPPING_QUERY = 0x69;
export const ANALOG_MAPPING_RESPONSE = 0x6a;
export const PIN_STATE_QUERY = 0x6d;
export const PIN_STATE_RESPONSE = 0x6e;
export const SAMPLING_INTERVAL = 0x7a;

export const MODE = { INPUT: 0x00, OUTPUT: 0x01, ANALOG: 0x02, PWM: 0x03, SERVO: 0x04, PULLUP: 0x0b } as const;

// StandardFirmata's own buffer is 64 bytes; a longer SysEx is a framing error, not a message.
const MAX_SYSEX = 64;

export type FirmataCommand =
  | { type: 'reportVersion' }
  | { type: 'systemReset' }
  | { type: 'digitalMessage'; port: number; mask: number }
  | { type: 'analogMessage'; pin: number; value: number }
  | { type: 'reportDigital'; port: number; enable: boolean }
  | { type: 'reportAnalog'; pin: number; enable: boolean }
  | { type: 'setPinMode'; pin: number; mode: number }
  | { type: 'setDigitalPinValue'; pin: number; value: number }
  | { type: 'sysex'; command: number; data: number[] };

/** Data bytes that follow each multi-byte command (by its high nibble for the channel commands). */
function dataLength(cmd: number): number | undefined {
  if (cmd < 0xf0) {
    switch (cmd & 0xf0) {
      case DIGITAL_MESSAGE:
      case ANALOG_MESSAGE:
        return 2;
      case REPORT_DIGITAL:
      case REPORT_ANALOG:
        return 1;
      default:
        return undefined;
    }
  }
  switch (cmd) {
    case SET_PIN_MODE:
    case SET_DIGITAL_PIN_VALUE:
      return 2;
    case REPORT_VERSION:
    case SYSTEM_RESET:
      return 0;
    default:
      return undefined;
  }
}

export class FirmataParser {
  private cmd: number | undefined;
  private need = 0;
  private data: number[] = [];
  private inSysex = false;
  /** Bytes thrown away as garbage (unknown commands, stray data, overlong SysEx). */
  dropped = 0;

  constructor(private readonly onCommand: (c: FirmataCommand) => void) {}

  push(chunk: Uint8Array): void {
    for (const byte of chunk) this.byte(byte);
  }

  private byte(b: number): void {
    if (this.inSysex) {
      if (b === END_SYSEX) {
        this.inSysex = false;
        const [command, ...data] = this.data;
        this.data = [];
        if (command !== undefined) this.onCommand({ type: 'sysex', command, data });
        return;
      }
      if (b & 0x80) {
        // A command inside a SysEx: the block was cut off; start over with the new command.
        this.dropped += this.data.length + 1;
        this.inSysex = false;
        this.data = [];
        this.byte(b);
        return;
      }
      this.data.push(b);
      if (this.data.length > MAX_SYSEX) {
        this.dropped += this.data.length + 1;
        this.inSysex = false;
        this.data = [];
      }
      return;
    }
    if (b & 0x80) {
      if (this.cmd !== undefined) this.dropped += 1 + this.data.length;
      this.cmd = undefined;
      this.data = [];
      if (b === START_SYSEX) {
        this.inSysex = true;
        return;
      }
      const n = dataLength(b);
      if (n === undefined) {
        this.dropped++;
        return;
      }
      this.cmd = b;
      this.need = n;
      if (n === 0) this.finish();
      return;
    }
    if (this.cmd === undefined) {
      this.dropped++;
      return;
    }
    this.data.push(b);
    if (this.data.length === this.need) this.finish();
  }

  private finish(): void {
    const cmd = this.cmd!;
    const [a = 0, b = 0] = this.data;
    this.cmd = undefined;
    this.data = [];
    if (cmd === REPORT_VERSION) return this.onCommand({ type: 'reportVersion' });
    if (cmd === SYSTEM_RESET) return this.onCommand({ type: 'systemReset' });
    if (cmd === SET_PIN_MODE) return this.onCommand({ type: 'setPinMode', pin: a, mode: b });
    if (cmd === SET_DIGITAL_PIN_VALUE) return this.onCommand({ type: 'setDigitalPinValue', pin: a, value: b });
    const channel = cmd & 0x0f;
    switch (cmd & 0xf0) {
      case DIGITAL_MESSAGE:
        return this.onCommand({ type: 'digitalMessage', port: channel, mask: a | (b << 7) });
      case ANALOG_MESSAGE:
        return this.onCommand({ type: 'analogMessage', pin: channel, value: a | (b << 7) });
      case REPORT_DIGITAL:
        return this.onCommand({ type: 'reportDigital', port: channel, enable: a !== 0 });
      case REPORT_ANALOG:
        return this.onCommand({ type: 'reportAnalog', pin: channel, enable: a !== 0 });
    }
  }
}

/** A SysEx block; the payload must already be 7-bit. */
export function sysex(command: number, payload: readonly number[]): Buffer {
  return Buffer.from([START_SYSEX, command, ...payload, END_SYSEX]);
}

/** Each 8-bit byte as two 7-bit bytes, LSB first (how Firmata sends strings). */
export function twoSevenBit(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (const b of bytes) out.push(b & 0x7f, (b >> 7) & 0x7f);
  return out;
}

/** A value split into as many 7-bit bytes as it needs (at least one), LSB first. */
export function sevenBitValue(value: number): number[] {
  const out = [value & 0x7f];
  for (let v = value >> 7; v > 0; v >>= 7) out.push(v & 0x7f);
  return out;
}

export function digitalMessage(port: number, mask: number): Buffer {
  return Buffer.from([DIGITAL_MESSAGE | (port & 0x0f), mask & 0x7f, (mask >> 7) & 0x7f]);
}
