// The run record: everything a proxy run observed, as versioned JSON. It is the evidence behind a verdict
// (a report renders it; an engineer reads it at 8 a.m. without rerunning anything) and the recipe for
// `rig repro`: the plan, the starting image, the MCU's readings and the fault schedule are enough to run the
// same upgrade again on any station (replay.ts).
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { droppedNote, type Direction, type DroppedEntries } from '../at/transcript.ts';
import { OUTCOMES } from './verdict.ts';
import type { Outcome, ReadbackResult, Verdict } from './verdict.ts';
import type { ExpectedPlan, UpgradeSpec } from '../station/station.ts';
import type { BootRecordDecoderName, EchoSetting, McuLayout, StationConfig } from '../config/schema.ts';
import type { BootRecord } from './boot-record.ts';
import type { TapLine } from './dut-observe.ts';
import type { SlotEvidence } from './dut-verdict.ts';
import type { FirmwareSet } from '../images/manifest.ts';
import type { Image } from '../images/image.ts';
import type { Package, PackageInfo } from '../images/package.ts';
import type { PreparedPlan, Station } from '../station/station.ts';
import type { Recorder } from './recorder.ts';
import type { FaultSchedule } from './schedule.ts';
import { whyNotFired } from './schedule.ts';
import { faultLanding } from './sweep/timeline.ts';

export const RUN_RECORD_FORMAT = 'sota-rig/run-record';
export const RUN_RECORD_VERSION = 1;

/** Milliseconds from the start of the run, monotonic clock. */
export type RunTime = number;

export interface RecordedEvent {
  t: RunTime;
  /** The URC as received (`+QIOTEVT: 7,10703,"STM32",25344,0,25344`, `RDY`). */
  raw: string;
  kind: string;
  code?: number;
}

export interface RecordedLine {
  t: RunTime;
  dir: Direction;
  text: string;
  binary?: { length: number; sha256: string };
}

export interface RecordedPhase {
  name: string;
  start: RunTime;
  end: RunTime;
  durationMs: number;
  ok: boolean;
}

export interface RecordedError {
  t: RunTime;
  phase: string;
  kind: string;
  name: string;
  message: string;
  /** True when the flow carried on after it (a recovery), false when it ended the run. */
  recovered: boolean;
}

export interface FiredFault {
  fault: string;
  t: RunTime;
  phase: string;
  /** What the action did and how the flow recovered, in a few words. */
  effect: string;
  /**
   * Where it took effect in this run (sweep/timeline.ts faultLanding): the moment (an MCU cut: the MCU's last
   * line before it started again) and the upgrade's window then, null before the plan. Tells a test whose
   * fault missed its window (the rig was late) from one whose verdict is about the firmware.
   */
  landed?: { t: RunTime; window: string | null };
}

export interface CloudFault {
  kind: string;
  params?: Record<string, unknown>;
}

/** The plan as recorded: enough to prepare the same one again (the package is named, not embedded). */
export type RecordedSpec = Omit<UpgradeSpec, 'package'> & {
  /** Manifest name of the package (FirmwareSet.package). */
  package: string;
};

/** What only a dut run records: the MCU side, the taps, the console, the boot record and both slots. */
export interface DutRecordPart {
  from: { version: string; size: number; sha256: string };
  target: { version: string; size: number; sha256: string };
  /** The bootloader the run arranged at the flash base, when it was given one. */
  bootloader: { version: string; size: number; sha256: string } | null;
  layout: McuLayout;
  bootRecordDecoder: BootRecordDecoderName;
  /** What arranging the flash took: images kept (the read-back matched) or written, slot B erased, the record made confirmed. */
  arrange: { bootloader: 'kept' | 'written' | 'not given'; slotA: 'kept' | 'written'; slotB: 'erased'; bootRecord: string };
  bootRecord: { before: BootRecord | null; after: BootRecord | null };
  slots: { a: SlotEvidence | null; b: SlotEvidence | null };
  /** Both tap directions and the console as one transcript, in order. */
  tap: TapLine[];
  console: { t: RunTime; text: string }[];
  /** Every AT+QIOTMCUVER the MCU sent. */
  reports: { t: RunTime; version: string }[];
  /** Every start of the MCU the run saw or caused, and whether a version report followed it. */
  starts: { t: RunTime; why: string; reported: boolean }[];
  /** Module events as the MCU received them (tapped). */
  moduleEvents: { t: RunTime; raw: string; code?: number }[];
  /** What the module's USB AT port said when asked (AT+QIOTSTATE?, AT+QURCCFG="urcport"). */
  module: { state: number | null; urcPort: string | null };
  /** Why the observation ended (settled), or null when it did not. */
  settled: string | null;
  options: { reportWithinMs: number; settleMs: number; consoleStart: string; fresh: boolean };
}

export interface RunRecord {
  format: typeof RUN_RECORD_FORMAT;
  version: typeof RUN_RECORD_VERSION;
  /** The flow that ran: proxy (the rig plays the MCU) or dut (the MCU under test drives, the rig observes). */
  flow: 'proxy' | 'dut';
  /** The same as `flow`; absent in records written before dut mode (proxy). */
  mode?: 'proxy' | 'dut';
  /** Wall-clock start, ISO 8601; every other time is RunTime. */
  startedAt: string;
  durationMs: number;
  station: {
    name: string;
    description: string;
    baudRate: number;
    target: string;
    probe: string;
    component: string;
    slotAddress: number;
    /**
     * The module's command echo the run used (config module.echo): 'keep' the module's own (on after boot),
     * 'off' / 'on' set with ATE0 / ATE1 at the start and after every reboot. Absent in older records ('keep').
     */
    echo?: EchoSetting;
    /** The station's config entry without secrets (recordedStationConfig); a replay on a virtual station applies its settings. */
    config?: RecordedStationConfig;
  };
  /** The plan source's id and what the rig expected to see in 10700/10701. */
  plan: { id: string } & ExpectedPlan;
  spec: RecordedSpec;
  package: { name: string; type: 'full' | 'delta'; version: string; sourceVersion: string | null; size: number; sha256: string; targetSha256: string };
  /** The image in the slot when the run started. */
  current: { version: string; size: number; sha256: string };
  /**
   * `crcAlgorithm` is what the download was checked with (the plan's cloud, or the one asked for);
   * `crcRequested` only the one the run asked for (`--crc`), which is all a replay on another station may impose.
   */
  options: { battery: number; blockSize: number; crcAlgorithm: string; crcRequested?: string; expect: Outcome[]; maxRecoveries: number };
  /** The fault schedule in text form (faults.ts), in order. */
  faults: string[];
  cloudFaults: CloudFault[];
  fired: FiredFault[];
  events: RecordedEvent[];
  transcript: RecordedLine[];
  /** What the transcript's memory budget dropped (its oldest entries), when it had to. */
  transcriptDropped?: DroppedEntries;
  phases: RecordedPhase[];
  read: { bytes: number; blocks: number; ms: number; bytesPerSecond: number };
  /** (time, file offset) after each block read, for a chart; downsampled beyond `PROGRESS_POINTS`. */
  progress: { t: RunTime; offset: number }[];
  /** The digest check of the download (undefined when no download finished). */
  download: { verified: boolean; problems: string[]; announced: { size: number; md5: string; crc: number; sha256?: string } | null } | null;
  /** Why the MCU refused the plan (AT+QIOTUPDATE=0), when it did. */
  refusal: string | null;
  readback: ReadbackResult | null;
  verdict: Verdict;
  errors: RecordedError[];
  /** What the module did that the protocol allows but the rig did not expect (10700's space ≠ package size). */
  warnings?: string[];
  /**
   * The package and the starting image themselves, when they do not come from the project's manifest (a
   * suite's temporary build): `rig repro` needs the bytes once the directory is gone.
   */
  firmware?: RecordedFirmware;
  /** Dut runs only. */
  dut?: DutRecordPart;
}

/** A station's config entry as a record keeps it: JSON, no secrets. */
export type RecordedStationConfig = { kind: 'virtual' | 'hardware' } & Record<string, unknown>;

export interface RecordedFirmware {
  package?: { info: PackageInfo; base64: string };
  current?: { component: string; version: string; base64: string };
  /** A dut run's bootloader, when no manifest holds it. */
  bootloader?: { component: string; version: string; base64: string };
}

/**
 * The virtual station's options that change what a run sees (timing, pieces, CRC). Paths (flashImage,
 * openocd) name files on the recording machine, and the product secret is a secret even when it is a default.
 */
const VIRTUAL_SETTINGS = ['target', 'baud', 'timeScale', 'timeouts', 'seed', 'moduleFreeSpace', 'downloadRate', 'bootMs', 'crc', 'flashSizeKiB', 'simArgs', 'layout', 'component', 'module', 'mcu'] as const;

/** The part of a station's config entry a record keeps: a virtual station's settings, a bench's entry minus secrets. */
export function recordedStationConfig(entry: StationConfig): RecordedStationConfig {
  if (entry.kind === 'virtual') {
    const out: RecordedStationConfig = { kind: 'virtual' };
    for (const k of VIRTUAL_SETTINGS) if (entry[k] !== undefined) out[k] = entry[k];
    return out;
  }
  const { productSecret: _secret, ...module } = entry.module;
  return JSON.parse(JSON.stringify({ ...entry, module })) as RecordedStationConfig;
}

/** The recorded virtual settings, to apply over a virtual station's own entry when replaying. */
export function recordedVirtualSettings(record: Pick<RunRecord, 'station'>): Record<string, unknown> {
  const c = record.station.config;
  if (c?.kind !== 'virtual') return {};
  const { kind: _kind, ...settings } = c;
  return settings;
}

/**
 * The bytes a replay cannot find elsewhere: the package and the starting image unless the manifest holds
 * the very same files under the names the record gives them (a replay looks them up by name, then checks
 * the sha256).
 */
export function recordedFirmware(pkg: Package, current: Image, manifest: FirmwareSet | undefined): RecordedFirmware | undefined {
  const out: RecordedFirmware = {};
  if (manifest?.packages.get(pkg.name)?.sha256 !== pkg.sha256) {
    const info: PackageInfo = { name: pkg.name, component: pkg.component, version: pkg.version, type: pkg.type, sourceVersion: pkg.sourceVersion, declared: pkg.declared, source: pkg.source, target: pkg.target };
    out.package = { info: JSON.parse(JSON.stringify(info)) as PackageInfo, base64: Buffer.from(pkg.bytes).toString('base64') };
  }
  if (manifest?.images.get(current.version)?.sha256 !== current.sha256) out.current = { component: current.component, version: current.version, base64: Buffer.from(current.bytes).toString('base64') };
  return out.package || out.current ? out : undefined;
}

/** The fired faults of a finished run with where each landed (FiredFault.landed). */
export function landFaults(record: RunRecord): FiredFault[] {
  return record.fired.map((f) => {
    try {
      const l = faultLanding(record, f);
      return { ...f, landed: { t: l.t, window: l.window ?? null } };
    } catch {
      // The record matters more than this reading of it (a console pattern that no longer compiles…).
      return f;
    }
  });
}

/** What a writer adds to a record the flow returned: the station's config entry and the bytes a replay needs. */
export function completeRecord(record: RunRecord, extra: { entry?: StationConfig | undefined; firmware?: RecordedFirmware | undefined }): RunRecord {
  return {
    ...record,
    station: { ...record.station, ...(extra.entry ? { config: recordedStationConfig(extra.entry) } : {}) },
    ...(extra.firmware ? { firmware: extra.firmware } : {}),
  };
}

export const PROGRESS_POINTS = 2000;

/** Keeps at most `max` points, evenly thinned, the last point always kept. */
export function thin<T>(points: readonly T[], max = PROGRESS_POINTS): T[] {
  if (points.length <= max) return [...points];
  const out: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * step)]!);
  return out;
}

/** The station as a record names it (its config entry is added by completeRecord). */
export function recordedStation(station: Station): RunRecord['station'] {
  return {
    name: station.name,
    description: station.info.description,
    baudRate: station.info.baudRate,
    target: station.info.target,
    probe: station.info.probe,
    component: station.component,
    slotAddress: station.layout.slotAddress,
    echo: station.module.echoSetting,
  };
}

/** The plan, the spec that asked for it and the package, as a record keeps them (what `rig repro` prepares again). */
export function recordedUpgrade(
  station: Station,
  prepared: PreparedPlan | undefined,
  pkg: Package | undefined,
  spec: Omit<UpgradeSpec, 'package'> | undefined,
): Pick<RunRecord, 'plan' | 'spec' | 'package'> {
  const plan = prepared?.expected;
  return {
    plan: {
      id: prepared?.id ?? '',
      component: plan?.component ?? station.component,
      sourceVersion: plan?.sourceVersion ?? pkg?.sourceVersion ?? '',
      targetVersion: plan?.targetVersion ?? pkg?.version ?? '',
      size: plan?.size ?? pkg?.size ?? 0,
      md5: plan?.md5 ?? pkg?.declared.md5 ?? '',
      crc: plan?.crc ?? pkg?.declared.crc ?? 0,
      sha256: plan?.sha256 ?? pkg?.declared.sha256 ?? '',
      minBattery: plan?.minBattery ?? 0,
      minSignal: plan?.minSignal ?? 0,
    },
    spec: {
      component: spec?.component ?? plan?.component ?? station.component,
      package: pkg?.name ?? '',
      ...(spec?.minBattery !== undefined ? { minBattery: spec.minBattery } : plan?.minBattery ? { minBattery: plan.minBattery } : {}),
      ...(spec?.minSignal !== undefined ? { minSignal: spec.minSignal } : plan?.minSignal ? { minSignal: plan.minSignal } : {}),
      ...(spec?.whitelist ? { whitelist: spec.whitelist } : {}),
      ...(spec?.blacklist ? { blacklist: spec.blacklist } : {}),
      ...(spec?.pushActively !== undefined ? { pushActively: spec.pushActively } : {}),
      ...(spec?.rejectionPeriodMinutes !== undefined ? { rejectionPeriodMinutes: spec.rejectionPeriodMinutes } : {}),
    },
    package: {
      name: pkg?.name ?? '',
      type: pkg?.type ?? 'full',
      version: pkg?.version ?? '',
      sourceVersion: pkg?.sourceVersion ?? null,
      size: pkg?.size ?? 0,
      sha256: pkg?.sha256 ?? '',
      targetSha256: pkg?.target.sha256 ?? '',
    },
  };
}

/**
 * The evidence every run hands its Recorder at the end: the fault schedule (what fired, and why the rest did
 * not), the AT transcript and the record itself (the report's run-record attachment, what `rig repro` reads).
 */
export function publishRecord(recorder: Recorder, record: RunRecord, schedule: FaultSchedule): void {
  if (record.faults.length > 0) {
    const unfired = schedule.unfired().map((u) => `${u.text}: never fired: ${whyNotFired(u.fault, record)}`);
    const landed = (f: FiredFault) => (f.landed ? `; landed ${f.landed.window ? `in window ${f.landed.window}` : 'before the plan'}${Math.abs(f.landed.t - f.t) >= 1 ? ` at ${(f.landed.t / 1000).toFixed(3)} s` : ''}` : '');
    recorder.attach('fault schedule', [...record.fired.map((f) => `${f.fault} at ${(f.t / 1000).toFixed(3)} s (${f.phase}): ${f.effect}${landed(f)}`), ...unfired].join('\n'), 'text/plain');
  }
  const lines = record.transcript.map((l) => `${(l.t / 1000).toFixed(3).padStart(9)} [${l.dir}]${l.text}`);
  if (record.transcriptDropped) lines.unshift(droppedNote(record.transcriptDropped));
  recorder.attach('AT transcript', lines.join('\n'), 'text/plain');
  recorder.attach('run record', serializeRunRecord(record), 'application/json');
}

export function serializeRunRecord(r: RunRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

const outcome = z.enum(OUTCOMES);
// What replay and readers rely on is checked; the rest (events, transcript …) is kept as it is.
const recordSchema = z.looseObject({
  format: z.literal(RUN_RECORD_FORMAT),
  version: z.literal(RUN_RECORD_VERSION),
  flow: z.enum(['proxy', 'dut']),
  mode: z.enum(['proxy', 'dut']).optional(),
  startedAt: z.string(),
  station: z.looseObject({ name: z.string(), config: z.looseObject({ kind: z.enum(['virtual', 'hardware']) }).optional() }),
  plan: z.looseObject({ id: z.string(), component: z.string(), targetVersion: z.string() }),
  spec: z.looseObject({
    component: z.string(),
    package: z.string(),
    minBattery: z.number().optional(),
    minSignal: z.number().optional(),
    whitelist: z.array(z.string()).optional(),
    blacklist: z.array(z.string()).optional(),
    pushActively: z.boolean().optional(),
    rejectionPeriodMinutes: z.number().optional(),
  }),
  package: z.looseObject({ name: z.string(), sha256: z.string() }),
  current: z.looseObject({ version: z.string(), sha256: z.string() }),
  options: z.looseObject({
    battery: z.number(),
    blockSize: z.number().int().positive(),
    crcAlgorithm: z.string(),
    crcRequested: z.string().optional(),
    expect: z.array(outcome).min(1),
    maxRecoveries: z.number().int().nonnegative(),
  }),
  faults: z.array(z.string()),
  cloudFaults: z.array(z.looseObject({ kind: z.string(), params: z.record(z.string(), z.unknown()).optional() })),
  verdict: z.looseObject({ outcome: outcome.optional().nullable(), ok: z.boolean() }),
  firmware: z
    .object({
      package: z.looseObject({ info: z.looseObject({ name: z.string(), type: z.enum(['full', 'delta']), version: z.string() }), base64: z.base64() }).optional(),
      current: z.looseObject({ component: z.string(), version: z.string(), base64: z.base64() }).optional(),
      bootloader: z.looseObject({ component: z.string(), version: z.string(), base64: z.base64() }).optional(),
    })
    .optional(),
});

/** Parses a run record written by serializeRunRecord; a ConfigError names the first field that is wrong. */
export function parseRunRecord(text: string, origin = 'run record'): RunRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${origin} is not JSON`, { expected: 'a run record written by rig upgrade or the suites', seen: (cause as Error).message, cause });
  }
  const r = recordSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(`${origin} is not a ${RUN_RECORD_FORMAT} v${RUN_RECORD_VERSION}`, {
      expected: `${issue.path.join('.') || 'the record'}: ${issue.message}`,
      seen: JSON.stringify(issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown> | undefined)?.[k as PropertyKey], raw))?.slice(0, 80) ?? 'nothing',
    });
  }
  return raw as RunRecord;
}
