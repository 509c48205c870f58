#!/usr/bin/env -S npx tsx
// npm run nightly [-- --stations a,b] [--with-virtual] [--timeout 90m] [--heartbeat 60s] [--keep-results] [--no-report] [--dry-run]
//
// The nightly regression: the SOTA suites on every configured station at once, one vitest process per
// station (RIG_STATION=<name> vitest run --project suites), then one Allure report in which each station
// is an environment (the suites label every result with its station). Each station's output goes to the
// terminal prefixed with its name and to reports/runs/nightly-<time>/<station>.log. The exit code is 0 only
// when every station passed and the report was built; 1 when tests failed; 69 when a station's run could
// not complete (vitest crashed or hit --timeout); 64 for a bad command line; 2 for an invalid config.
// When the config has hardware stations, the virtual ones are left out unless --with-virtual (or --stations)
// names them: each virtual station runs a simulator per suite file, and on a Pi those compete for the CPU
// with the hardware runs, whose timing is what the night is measuring.
// Runs under tsx (like report.mjs) so that it reads the station list through rig/config itself.
import { $, chalk, fs, minimist, path } from 'zx';
import { loadConfig } from '../rig/config/index.ts';
import { PROGRESS_MARK } from './nightly-progress.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['stations', 'timeout', 'config', 'heartbeat'],
  boolean: ['help', 'keep-results', 'report', 'with-virtual', 'dry-run'],
  default: { report: true, timeout: '90m', heartbeat: '60s' },
  unknown: (a) => (a.startsWith('-') ? usage(`unknown option ${a}`) : true),
});

function usage(message) {
  if (message) console.error(`nightly: ${message}`);
  console.error(`usage: npm run nightly -- [--stations a,b] [--with-virtual] [--timeout 90m] [--heartbeat 60s] [--config <file>]
                         [--keep-results] [--no-report] [--dry-run]
  default: every station of the config, results cleared first; with hardware stations configured, the virtual
  ones only with --with-virtual. --dry-run prints the stations that would run and stops. --heartbeat: a line
  saying what each station is doing whenever nothing was printed for that long.`);
  process.exit(message ? 64 : 0);
}
if (args.help) usage();
if (!/^\d+(ms|s|m)$/.test(args.timeout)) usage(`--timeout: expected a duration like 90m, seen ${args.timeout}`);
if (!/^\d+(ms|s|m)$/.test(args.heartbeat)) usage(`--heartbeat: expected a duration like 60s, seen ${args.heartbeat}`);
const ms = (d) => Number(/^\d+/.exec(d)[0]) * { ms: 1, s: 1000, m: 60_000 }[/[a-z]+$/.exec(d)[0]];

// 1. Which stations.
let config;
try {
  config = await loadConfig({ cwd: root, ...(args.config ? { path: path.resolve(process.env.INIT_CWD ?? process.cwd(), args.config) } : {}) });
} catch (err) {
  console.error(`nightly: ${err.message}`);
  process.exit(err.kind === 'config' ? 2 : 70);
}
const all = Object.keys(config.stations);
const virtual = all.filter((s) => config.stations[s].kind === 'virtual');
const hardware = all.filter((s) => !virtual.includes(s));
const left = hardware.length > 0 && !args['with-virtual'] ? virtual : [];
const stations = args.stations ? String(args.stations).split(',').map((s) => s.trim()).filter(Boolean) : all.filter((s) => !left.includes(s));
const unknown = stations.filter((s) => !all.includes(s));
if (unknown.length > 0) usage(`no station ${unknown.join(', ')} in ${config.source ?? 'the built-in config'} (have: ${all.join(', ')})`);
if (!args.stations && left.length > 0) console.log(`nightly: leaving out ${left.join(', ')} (virtual; --with-virtual runs them beside the hardware)`);
if (args['dry-run']) {
  console.log(`nightly: would run ${stations.join(', ')}`);
  process.exit(0);
}

// 2. A fresh results directory, so the report shows tonight's run only (history is kept apart).
const results = path.join(root, 'reports', 'allure-results');
if (!args['keep-results']) await fs.emptyDir(results);
const logDir = path.join(root, 'reports', 'runs', `nightly-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(logDir);
console.log(`nightly: ${stations.length} station(s) in parallel: ${stations.join(', ')}; logs in ${path.relative(root, logDir)}`);

// 3. One vitest process per station, in parallel; plain text, since it goes to log files too.
function withoutColor(env) {
  const { FORCE_COLOR: _force, ...rest } = env;
  return rest;
}
const width = Math.max(...stations.map((s) => s.length));
const t0 = Date.now();
const clock = (at = Date.now()) => {
  const sec = Math.round((at - t0) / 1000);
  return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`;
};

// What each station is doing, from the progress lines of scripts/nightly-progress.ts (RIG_PROGRESS=1): a
// heartbeat says so whenever the run printed nothing for --heartbeat, since vitest writing to a pipe stays
// silent until a whole suite file is done.
const progress = new Map(stations.map((s) => [s, { passed: 0, failed: 0, skipped: 0, running: new Map() }]));
let lastPrinted = Date.now();
const print = (text) => {
  process.stdout.write(text);
  lastPrinted = Date.now();
};
function onProgress(station, json) {
  let e;
  try {
    e = JSON.parse(json);
  } catch {
    return;
  }
  const p = progress.get(station);
  if (e.event === 'start') p.running.set(e.test, Date.now());
  if (e.event === 'end') {
    p.running.delete(e.test);
    if (e.state === 'passed') p.passed++;
    else if (e.state === 'failed') p.failed++;
    else p.skipped++;
  }
}
function heartbeat() {
  const parts = stations.map((s) => {
    const p = progress.get(s);
    const done = `${p.passed + p.failed} done (${p.passed} passed${p.failed ? `, ${p.failed} failed` : ''})`;
    const [test, since] = [...p.running].sort((a, b) => a[1] - b[1])[0] ?? [];
    return `${s}: ${done}${test ? `, running "${test}" for ${Math.round((Date.now() - since) / 1000)} s` : ''}`;
  });
  print(`nightly: ${clock()} — ${parts.join('; ')}\n`);
}
const beat = setInterval(() => {
  if (Date.now() - lastPrinted >= ms(args.heartbeat)) heartbeat();
}, Math.min(ms(args.heartbeat), 5_000));
beat.unref();

const runs = await Promise.all(
  stations.map(async (station) => {
    const log = fs.createWriteStream(path.join(logDir, `${station}.log`));
    const tag = chalk.cyan(`[${station.padEnd(width)}]`);
    const env = { ...withoutColor(process.env), RIG_STATION: station, RIG_PROGRESS: '1', NO_COLOR: '1', ...(args.config ? { RIG_CONFIG: path.resolve(process.env.INIT_CWD ?? process.cwd(), args.config) } : {}) };
    const started = Date.now();
    const p = $({ cwd: root, env, nothrow: true, quiet: true })`npx vitest run --project suites`.timeout(args.timeout, 'SIGTERM');
    let rest = '';
    const onData = (chunk) => {
      log.write(chunk);
      const text = rest + chunk.toString();
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith(PROGRESS_MARK)) onProgress(station, line.slice(PROGRESS_MARK.length));
        else print(`${tag} ${line}\n`);
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    const out = await p;
    if (rest) print(`${tag} ${rest}\n`);
    await new Promise((resolve) => log.end(resolve));
    const text = out.stdout + out.stderr;
    const count = (what) => Number(new RegExp(`Tests\\s+.*?(\\d+) ${what}`).exec(text)?.[1] ?? 0);
    return { station, exitCode: out.exitCode, signal: out.signal, passed: count('passed'), failed: count('failed'), seconds: Math.round((Date.now() - started) / 1000) };
  }),
);
clearInterval(beat);

// 4. The report, whatever the tests said: a failing night is exactly when it is needed.
let reportOk = true;
if (args.report) {
  const r = await $({ cwd: root, nothrow: true, stdio: 'inherit' })`npx tsx scripts/report.mjs`;
  reportOk = r.exitCode === 0;
}

// 5. The summary and the exit code.
const rows = runs.map((r) => {
  const state = r.exitCode === 0 ? chalk.green('passed') : r.exitCode === 1 ? chalk.red('failed') : chalk.yellow(r.signal ? `stopped (${r.signal}, --timeout ${args.timeout}?)` : `error (exit ${r.exitCode})`);
  return `  ${r.station.padEnd(width)}  ${state}  ${r.passed} passed, ${r.failed} failed  ${r.seconds} s`;
});
console.log(`\nnightly: ${Math.round((Date.now() - t0) / 1000)} s\n${rows.join('\n')}${args.report ? `\n  report: ${reportOk ? 'reports/allure-report/index.html' : chalk.red('not built (see above)')}` : ''}`);
const incomplete = runs.some((r) => r.exitCode !== 0 && r.exitCode !== 1);
const failed = runs.some((r) => r.exitCode === 1);
process.exitCode = incomplete || !reportOk ? 69 : failed ? 1 : 0;
