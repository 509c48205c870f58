// The slice of johnny-five 2.1 and firmata-io 2.3 that rig/power uses; neither ships type declarations.

declare module 'firmata-io' {
  import type { EventEmitter } from 'node:events';

  interface FirmataPin {
    supportedModes: number[];
    mode?: number;
    value: number;
    state?: number;
    analogChannel?: number;
  }

  interface FirmataOptions {
    reportVersionTimeout?: number;
    skipCapabilities?: boolean;
    samplingInterval?: number;
  }

  export class Firmata extends EventEmitter {
    constructor(transport: NodeJS.ReadWriteStream | EventEmitter, options?: FirmataOptions);
    readonly MODES: { INPUT: number; OUTPUT: number; PULLUP: number; ANALOG: number; PWM: number };
    readonly HIGH: 1;
    readonly LOW: 0;
    isReady: boolean;
    reportVersionTimeoutId: NodeJS.Timeout;
    pins: FirmataPin[];
    ports: number[];
    pending: number;
    firmware: { name?: string; version?: { major: number; minor: number } };
    version: { major?: number; minor?: number };
    reportVersion(cb: () => void): void;
    queryFirmware(cb: () => void): void;
    pinMode(pin: number, mode: number): void;
    digitalWrite(pin: number, value: number, enqueue?: boolean): void;
    digitalRead(pin: number, cb: (value: number) => void): void;
    updateDigitalPort(pin: number, value: number): number;
    queryPinState(pin: number, cb: () => void): void;
  }

  interface BindTransport {
    (transport: unknown): typeof Firmata;
    Firmata: typeof Firmata;
  }
  const bindTransport: BindTransport;
  export default bindTransport;
}

declare module 'johnny-five' {
  import type { EventEmitter } from 'node:events';

  interface BoardOptions {
    io: unknown;
    id?: string;
    repl?: boolean;
    sigint?: boolean;
    debug?: boolean;
    timeout?: number;
  }

  export class Board extends EventEmitter {
    constructor(options: BoardOptions);
    isReady: boolean;
    isConnected: boolean;
    timer: NodeJS.Timeout | null;
    io: unknown;
  }

  interface RelayOptions {
    pin: number;
    type?: 'NO' | 'NC';
    board?: Board;
  }

  export class Relay {
    constructor(options: RelayOptions);
    readonly pin: number;
    readonly type: 'NO' | 'NC';
    readonly isClosed: boolean;
    readonly value: number;
    open(): this;
    close(): this;
    toggle(): this;
  }

  const five: { Board: typeof Board; Relay: typeof Relay };
  export default five;
}
