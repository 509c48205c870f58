// What the virtual MCU's firmware (bootloader and application) runs on: the core's clock and waits, its
// own flash writes, reads of the flash array, the debug console, the watchdog, the UART to the module and
// a self reset. One Firmware object per program run: after a reset it is dead and does nothing more.
import type { CrcAlgorithm } from '../cloud/hash.ts';
import type { FlashWriter } from '../target/flash-writer.ts';
import type { McuLayout, Region } from './layout.ts';
import type { McuRuntime } from './runtime.ts';

export interface McuOptions {
  /** The MCU's own battery reading, percent (a 10700's battery limit is checked against it). */
  batteryPercent: number;
  /** Bytes per AT+QIOTOTARD. */
  blockSize: number;
  /** The watchdog's window, protocol ms: an image that does not feed it in time is reset. */
  watchdogMs: number;
  /** How long the self-test of an image in trial takes, protocol ms. */
  selfTestMs: number;
  /** What the application configures before it registers (any value works with the virtual cloud). */
  productKey: string;
  productSecret: string;
  /** The CRC the firmware was built to check 10701's <CRC> with (the cloud's, --crc). */
  crcAlgorithm: CrcAlgorithm;
  /** The UART to the module, bits per second (0 = unpaced): AT timeouts allow for the bytes' time on the wire. */
  uartBaud: number;
  /** Wall ms per protocol ms. */
  timeScale: number;
}

export const defaultMcuOptions: McuOptions = {
  batteryPercent: 100,
  blockSize: 1024,
  watchdogMs: 10_000,
  selfTestMs: 200,
  productKey: 'p1vmcu',
  productSecret: 'vmcu-product-secret',
  crcAlgorithm: 'crc32',
  uartBaud: 115200,
  timeScale: 1,
};

export interface Firmware {
  readonly rt: McuRuntime;
  readonly flash: FlashWriter;
  readonly layout: McuLayout;
  readonly options: McuOptions;
  /** False once a reset or power loss ended this program. */
  alive(): boolean;
  /** A copy of flash bytes at an absolute address. */
  read(address: number, length: number): Uint8Array;
  /** The flash bytes themselves (no copy): only for reading right away. */
  view(address: number, length: number): Uint8Array;
  readRegion(r: Region): Uint8Array;
  /** One console line (without its line end). */
  console(line: string): void;
  /** Bytes on the UART toward the module. */
  uartSend(bytes: Buffer): void;
  /** Takes the UART's received bytes from now on (the application's AT driver). */
  uartReceive(fn: (bytes: Buffer) => void): void;
  watchdogArm(windowMs: number): void;
  watchdogFeed(): void;
  /** SYSRESETREQ: the program ends here. */
  systemReset(): void;
  /** What the core is running, for the admin API. */
  setPhase(phase: 'bootloader' | 'application' | 'bricked', detail?: Record<string, unknown>): void;
}

/** Offset of an absolute address from the flash base (what FlashWriter takes). */
export const offsetOf = (fw: Firmware, address: number): number => address - fw.layout.flashBase;
