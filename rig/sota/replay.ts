// `rig repro`: the same upgrade again — same package, same starting image, same MCU readings, same fault
// schedule — on any station, virtual or real, and whether it ends the same way. Only the station differs, so
// a verdict that changes points at the station (or at flakiness), not at the recipe.
import { ConfigError } from '../errors.ts';
import { loadManifest } from '../images/manifest.ts';
import type { FirmwareSet } from '../images/manifest.ts';
import type { Station, UpgradeSpec } from '../station/station.ts';
import { ensureBaseline } from './baseline.ts';
import { parseFault } from './faults.ts';
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
  same: boolean;
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

export async function replay(record: RunRecord, station: Station, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const firmware = opts.firmware ?? (await loadManifest());
  const pkg = firmware.package(record.spec.package);
  if (pkg.sha256 !== record.package.sha256) {
    throw new ConfigError(`package ${pkg.name} is not the one the record used`, {
      station: station.name,
      expected: `sha256 ${record.package.sha256} (from the record)`,
      seen: `sha256 ${pkg.sha256} in ${firmware.manifestPath}`,
    });
  }
  const current = firmware.image(record.current.version);
  if (current.sha256 !== record.current.sha256) {
    throw new ConfigError(`image ${current.version} is not the one the record started from`, {
      station: station.name,
      expected: `sha256 ${record.current.sha256} (from the record)`,
      seen: `sha256 ${current.sha256} in ${firmware.manifestPath}`,
    });
  }
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
    crcAlgorithm: record.options.crcAlgorithm,
    expect: record.options.expect,
    maxRecoveries: record.options.maxRecoveries,
    ...common,
  });
  const same = sameVerdict(record.verdict, run.verdict);
  return { same, comparison: `${verdictLabel(record.verdict)} → ${verdictLabel(run.verdict)}`, original: record.verdict, replayed: run.verdict, record: run };
}
