// The `rig` command. Subcommands are loaded lazily so that `rig --help` and every subcommand start
// without importing the libraries they do not use (serialport, johnny-five, openocd driver…).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[]): Promise<number>;
}

type Loader = () => Promise<Subcommand>;

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  configError: 2,
  usage: 64,
  infrastructure: 69,
  software: 70,
} as const;

const subcommands: Record<string, { summary: string; load: Loader }> = {};

/** Registers a subcommand; the module behind it is imported only when the subcommand runs. */
export function registerSubcommand(name: string, summary: string, load: Loader): void {
  subcommands[name] = { summary, load };
}

/** The package root, whether this runs from rig/ (sources) or dist/rig/ (built). */
function packageRoot(): string {
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

function help(): string {
  const names = Object.keys(subcommands).sort();
  const width = Math.max(8, ...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(width)}  ${subcommands[n]?.summary ?? ''}`);
  return [
    'rig — hardware-in-the-loop controller for QuecThing SOTA upgrades of STM32 targets',
    '',
    'Usage: rig <command> [options]',
    '',
    'Commands:',
    ...(lines.length > 0 ? lines : ['  (none yet)']),
    '',
    'Options:',
    '  -h, --help     show this help (or `rig <command> --help`)',
    '  -V, --version  print the version',
    '',
    'Exit codes: 0 ok, 1 test/upgrade failure, 2 config error, 64 usage error, 69 infrastructure error.',
  ].join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(help() + '\n');
    return first === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (first === '-V' || first === '--version') {
    process.stdout.write(version() + '\n');
    return ExitCode.ok;
  }
  const entry = subcommands[first];
  if (!entry) {
    process.stderr.write(`rig: unknown command '${first}'\n\n${help()}\n`);
    return ExitCode.usage;
  }
  const cmd = await entry.load();
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`${cmd.usage}\n`);
    return ExitCode.ok;
  }
  return cmd.run(rest);
}
