// The `rig` command. The registry below holds each subcommand's name, summary and usage text; the module
// that runs it is imported only when it runs, so `rig --help` and `rig <command> --help` load nothing but
// this file and node:fs (no serialport, no OpenOCD driver, no zod). Exit codes are documented in the README.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { didYouMean } from './suggest.ts';
import { USAGE } from './usage.ts';

export interface Subcommand {
  run(argv: string[]): Promise<number>;
}

type Loader = () => Promise<Subcommand>;

/** Exit codes, documented in the README and in `rig --help`. */
export const ExitCode = {
  ok: 0,
  /** An upgrade verdict that is not the expected one, a doctor check that failed, a different repro. */
  failure: 1,
  configError: 2,
  /** A fault did not fire: one asked for with `rig upgrade --fault`, or one that fired in the record `rig repro` replayed. */
  faultNotFired: 3,
  usage: 64,
  infrastructure: 69,
  /** A sweep stopped by its --budget before its last point (EX_TEMPFAIL: resume it with --resume). */
  incomplete: 75,
  software: 70,
  /** Stopped by Ctrl-C (128 + SIGINT), after the station reached its safe state. */
  interrupted: 130,
} as const;

const subcommands = new Map<string, { summary: string; usage: string; load: Loader }>();

/** Registers a subcommand; the module behind it is imported only when the subcommand runs. */
export function registerSubcommand(name: string, summary: string, usage: string, load: Loader): void {
  subcommands.set(name, { summary, usage, load });
}

const command = (load: () => Promise<{ run(argv: string[]): Promise<number> }>): Loader => load;

registerSubcommand('doctor', 'check every part of a station and say what to fix', USAGE.doctor, command(() => import('./commands/doctor.ts')));
registerSubcommand('at', "the module's AT console (decoded +QIOTEVT, history), or one command", USAGE.at, command(() => import('./commands/at.ts')));
registerSubcommand('power', 'switch or cycle a power/reset line: on|off|cycle', USAGE.power, command(() => import('./commands/power.ts')));
registerSubcommand('flash', "program an image into the target's slot and verify it", USAGE.flash, command(() => import('./commands/flash.ts')));
registerSubcommand('readback', "read the target's flash (slot, whole flash, or a range) into a file", USAGE.readback, command(() => import('./commands/readback.ts')));
registerSubcommand('upgrade', 'run a SOTA upgrade (proxy flow) with live progress and faults; writes a run record', USAGE.upgrade, command(() => import('./commands/upgrade.ts')));
registerSubcommand('repro', 'replay a run record on a station and say whether the verdict is the same', USAGE.repro, command(() => import('./commands/repro.ts')));
registerSubcommand('sweep', 'power-fail and fault sweep: a fault at N moments of an upgrade, a verdict each, the failing window', USAGE.sweep, command(() => import('./commands/sweep.ts')));
registerSubcommand('inventory', "this host's stations and what each is, read live (IMEI, firmware, probe, IDCODE, last health)", USAGE.inventory, command(() => import('./commands/inventory.ts')));
registerSubcommand('sim', 'run the virtual station in the foreground (Ctrl-C stops it)', USAGE.sim, command(() => import('./commands/sim.ts')));
registerSubcommand('image', 'add a release (image, full and delta packages) to a manifest; identify or list images', USAGE.image, command(() => import('./commands/image.ts')));
registerSubcommand('report', 'build the Allure report (scripts/report.mjs)', USAGE.report, command(() => import('./commands/report.ts')));

/** The package root, whether this runs from rig/ (sources) or dist/rig/ (built). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function help(): string {
  const names = [...subcommands.keys()];
  const width = Math.max(8, ...names.map((n) => n.length));
  return [
    'rig — hardware-in-the-loop controller for QuecThing SOTA upgrades of STM32 targets',
    '',
    'Usage: rig <command> [options]        rig <command> --help for its options',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${subcommands.get(n)?.summary ?? ''}`),
    '',
    'Options of every station command:',
    '  --config <file>  the config (default: $RIG_CONFIG, else ./rig.config.ts|.mjs|.js|.json; `virtual` is built in)',
    '  --json           machine-readable result on stdout (progress stays on stderr)',
    '  --attach <file>  use the virtual station `rig sim` keeps running (default: $RIG_SIM) instead of starting one',
    '  -h, --help       this help, or a command\'s',
    '  -V, --version    the version',
    '',
    'Environment: NO_COLOR (no colours), RIG_CONFIG, RIG_MANIFEST (the releases), RIG_SIM (a running virtual',
    '             station, printed by rig sim), RIG_LOCK_DIR, RIG_NO_STALE_CHECK (no warning when dist/ is older',
    '             than the sources); progress bars only when stderr is a terminal.',
    'Exit codes: 0 ok, 1 failure (verdict, failed check, different repro), 2 config error, 3 a fault that',
    '            did not fire (upgrade --fault, or a recorded fault in repro), 64 usage error, 69 infrastructure',
    '            error, 70 internal error, 75 a sweep stopped by its --budget, 130 interrupted (Ctrl-C).',
  ].join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && subcommands.has(topic)) {
      process.stdout.write(`${subcommands.get(topic)!.usage}\n`);
      return ExitCode.ok;
    }
    (first === undefined ? process.stderr : process.stdout).write(help() + '\n');
    return first === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (first === '-V' || first === '--version') {
    process.stdout.write(version() + '\n');
    return ExitCode.ok;
  }
  const entry = subcommands.get(first);
  if (!entry) {
    const what = first.startsWith('-') ? 'option' : 'command';
    const hint = didYouMean(first, first.startsWith('-') ? ['--help', '--version', '-h', '-V'] : subcommands.keys());
    // With a likely meaning, one line says it; without, the list of commands is the answer.
    process.stderr.write(hint ? `rig: unknown ${what} '${first}'${hint}; rig --help lists them all\n` : `rig: unknown ${what} '${first}'\n\n${help()}\n`);
    return ExitCode.usage;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`${entry.usage}\n`);
    return ExitCode.ok;
  }
  try {
    const cmd = await entry.load();
    return await cmd.run(rest);
  } catch (err) {
    // Commands report their own errors; what reaches here is a bad command line (parsed before that) or a
    // module that failed to load (an internal error, 70).
    const { reportError } = await import('./output.ts');
    return reportError(err, { json: rest.includes('--json') });
  }
}
