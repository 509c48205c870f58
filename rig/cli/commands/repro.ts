// `rig repro <run-record.json> [--station …]`: rig/sota's replay on a station, and whether it ends the same
// way (exit 0), with another verdict (1), or with the same verdict but a recorded fault that did not fire (3).
import { readFile } from 'node:fs/promises';
import { parseOrThrow } from '../../config/issues.ts';
import { loadConfig, type LoadedConfig } from '../../config/load.ts';
import { virtualStationSchema } from '../../config/schema.ts';
import { parseRunRecord, recordedVirtualSettings, type RunRecord } from '../../sota/record.ts';
import { parseFault } from '../../sota/faults.ts';
import { recordFirmware, replay, sameVerdict } from '../../sota/replay.ts';
import { checkRunBeforeOpening } from '../../station/preflight.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, paint, parse, UsageError } from '../output.ts';
import { CliRecorder } from '../progress.ts';
import { describeRun, watchDownload, writeRecord } from '../runs.ts';
import { withVirtualMcu } from '../../station/virtual.ts';
import { attachFile, runCommand, withStation } from '../station.ts';

/**
 * The config with the record's virtual settings over station `name`'s own, when both are virtual: fault
 * triggers such as "the n-th 10702" or a byte offset come at the moments they came in the record only at
 * the same time scale, download rate and free space. A hardware station keeps its own entry.
 */
export function withRecordedSettings(config: LoadedConfig, name: string, record: Pick<RunRecord, 'station'>, origin: string): { config: LoadedConfig; applied: string[] } {
  const entry = Object.hasOwn(config.stations, name) ? config.stations[name] : undefined;
  const settings = recordedVirtualSettings(record);
  const applied = Object.keys(settings);
  if (entry?.kind !== 'virtual' || applied.length === 0) return { config, applied: [] };
  const merged = parseOrThrow(virtualStationSchema, { ...entry, ...settings }, `${origin} (station.config applied to ${name})`);
  return { config: { ...config, stations: { ...config.stations, [name]: merged } }, applied };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, station: { type: 'string' }, 'own-settings': { type: 'boolean' }, record: { type: 'string', short: 'o' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const file = positionals[0];
    if (file === undefined || positionals.length > 1) throw new UsageError('rig repro: which run record?', { expected: 'rig repro <run-record.json> [--station <name>]', seen: positionals.join(' ') || 'nothing' });
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read run record ${file}`, { expected: 'a run record written by rig upgrade or the suites', seen: (err as Error).message });
    }
    const record = parseRunRecord(text, file);
    const loaded = await loadConfig(values.config === undefined ? {} : { path: values.config });
    const name = values.station ?? (Object.hasOwn(loaded.stations, record.station.name) ? record.station.name : 'virtual');
    // A running sim (rig sim) keeps the settings it was started with: the record's cannot be applied to it.
    const attached = attachFile(name, loaded, values.attach) !== undefined;
    const { config, applied } = values['own-settings'] === true || attached ? { config: loaded, applied: [] } : withRecordedSettings(loaded, name, record, file);
    if (attached && !json && values['own-settings'] !== true) process.stderr.write(`note: attached to a running virtual station: it replays with the settings rig sim started it with, not the record's\n`);
    // What the record asks of the station, checked before it opens: its faults, its cloud faults, its package's plan.
    const entry = Object.hasOwn(config.stations, name) ? config.stations[name] : undefined;
    if (entry) {
      const { pkg } = await recordFirmware(record, name);
      checkRunBeforeOpening(name, entry, { pkg, byDeclaredPlan: false, faults: record.faults.map((f) => parseFault(f)), cloudFaults: record.cloudFaults, console: record.flow === 'dut' });
    }
    const recorder = new CliRecorder({ quiet: json });
    if (!json) {
      recorder.line(`replaying ${file} (${record.station.name}, ${record.spec.package}${record.faults.length ? `, faults ${record.faults.join(' ')}` : ''}) on ${name}`);
      if (applied.length > 0) recorder.line(`  with the record's virtual settings: ${applied.map((k) => `${k}=${JSON.stringify(config.stations[name]![k as keyof typeof config.stations[string]])}`).join(' ')} (--own-settings to keep the station's)`);
    }
    // A dut record replays on a virtual station with its virtual MCU, even with the station's own settings.
    const forMode = (record.mode ?? record.flow) === 'dut' ? withVirtualMcu(config, name) : config;
    return withStation(name, { loaded: forMode, recorder, attach: values.attach }, async ({ station, signal }) => {
      const unwatch = watchDownload(station, recorder);
      const result = await replay(record, station, { signal, recorder }).finally(unwatch);
      recorder.stopBar();
      const out = writeRecord(result.record, values.record, 'repro');
      const verdictSame = sameVerdict(result.original, result.replayed);
      const { notReproduced } = result;
      const note =
        notReproduced.length > 0
          ? `fault${notReproduced.length > 1 ? 's' : ''} ${notReproduced.join(', ')} fired in the recorded run but not in this one: its trigger did not come on ${station.name} (timing differs: download rate, time scale), so the disturbance was not reproduced`
          : undefined;
      if (json) {
        process.stdout.write(`${JSON.stringify({ same: result.same, sameVerdict: verdictSame, comparison: result.comparison, original: result.original, replayed: result.replayed, station: station.name, record: out, notReproduced, appliedSettings: applied }, null, 2)}\n`);
      } else {
        const p = paint(process.stdout);
        const head = !verdictSame ? p.red('DIFFERENT verdict') : notReproduced.length > 0 ? p.red('NOT REPRODUCED (same verdict, recorded fault did not fire)') : p.green('SAME verdict');
        process.stdout.write(`${describeRun(result.record, out, p)}\n${note ? `${p.yellow(`note: ${note}`)}\n` : ''}${head}: ${result.comparison}\n`);
      }
      if (!verdictSame) return ExitCode.failure;
      return notReproduced.length > 0 ? ExitCode.faultNotFired : ExitCode.ok;
    });
  });
}
