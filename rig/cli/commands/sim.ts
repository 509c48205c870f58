// `rig sim`: the virtual station in the foreground. It runs sim/main (compiled, or the sources through tsx),
// prints where each part is, passes the sim's log through, and stops it on Ctrl-C (the sim closes its ptys,
// sockets and socat and exits 0).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InfrastructureError } from '../../errors.ts';
import { attachFileContent } from '../../station/virtual.ts';
import { ExitCode } from '../main.ts';
import { paint, parse, table } from '../output.ts';
import { runCommand } from '../station.ts';

interface SimInfo {
  admin?: { url: string };
  module?: { port: string; imei: string; baud: number };
  firmata?: { port: string; pins: Record<string, number>; contacts?: Record<string, string> };
  jtag?: { host: string; port: number; target: string; buspirate?: string };
}

function simEntry(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('../../../sim/main.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] };
  const ts = fileURLToPath(new URL('../../../sim/main.ts', import.meta.url));
  if (!existsSync(ts)) throw new InfrastructureError('the virtual station is not installed', { station: 'virtual', expected: `${js} or ${ts}`, seen: 'neither exists' });
  return { file: ts, execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] };
}

export function describeSim(info: SimInfo): string {
  const rows: string[][] = [];
  if (info.module) rows.push(['module AT port', info.module.port, `IMEI ${info.module.imei}, ${info.module.baud} baud`]);
  if (info.firmata) {
    const pins = Object.entries(info.firmata.pins).map(([rail, pin]) => `${rail}=pin ${pin}${info.firmata?.contacts?.[rail] ? ` (${info.firmata.contacts[rail]})` : ''}`);
    rows.push(['Firmata relay board', info.firmata.port, pins.join(', ')]);
  }
  if (info.jtag?.buspirate) rows.push(['STM32 (Bus Pirate)', info.jtag.buspirate, `${info.jtag.target}; openocd -c 'adapter driver buspirate; buspirate port ${info.jtag.buspirate}; transport select jtag' -f target/${info.jtag.target}.cfg`]);
  if (info.jtag) rows.push(['STM32 (remote_bitbang)', `${info.jtag.host}:${info.jtag.port}`, `${info.jtag.target}; openocd -c 'adapter driver remote_bitbang; remote_bitbang host ${info.jtag.host}; remote_bitbang port ${info.jtag.port}' -f target/${info.jtag.target}.cfg`]);
  if (info.admin) rows.push(['Developer Center admin API', info.admin.url, 'GET/POST /packages, /plans, /faults, /target; GET /devices, /module']);
  return table(['part', 'where', 'notes'], rows);
}

/** A flag's value in an argument list (`--x v` or `--x=v`). */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return undefined;
  const a = args[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
}

function runDirOf(args: readonly string[]): string {
  return path.resolve(flagValue(args, '--run-dir') ?? '.');
}

/** The time scale the sim runs at: an attached station's timeouts scale with it. */
function timeScaleOf(args: readonly string[]): number {
  const v = Number(flagValue(args, '--time-scale') ?? 1);
  return Number.isFinite(v) && v > 0 ? v : 1;
}

export async function run(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const passthrough = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values } = parse(own, { json: { type: 'boolean' }, target: { type: 'string' }, 'time-scale': { type: 'string' }, 'flash-image': { type: 'string' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const args = [...passthrough];
    // The run directory holds the ptys and the attach file other commands find the station by (RIG_SIM).
    const own = !passthrough.some((a) => a === '--run-dir' || a.startsWith('--run-dir='));
    const runDir = own ? mkdtempSync(path.join(os.tmpdir(), 'sota-rig-sim-')) : runDirOf(passthrough);
    if (own) args.push('--run-dir', runDir, '--remove-run-dir');
    const attachPath = path.join(runDir, 'station.json');
    if (values.target) args.push('--target', values.target);
    if (values['time-scale']) args.push('--time-scale', values['time-scale']);
    if (values['flash-image']) args.push('--flash-image', values['flash-image']);
    const { file, execArgv } = simEntry();
    const child = spawn(process.execPath, [...execArgv, file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const p = paint(process.stdout);
    // Ctrl-C in a terminal reaches the sim too (same process group); a signal sent to rig alone is passed
    // on. The sim stops once however often it is told.
    const forward = (sig: NodeJS.Signals): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    process.on('SIGHUP', forward);
    let first = true;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!first) {
        process.stdout.write(`${line}\n`);
        return;
      }
      first = false;
      let info: SimInfo;
      try {
        info = JSON.parse(line) as SimInfo;
      } catch {
        process.stdout.write(`${line}\n`);
        return;
      }
      // Other commands attach to this station through the file (RIG_SIM=…, or --attach …).
      writeFileSync(attachPath, `${JSON.stringify(attachFileContent(child.pid!, timeScaleOf(args), info), null, 2)}\n`);
      if (json) {
        process.stdout.write(`${line}\n`);
        return;
      }
      process.stdout.write(
        `${p.bold('virtual station ready')}\n${describeSim(info)}\n\n` +
          `Other rig commands use this station instead of starting their own (flash, module state and plans carry\nfrom one to the next) with --attach ${attachPath}, or after:\n  ${p.bold(`export RIG_SIM=${attachPath}`)}\n` +
          `${p.dim('Ctrl-C stops it. Its log follows.')}\n`,
      );
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (err) => reject(new InfrastructureError(`could not start the simulator: ${err.message}`, { station: 'virtual', cause: err })));
      child.once('close', (c, sig) => resolve(sig ? null : c));
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, forward);
    if (code === 0) return ExitCode.ok;
    if (code === 64) return ExitCode.usage;
    return ExitCode.infrastructure;
  }, { ownSignals: true });
}
