// `rig repro`: the same upgrade again — same package, same starting image, same MCU readings, same fault
// schedule — on any station, virtual or real, and whether it ends the same way. Only the station differs, so
// a verdict that changes points at the station (or at flakiness), not at the recipe.
import { ConfigError } from '../errors.ts';
import { sha256Hex } from '../images/digest.ts';
import { Image } from '../images/image.ts';
import { loadManifest } from '../images/manifest.ts';
import type { FirmwareSet } from '../images/manifest.ts';
import { Package } from '../images/package.ts';
import type { Station, UpgradeSpec } from '../station/station.ts';
import { ensureBaseline } from './baseline.ts';
import { parseFault } from './faults.ts';
import { runDutUpgrade } from './dut.ts';
import { runProxyUpgrade } from './proxy.ts';
import type { Recorder } from './recorder.ts';
import type { RunRecord } from './record.ts';
import type { Verdict } from './verdict.ts';

export interface ReplayOptions {
  /** Where the record's package and image come from; default fixtures/manifest.json. */
  firmware?: FirmwareSet;
  signal?: AbortSignal;
  recorder?: Recorder;
}

export interface ReplayResult {
  /** Same verdict, and every fault that fired in the record fired again. */
  same: boolean;
  /** Faults that fired in the recorded run and not in this one: the disturbance was not reproduced. */
  notReproduced: string[];
  /** "upgraded → upgraded", "failed-intact (module-failed) → failure (timeout)". */
  comparison: string;
  original: Verdict;
  replayed: Verdict;
  record: RunRecord;
}

/** Two verdicts are the same when outcome, reason and failure type agree (messages and times may differ). */
export function sameVerdict(a: Verdict, b: Verdict): boolean {
  return (a.outcome ?? null) === (b.outcome ?? null) && (a.reason ?? null) === (b.reason ?? null) && (a.failure?.type ?? null) === (b.failure?.type ?? null);
}

export function verdictLabel(v: Verdict): string {
  if (v.failure) return `failure (${v.failure.type})`;
  return v.reason && v.reason !== 'refused' ? `${v.outcome} (${v.reason})` : String(v.outcome);
}

/** Faults that fired in `recorded` and not in `replayed`. */
export function faultsNotReproduced(recorded: Pick<RunRecord, 'fired'>, replayed: Pick<RunRecord, 'fired'>): string[] {
  return [...new Set((recorded.fired ?? []).map((f) => f.fault))].filter((f) => !replayed.fired.some((x) => x.fault === f));
}

function embedded(base64: string, what: string, sha256: string, station: string): Uint8Array {
  const bytes = new Uint8Array(Buffer.from(base64, 'base64'));
  const seen = sha256Hex(bytes);
  if (seen !== sha256) throw new ConfigError(`the record's embedded ${what} is damaged`, { station, expected: `sha256 ${sha256} (from the record)`, seen: `sha256 ${seen}` });
  return bytes;
}

/**
 * The record's package and starting image: its embedded bytes when it has them (a suite's temporary build),
 * else the manifest's files; either way they must hash to what the record says.
 */
export async function recordFirmware(record: RunRecord, stationName: string, firmware?: FirmwareSet): Promise<{ pkg: Package; current: Image; set: FirmwareSet | undefined }> {
  const emb = record.firmware;
  const set = emb?.package && emb.current ? undefined : (firmware ?? (await loadManifest()));
  let pkg: Package;
  if (emb?.package) pkg = new Package(embedded(emb.package.base64, `package ${record.package.name}`, record.package.sha256, stationName), emb.package.info);
  else {
    pkg = set!.package(record.spec.package);
    if (pkg.sha256 !== record.package.sha256) {
      throw new ConfigError(`package ${pkg.name} is not the one the record used`, {
        station: stationName,
        expected: `sha256 ${record.package.sha256} (from the record)`,
        seen: `sha256 ${pkg.sha256} in ${set!.manifestPath}`,
      });
    }
  }
  let current: Image;
  if (emb?.current) current = new Image(embedded(emb.current.base64, `image ${record.current.version}`, record.current.sha256, stationName), emb.current);
  else {
    current = set!.image(record.current.version);
    if (current.sha256 !== record.current.sha256) {
      throw new ConfigError(`image ${current.version} is not the one the record started from`, {
        station: stationName,
        expected: `sha256 ${record.current.sha256} (from the record)`,
        seen: `sha256 ${current.sha256} in ${set!.manifestPath}`,
      });
    }
  }
  return { pkg, current, set };
}

export async function replay(record: RunRecord, station: Station, opts: ReplayOptions = {}): Promise<ReplayResult> {
  if ((record.mode ?? record.flow) === 'dut') return replayDut(record, station, opts);
  const { pkg, current, set } = await recordFirmware(record, station.name, opts.firmware);
  const firmware = set ?? opts.firmware;
  const { package: _name, ...rest } = record.spec;
  const spec: UpgradeSpec = { ...rest, package: pkg };
  const faults = record.faults.map(parseFault);
  const common = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.recorder ? { recorder: opts.recorder } : {}) };
  await ensureBaseline(station, current, common);
  const run = await runProxyUpgrade(station, {
    plan: spec,
    current,
    faults,
    cloudFaults: record.cloudFaults,
    battery: record.options.battery,
    blockSize: record.options.blockSize,
    ...replayCrc(record),
    expect: record.options.expect,
    maxRecoveries: record.options.maxRecoveries,
    // The replay's own record embeds what this set lacks, as the original did.
    ...(firmware ? { firmware } : {}),
    ...common,
  });
  const notReproduced = faultsNotReproduced(record, run);
  const same = sameVerdict(record.verdict, run.verdict) && notReproduced.length === 0;
  return { same, notReproduced, comparison: `${verdictLabel(record.verdict)} → ${verdictLabel(run.verdict)}`, original: record.verdict, replayed: run.verdict, record: run };
}

/**
 * A dut record again: the same package, starting release and bootloader (the record carries their bytes),
 * the same faults and bounds; the MCU under test does the rest, as it did.
 */
async function replayDut(record: RunRecord, station: Station, opts: ReplayOptions): Promise<ReplayResult> {
  const dut = record.dut;
  if (!dut) throw new ConfigError('a dut record without its dut part', { station: station.name, expected: 'record.dut (written by runDutUpgrade)', seen: 'none' });
  const { pkg, current } = await recordFirmware(record, station.name, opts.firmware);
  const emb = record.firmware?.bootloader;
  const bootloader = emb && dut.bootloader ? new Image(embedded(emb.base64, `bootloader ${dut.bootloader.version}`, dut.bootloader.sha256, station.name), emb) : undefined;
  if (dut.bootloader && !bootloader) throw new ConfigError('the record names a bootloader but does not carry it', { station: station.name, expected: `firmware.bootloader (${dut.bootloader.version})`, seen: 'none' });
  const { package: _name, ...rest } = record.spec;
  const run = await runDutUpgrade(station, {
    plan: { ...rest, package: pkg },
    from: current,
    ...(bootloader ? { bootloader } : {}),
    faults: record.faults.map(parseFault),
    cloudFaults: record.cloudFaults,
    expect: record.options.expect,
    reportWithinMs: dut.options.reportWithinMs,
    settleMs: dut.options.settleMs,
    consoleStart: new RegExp(dut.options.consoleStart),
    fresh: dut.options.fresh,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.recorder ? { recorder: opts.recorder } : {}),
  });
  const notReproduced = faultsNotReproduced(record, run);
  const same = sameVerdict(record.verdict, run.verdict) && notReproduced.length === 0;
  return { same, notReproduced, comparison: `${verdictLabel(record.verdict)} → ${verdictLabel(run.verdict)}`, original: record.verdict, replayed: run.verdict, record: run };
}

/**
 * Only an algorithm the original run asked for: otherwise the replaying station's plan source says how its
 * cloud computes the CRC. Records from before `crcRequested` (they have no `station.echo` either) always
 * checked with the one they name, so that one is kept.
 */
function replayCrc(record: RunRecord): { crcAlgorithm?: string } {
  if (record.options.crcRequested !== undefined) return { crcAlgorithm: record.options.crcRequested };
  if (record.station.echo === undefined) return { crcAlgorithm: record.options.crcAlgorithm };
  return {};
}
