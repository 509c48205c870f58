// What a station is, read live from its parts: the module's identity (ATI, AT+QGMR, AT+GSN, AT+QIOTINFO?),
// the probe (the adapter as OpenOCD announced it, its USB serial number) and the target (IDCODE, core, device
// id, flash size). `rig inventory` prints it for every station of a host, and the suites put it in the
// report's per-station table, so that a result can be traced to the exact module, probe and chip behind it.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HardwareStationConfig } from '../config/schema.ts';
import type { OpenedStation } from './open.ts';

export interface StationIdentity {
  station: string;
  kind: 'virtual' | 'hardware';
  description: string;
  module: {
    /** ATI's first two lines: "Quectel EC200U". */
    model: string;
    /** AT+QGMR: the module firmware. */
    firmware: string;
    /** AT+GSN. */
    imei: string;
    /** AT+QIOTINFO? "version". */
    quecthing: string;
    baudRate: number;
  };
  probe: {
    /** "ST-Link", "CMSIS-DAP (swd)", "Bus Pirate (jtag)", "remote_bitbang". */
    adapter: string;
    /** The adapter's USB serial number, where it has one; how it was learned, in `serialSource`. */
    serial: string | undefined;
    serialSource: 'openocd' | 'usb' | 'config' | undefined;
    /** What OpenOCD said of the adapter at init ("STLINK V2J37S7 (API v2) VID:PID 0483:3748"), if anything. */
    announced: string | undefined;
    openocd: string;
  };
  target: {
    family: string;
    /** JTAG IDCODE or SWD DPIDR, "0x4ba00477". */
    idcode: string | undefined;
    core: string;
    /** DBGMCU_IDCODE, "0x10076413". */
    deviceId: string;
    flashKiB: number;
  };
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** `openocd --version`'s first line ("Open On-Chip Debugger 0.12.0"), or why it is unknown. Bounded. */
export function openocdVersion(binary: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { timeout: 10_000 }, (err, stdout, stderr) => {
      const first = `${stderr}\n${stdout}`.split('\n').find((l) => /open on-chip debugger/i.test(l));
      resolve(first?.trim() ?? (err ? `unknown (${err.message.split('\n')[0]})` : 'unknown'));
    });
  });
}

/** Lines OpenOCD logs at init that name the adapter (and, for CMSIS-DAP, its serial number). */
const ADAPTER_LINE = /(STLINK \S+ \(API[^)]*\).*|CMSIS-DAP: (?:FW Version|Serial#).*|J-Link .*)/;
const SERIAL_LINE = /Serial#? ?[=:] ?(\S+)/;

export interface UsbDevice {
  vendor: string;
  product: string;
  name: string;
  serial: string;
}

/** USB devices as sysfs lists them (empty where there is no sysfs). */
export function usbDevices(root = '/sys/bus/usb/devices'): UsbDevice[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const read = (dir: string, file: string): string => {
    try {
      return readFileSync(path.join(dir, file), 'utf8').trim();
    } catch {
      return '';
    }
  };
  return names
    .map((n) => path.join(root, n))
    .map((dir) => ({ vendor: read(dir, 'idVendor'), product: read(dir, 'idProduct'), name: read(dir, 'product'), serial: read(dir, 'serial') }))
    .filter((d) => d.vendor !== '' && d.serial !== '');
}

/** ST's vendor id: every ST-Link. */
const ST_VENDOR = '0483';

/**
 * The probe's serial number: the one OpenOCD logged (CMSIS-DAP does), else the configured one if that
 * device is on USB, else the only ST-Link / CMSIS-DAP on USB when the config names none.
 */
export function probeSerial(hw: HardwareStationConfig, logText: string, usb: readonly UsbDevice[]): Pick<StationIdentity['probe'], 'serial' | 'serialSource'> {
  const logged = logText.split('\n').map((l) => SERIAL_LINE.exec(l)?.[1]).find((s) => s !== undefined);
  if (logged) return { serial: logged, serialSource: 'openocd' };
  const i = hw.probe.interface;
  // A Bus Pirate is a USB serial port, named by its path; remote_bitbang has no device at all.
  if (i.kind === 'remote_bitbang' || i.kind === 'buspirate') return { serial: undefined, serialSource: undefined };
  const candidates = usb.filter((d) => (i.kind === 'stlink' ? d.vendor === ST_VENDOR && /st-?link/i.test(d.name || 'ST-Link') : /cmsis-dap|dap/i.test(d.name)));
  if (i.serial !== undefined) {
    return candidates.some((d) => d.serial === i.serial) || usb.some((d) => d.serial === i.serial) ? { serial: i.serial, serialSource: 'usb' } : { serial: i.serial, serialSource: 'config' };
  }
  return candidates.length === 1 ? { serial: candidates[0]!.serial, serialSource: 'usb' } : { serial: undefined, serialSource: undefined };
}

function adapterName(hw: HardwareStationConfig): string {
  const i = hw.probe.interface;
  return i.kind === 'stlink' ? 'ST-Link' : i.kind === 'cmsis-dap' ? `CMSIS-DAP (${i.transport ?? 'swd'})` : i.kind === 'buspirate' ? `Bus Pirate (${i.transport ?? 'jtag'})` : 'remote_bitbang';
}

/** Reads the identity of an open station: a few AT commands and one examine over SWD. */
export async function readIdentity(s: OpenedStation, signal?: AbortSignal): Promise<StationIdentity> {
  const o = { timeoutMs: s.timeouts.commandMs + s.timeouts.marginMs, ...(signal ? { signal } : {}) };
  const id = await s.module.qt.identify(o);
  const firmware = await s.module.qt.firmwareRevision(o);
  const imei = await s.module.qt.imei(o);
  const quecthing = (await s.module.qt.info(o)).find((i) => i.item === 'version')?.value ?? 'unknown';
  const target = await s.probe.examine(signal ? { signal } : {});
  const log = s.probe.log.text();
  const announced = log.split('\n').map((l) => ADAPTER_LINE.exec(l)?.[1]?.trim()).find((l) => l !== undefined);
  return {
    station: s.name,
    kind: s.entry.kind === 'virtual' ? 'virtual' : 'hardware',
    description: s.info.description,
    module: { model: `${id.manufacturer} ${id.model}`.trim(), firmware, imei, quecthing, baudRate: s.info.baudRate },
    probe: { adapter: adapterName(s.config), ...probeSerial(s.config, log, usbDevices()), announced, openocd: await openocdVersion(s.config.probe.openocd) },
    target: {
      family: s.config.probe.target,
      idcode: target.idcode === undefined ? undefined : hex(target.idcode),
      core: target.core,
      deviceId: hex(target.deviceId),
      flashKiB: target.flashSizeKiB,
    },
  };
}
