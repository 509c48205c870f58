// Turns a station's declarative probe entry (which adapter, which serial, port or socket, which STM32 family)
// into OpenOCD's `-f`/`-c` arguments. Pure: no files, no processes. It knows adapters and target families,
// never whether the other end is a bench or the virtual station — a Bus Pirate or a remote_bitbang adapter
// is just another adapter.

import { ConfigError } from '../errors.ts';
import { tclWord } from './tcl.ts';

export type ProbeInterface =
  | { kind: 'stlink'; serial?: string }
  | { kind: 'cmsis-dap'; serial?: string; transport?: 'swd' | 'jtag' }
  | { kind: 'remote_bitbang'; host: string; port: number }
  | { kind: 'buspirate'; port: string; transport?: 'jtag' | 'swd' };

export type TargetFamily = 'stm32f1x' | 'stm32f4x';

export interface ProbeConfig {
  interface: ProbeInterface;
  target: TargetFamily;
  /**
   * Bytes of SRAM OpenOCD may use for its flash loader and CRC routine; omitted = the target cfg's default
   * (4 KiB on the F1, 64 KiB on the F4). 0 makes OpenOCD program half-word by half-word over the debug port
   * and compute CRCs on the host: for a target that cannot run code (a core held by a fault, or a debug
   * port without a CPU behind it).
   */
  workAreaSize?: number;
  /** Adapter clock; omitted = the target cfg's default. Ignored for remote_bitbang and buspirate, which have no settable clock. */
  speedKHz?: number;
  /** Further configuration commands, run after the target cfg and before `init`. */
  extra?: readonly string[];
}

export interface FamilyProfile {
  /** Script under OpenOCD's search path. */
  cfg: string;
  /** The cfg's target (`$_CHIPNAME.cpu`), as the Tcl commands name it. */
  targetName: string;
  /** OpenOCD's number for the main flash bank. */
  flashBank: number;
  flashBase: number;
  /** The factory flash-size register (KiB), a 16-bit read (RM0008 §30.1, RM0090 §39.2). */
  flashSizeRegister: number;
  /**
   * The cfg's event handlers that set `adapter speed`; an adapter without a configurable clock makes each of
   * them log an error on every reset (docs/virtual-station.md, OpenOCD §3.6), and raising the clock is all they are for.
   */
  speedEvents: readonly string[];
}

export const FAMILIES: Readonly<Record<TargetFamily, FamilyProfile>> = {
  stm32f1x: {
    cfg: 'target/stm32f1x.cfg',
    targetName: 'stm32f1x.cpu',
    flashBank: 0,
    flashBase: 0x0800_0000,
    flashSizeRegister: 0x1fff_f7e0,
    speedEvents: [],
  },
  stm32f4x: {
    cfg: 'target/stm32f4x.cfg',
    targetName: 'stm32f4x.cpu',
    flashBank: 0,
    flashBase: 0x0800_0000,
    flashSizeRegister: 0x1fff_7a22,
    speedEvents: ['reset-start', 'reset-init'],
  },
};

/** What the driver needs besides the station name: the argument list and the names it must use. */
export interface ProbeSetup {
  args: string[];
  targetName: string;
  flashBank: number;
  flashBase: number;
  flashSizeRegister: number;
}

function serialArgs(serial: string | undefined): string[] {
  if (serial === undefined) return [];
  if (!/^[\x21-\x7e]+$/.test(serial)) throw new ConfigError('probe serial must be printable ASCII without spaces', { expected: 'e.g. 066DFF555051897267233656', seen: JSON.stringify(serial) });
  return ['-c', `adapter serial ${tclWord(serial)}`];
}

function nonNegativeInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new ConfigError(`probe ${name} must be a non-negative integer`, { seen: String(v) });
}

export function buildProbeArgs(config: ProbeConfig): ProbeSetup {
  const family = FAMILIES[config.target];
  if (family === undefined) throw new ConfigError('unknown target family', { expected: Object.keys(FAMILIES).join(' | '), seen: String(config.target) });
  nonNegativeInt('workAreaSize', config.workAreaSize);
  nonNegativeInt('speedKHz', config.speedKHz);

  const args: string[] = [];
  const iface = config.interface;
  let hasClock = true;
  switch (iface.kind) {
    case 'stlink':
      args.push('-f', 'interface/stlink.cfg', ...serialArgs(iface.serial));
      break;
    case 'cmsis-dap':
      args.push('-f', 'interface/cmsis-dap.cfg', ...serialArgs(iface.serial), '-c', `transport select ${iface.transport ?? 'swd'}`);
      break;
    case 'remote_bitbang': {
      if (!/^[A-Za-z0-9.:-]+$/.test(iface.host)) throw new ConfigError('remote_bitbang host must be a host name or address', { seen: JSON.stringify(iface.host) });
      // port 0 would make OpenOCD treat `host` as a UNIX socket path (docs/virtual-station.md, OpenOCD §1.1).
      if (!(Number.isInteger(iface.port) && iface.port > 0 && iface.port < 65536)) throw new ConfigError('remote_bitbang port must be 1..65535', { seen: String(iface.port) });
      hasClock = false;
      args.push('-c', 'adapter driver remote_bitbang', '-c', `remote_bitbang host ${iface.host}`, '-c', `remote_bitbang port ${iface.port}`);
      break;
    }
    case 'buspirate': {
      // A Bus Pirate (or a JtagDue) with its OpenOCD binary mode, on its USB serial port.
      if (!/^\/[\x21-\x7e]+$/.test(iface.port)) throw new ConfigError('buspirate port must be an absolute device path without spaces', { expected: 'e.g. /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KA0EN-if00-port0', seen: JSON.stringify(iface.port) });
      hasClock = false;
      args.push('-c', 'adapter driver buspirate', '-c', `buspirate port ${tclWord(iface.port)}`, '-c', `transport select ${iface.transport ?? 'jtag'}`);
      break;
    }
    default:
      throw new ConfigError('unknown probe interface', { expected: 'stlink | cmsis-dap | remote_bitbang | buspirate', seen: JSON.stringify((iface as { kind?: unknown }).kind) });
  }
  // The cfg reads WORKAREASIZE when it is sourced, so it must be set before.
  if (config.workAreaSize !== undefined) args.push('-c', `set WORKAREASIZE ${config.workAreaSize}`);
  args.push('-f', family.cfg);
  if (hasClock && config.speedKHz !== undefined) args.push('-c', `adapter speed ${config.speedKHz}`);
  // One -event per configure call: several in one call is a "wrong # args" error in 0.12 (docs/virtual-station.md, OpenOCD §3.6).
  if (!hasClock) for (const ev of family.speedEvents) args.push('-c', `${family.targetName} configure -event ${ev} {}`);
  for (const cmd of config.extra ?? []) args.push('-c', cmd);
  return {
    args,
    targetName: family.targetName,
    flashBank: family.flashBank,
    flashBase: family.flashBase,
    flashSizeRegister: family.flashSizeRegister,
  };
}
