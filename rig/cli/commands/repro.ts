// `rig repro <run-record.json> [--station …]`: rig/sota's replay on a station, and whether the verdict is
// the same (exit 0) or not (exit 1).
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../config/load.ts';
import { parseRunRecord } from '../../sota/record.ts';
import { replay } from '../../sota/replay.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, paint, parse, UsageError } from '../output.ts';
import { CliRecorder } from '../progress.ts';
import { describeRun, watchDownload, writeRecord } from '../runs.ts';
import { runCommand, withStation } from '../station.ts';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, station: { type: 'string' }, record: { type: 'string', short: 'o' } });
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
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    const name = values.station ?? (Object.hasOwn(config.stations, record.station.name) ? record.station.name : 'virtual');
    const recorder = new CliRecorder({ quiet: json });
    if (!json) recorder.line(`replaying ${file} (${record.station.name}, ${record.spec.package}${record.faults.length ? `, faults ${record.faults.join(' ')}` : ''}) on ${name}`);
    return withStation(name, { loaded: config, recorder }, async ({ station, signal }) => {
      const unwatch = watchDownload(station, recorder);
      const result = await replay(record, station, { signal, recorder }).finally(unwatch);
      recorder.stopBar();
      const out = writeRecord(result.record, values.record, 'repro');
      // Same verdict or not, a fault that fired then and not now means the disturbance was not reproduced.
      const notReproduced = (record.fired ?? []).map((f) => f.fault).filter((f) => !result.record.fired.some((x) => x.fault === f));
      const note =
        notReproduced.length > 0
          ? `fault${notReproduced.length > 1 ? 's' : ''} ${notReproduced.join(', ')} fired in the recorded run but not in this one: its trigger did not come on ${station.name} (timing differs: download rate, time scale), so the disturbance was not reproduced`
          : undefined;
      if (json) {
        process.stdout.write(`${JSON.stringify({ same: result.same, comparison: result.comparison, original: result.original, replayed: result.replayed, station: station.name, record: out, notReproduced }, null, 2)}\n`);
      } else {
        const p = paint(process.stdout);
        process.stdout.write(`${describeRun(result.record, out, p)}\n${note ? `${p.yellow(`note: ${note}`)}\n` : ''}${result.same ? p.green('SAME verdict') : p.red('DIFFERENT verdict')}: ${result.comparison}\n`);
      }
      return result.same ? ExitCode.ok : ExitCode.failure;
    });
  });
}
