// What a flow may rely on from a station (labgrid's "protocols", STYLE.md): the module's AT port and its
// QuecThing layer, the probe, the power and reset lines by role, the plan source, the flash layout and the
// protocol timeouts. A station built for a bench and the built-in virtual station are the same type; nothing
// here says which one it is.
import type { AtPort } from '../at/port.ts';
import type { TapFrame } from '../at/passive.ts';
import type { ConsoleLine } from '../at/tap.ts';
import type { BootRecordDecoderName, EchoSetting, McuLayout, StationConfig } from '../config/schema.ts';
import type { Package } from '../images/package.ts';
import type { PowerLines } from '../power/open.ts';
import type { TimedOptions } from '../power/line.ts';
import type { Probe } from '../probe/probe.ts';
import type { QuecThing } from '../quecthing/quecthing.ts';

/** The part of a station a power or reset action applies to. */
export type StationPart = 'module' | 'target';

/**
 * The protocol's own timers (docs/protocol.md §4.2) and the rig's bounds, in wall-clock milliseconds as this
 * station sees them. A station whose module runs faster (the virtual one with a time scale) scales them.
 */
export interface ProtocolTimeouts {
  /** One AT command's answer (the docs say 300 ms for AT+QIOT*; a margin for slow UARTs). */
  commandMs: number;
  /** From power-on or reset to `RDY`. */
  bootMs: number;
  /** From AT+QIOTREG=1 to +QIOTEVT: 3,10200. */
  registerMs: number;
  /** From AT+QIOTOTAREQ (or the start of a push wait) to 10700. */
  planWaitMs: number;
  /** From AT+QIOTUPDATE=1 to the download URL (10701/10702); the module gives up after 30 s. */
  urlWaitMs: number;
  /** Period of 10702 while downloading (5 s). A silence of several periods means the download stalled. */
  downloadNotifyMs: number;
  /** The module's read-inactivity timer after 10703 and after each read (60 s). */
  readInactivityMs: number;
  /** From 10704 to the version report (20 min); also the bound on 10704 itself after AT+QIOTUPDATE=3. */
  updateWaitMs: number;
  /**
   * From the version report to 10705 (or 10706): the module reports the result to the cloud first, a round
   * trip no protocol timer bounds (2 min).
   */
  resultWaitMs: number;
  /** Extra time allowed on top of each protocol timer before the rig gives up waiting for its outcome. */
  marginMs: number;
}

/** Where the application image lives in the target's flash. */
export interface FlashLayout {
  /** Address the application image is programmed at (e.g. 0x08000000). */
  slotAddress: number;
  /** Bytes reserved for it; a read-back of the slot reads this much. */
  slotSize: number;
}

export interface StationModule {
  /** Serial port path (prefer /dev/serial/by-id/…). */
  readonly path: string;
  readonly baudRate: number;
  /** The AT port currently open; replaced by reopen(). */
  readonly at: AtPort;
  /** The QuecThing layer on `at`. */
  readonly qt: QuecThing;
  /** ProductKey and ProductSecret for AT+QIOTCFG="productinfo" (the secret never appears in logs). */
  readonly productInfo: { productKey: string; productSecret: string } | undefined;
  /** Closes and reopens the serial port (a close-port fault, or recovery from a vanished port), then applies the echo setting. */
  reopen(options?: { signal?: AbortSignal }): Promise<void>;
  /** The configured command echo (config `module.echo`): 'keep' the module's own, or turn it 'off' / 'on'. */
  readonly echoSetting: EchoSetting;
  /**
   * Sends ATE0 / ATE1 as `echoSetting` says (nothing for 'keep'), bounded by the command timeout. The station
   * does it when it opens or reopens the port; a flow does it again after every module reboot, since some
   * modules do not save the setting (protocol §6).
   */
  applyEcho(options?: { signal?: AbortSignal }): Promise<void>;
}

export interface StationPower {
  readonly lines: PowerLines;
  /** True when the station has a line for this action (supply for cycle, reset line for reset). */
  can(action: 'cycle' | 'reset', part: StationPart): boolean;
  /** Supply off for `offMs`, then on again; always restored, even when aborted. */
  cycle(part: StationPart, offMs: number, options?: TimedOptions): Promise<void>;
  /** Reset line asserted for `ms`, then released; always released, even when aborted. */
  reset(part: StationPart, ms: number, options?: TimedOptions): Promise<void>;
}

/** An upgrade the rig wants the cloud to offer to this station's device. */
export interface UpgradeSpec {
  component: string;
  /** The package (full or delta) to deliver; its target version is what the MCU reports afterwards. */
  package: Package;
  minBattery?: number;
  minSignal?: number;
  whitelist?: string[];
  blacklist?: string[];
  /** Let the cloud push the plan by itself (true) or only answer AT+QIOTOTAREQ (false, the default). */
  pushActively?: boolean;
  rejectionPeriodMinutes?: number;
}

/** What the rig expects to see in 10700 and 10701 for a prepared plan. */
export interface ExpectedPlan {
  component: string;
  /** '' for a full package (as 10700 shows it). */
  sourceVersion: string;
  targetVersion: string;
  size: number;
  md5: string;
  /** The CRC as the cloud announces it (unsigned decimal in 10701). */
  crc: number;
  /**
   * How the cloud computes that CRC (protocol §9.6 leaves it open): the flow checks the download with it.
   * Absent when the plan source cannot tell; the flow then uses CRC-32/IEEE.
   */
  crcAlgorithm?: string;
  sha256: string;
  minBattery: number;
  minSignal: number;
}

export interface PreparedPlan {
  /** The plan source's identifier (a Developer Center plan name, or the admin API's id). */
  id: string;
  expected: ExpectedPlan;
}

/** Where plans come from: created through an API where there is one, declared in config where there is not. */
export interface PlanSource {
  readonly kind: 'api' | 'declared';
  /** Makes the upgrade available (api) or checks that an operator declared a matching plan (declared). */
  prepare(spec: UpgradeSpec, options?: { signal?: AbortSignal }): Promise<PreparedPlan>;
  /** Ends every plan this run created, so the next test starts clean (a no-op for declared plans). */
  clear(options?: { signal?: AbortSignal }): Promise<void>;
  /** Cloud-side faults this source can inject (e.g. 'corrupt-next-download'); empty on real Developer Center. */
  readonly cloudFaults: readonly string[];
  injectCloudFault(kind: string, params?: Record<string, unknown>): Promise<void>;
}

/**
 * The MCU side of a station that can run dut mode: what the rig listens to (the MCU↔module UART through two
 * taps, the MCU's console) and how the MCU's flash is laid out. The taps and the console are opened with
 * the station and only ever read.
 */
export interface StationMcu {
  readonly taps: { readonly mcuToModule: string; readonly moduleToMcu: string; readonly baudRate: number };
  readonly console: { readonly port: string; readonly baudRate: number } | undefined;
  readonly layout: McuLayout;
  /** How the bootloader's boot record is decoded ('none': the verdict stands on the slots and what is seen). */
  readonly bootRecord: BootRecordDecoderName;
  /** Every tapped frame and console line from now on, until the returned function is called. */
  observe(onFrame: (frame: TapFrame) => void, onConsole?: (line: ConsoleLine) => void): () => void;
  /** Bytes received so far on each port (doctor's "bytes flow" check). */
  readonly received: { readonly mcuToModule: number; readonly moduleToMcu: number; readonly console: number };
  /** Why a tap or the console went away on its own, if one did. */
  readonly trouble: string | undefined;
}

/** Facts about the station for reports (Allure environment, run records). */
export interface StationInfo {
  name: string;
  /** Free text from config, e.g. "Pi 5 #3, EC200U on USB, STM32F407 + ST-Link". */
  description: string;
  baudRate: number;
  target: string;
  probe: string;
}

export interface Station {
  readonly name: string;
  readonly info: StationInfo;
  readonly module: StationModule;
  readonly probe: Probe;
  readonly power: StationPower;
  readonly plans: PlanSource;
  readonly layout: FlashLayout;
  /** The MCU component name the module knows the target by (10700's componentNo), e.g. "STM32". */
  readonly component: string;
  readonly timeouts: ProtocolTimeouts;
  /** The MCU side (dut mode), when the station declares one. */
  readonly mcu?: StationMcu;
  /**
   * The config entry the station was opened from, as written (a virtual station's settings, a bench's secret
   * references unresolved). A run record keeps it without secrets, so `rig repro` can rebuild the station.
   */
  readonly entry?: StationConfig;
  /** Safe state: power lines to their defaults, OpenOCD gone, ports closed, lock released. Idempotent. */
  close(): Promise<void>;
}
