// `rig power <station> <line> on|off|cycle`: one power or reset line, by its config name, read back after.
// `rig power <station> safe`: every line to its safe level and no OpenOCD left for the probe, without
// opening the module or the probe (a CI job's clean-up step, rig/station/safe.ts).
import { cycle } from '../../power/line.ts';
import { makeSafe } from '../../station/safe.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, intOption, paint, parse, UsageError } from '../output.ts';
import { loadConfig } from '../../config/load.ts';
import { VIRTUAL_LINES } from '../../station/virtual.ts';
import { checkStationName, requireStationName, runCommand, withInterrupt, withStation } from '../station.ts';
import { didYouMean } from '../suggest.ts';

const ACTIONS = ['on', 'off', 'cycle'] as const;
type Action = (typeof ACTIONS)[number];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, 'off-ms': { type: 'string' }, hold: { type: 'boolean' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const name = requireStationName(positionals[0], 'power');
    if (positionals[1] === 'safe' && positionals.length === 2) return safe(name, values.config, json);
    const lineName = positionals[1];
    const action = positionals[2] as Action | undefined;
    if (lineName === undefined || action === undefined || positionals.length > 3) {
      throw new UsageError('rig power: expected a line and an action', { expected: 'rig power <station> <line> on|off|cycle, or rig power <station> safe', seen: `rig power ${positionals.join(' ')}` });
    }
    // The word that is wrong, named, with what was probably meant.
    if (!ACTIONS.includes(action)) {
      throw new UsageError(`rig power: unknown action '${action}'${didYouMean(action, ACTIONS)}`, { expected: ACTIONS.join(', '), seen: action });
    }
    const offMs = intOption('off-ms', values['off-ms'], 2000, 0, 600_000);
    // A mistyped line must not start a simulator or switch anything: the config names every line.
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    checkStationName(name, config);
    const entry = config.stations[name]!;
    const lines: readonly string[] = entry.kind === 'virtual' ? VIRTUAL_LINES : Object.keys(entry.power.lines);
    if (!lines.includes(lineName)) {
      throw new UsageError(`no power line "${lineName}"${didYouMean(lineName, lines)}`, { station: name, expected: `one of ${lines.join(', ') || '(no lines configured)'}`, seen: lineName });
    }
    // Lines only: no OpenOCD (a target held in reset or unpowered is what this command is for).
    return withStation(name, { loaded: config, attach: values.attach, probe: false }, async ({ station, signal }) => {
      const have = [...station.power.lines.lines.keys()];
      if (!have.includes(lineName)) {
        throw new UsageError(`no power line "${lineName}"${didYouMean(lineName, have)}`, { station: station.name, expected: `one of ${have.join(', ') || '(no lines configured)'}`, seen: lineName });
      }
      const line = station.power.lines.line(lineName);
      const t0 = performance.now();
      if (action === 'cycle') await cycle(line, offMs, { signal });
      else await line.set(action === 'on');
      const level = await line.get();
      const ms = Math.round(performance.now() - t0);
      if (json) process.stdout.write(`${JSON.stringify({ station: station.name, line: lineName, action, level: level ? 'on' : 'off', ms, ...(action === 'cycle' ? { offMs } : {}) })}\n`);
      else {
        const p = paint(process.stdout);
        process.stdout.write(`${station.name}/${lineName}: ${action === 'cycle' ? `cycled (off ${offMs} ms)` : `set ${action}`}, reads ${p.bold(level ? 'on' : 'off')} (${ms} ms)\n`);
      }
      if (values.hold && action !== 'cycle') {
        process.stderr.write(`holding ${lineName} ${action}; Ctrl-C returns the station to its safe state\n`);
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        return ExitCode.ok;
      }
      if (action !== 'cycle') process.stderr.write(paint(process.stderr).dim(`(${lineName} goes back to its configured safe level as rig exits; --hold keeps it ${action})\n`));
      return ExitCode.ok;
    });
  });
}

async function safe(name: string, configFile: string | undefined, json: boolean): Promise<number> {
  const config = await loadConfig(configFile === undefined ? {} : { path: configFile });
  checkStationName(name, config);
  const report = await withInterrupt((signal) => makeSafe(name, config.stations[name]!, { signal }));
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return ExitCode.ok;
  }
  const p = paint(process.stdout);
  if (report.note) process.stdout.write(`${name}: safe — ${report.note}\n`);
  for (const l of report.lines) process.stdout.write(`${name}/${l.name}: ${p.bold(l.level)} (its safe level)\n`);
  for (const o of report.openocd) process.stdout.write(`${name}: OpenOCD pid ${o.pid} left for this probe: ${o.how}\n`);
  if (report.kind === 'hardware') process.stdout.write(`${name}: safe — ${report.lines.length} line(s) at their safe level, ${report.openocd.length === 0 ? 'no OpenOCD running for its probe' : 'no OpenOCD left for its probe'}\n`);
  return ExitCode.ok;
}
