#!/usr/bin/env -S npx tsx
// npm run nightly [-- --stations a,b] [--with-virtual] [--shard i/n] [--rerun-failed <report or results dir>]
//                    [--file <suite file>]... [--test <name pattern>] [--no-health] [--results <dir>]
//                    [--log-dir <dir>] [--timeout 90m] [--heartbeat 60s] [--config <file>] [--keep-results]
//                    [--no-report] [--dry-run]
//
// The nightly regression: every configured station at once, one process per station. Each station first
// runs the short health suite (suites/health: AT, registration, probe examine, power cycle); a station
// that fails it is broken infrastructure for the night and its suites are not run (LAVA's health-check
// rule), the others run the SOTA suites (RIG_STATION=<name> vitest run --project suites). Then one Allure
// report in which each station is an environment. Each station's output goes to the terminal prefixed with
// its name and to <log dir>/<station>.log; a heartbeat says what each station is doing whenever nothing was
// printed for --heartbeat; <log dir>/summary.json says how each station did.
//
// --shard i/n runs the i-th of n parts of the suite files (vitest's --shard) on each station, for a farm
// that splits the suites over several identical stations; --rerun-failed runs only the tests that failed in
// a report or results directory, on the stations they failed on (those this host has); --file and --test
// narrow the suites to some files and to the tests whose full name matches a pattern (vitest's -t).
//
// Exit code: 0 every station healthy and passed and the report built; 1 tests failed; 69 a station failed
// its health check, a station's run did not complete (vitest crashed or hit --timeout), or no report;
// 64 a bad command line; 2 an invalid config.
// When the config has hardware stations, the virtual ones are left out unless --with-virtual (or --stations)
// names them: each virtual station runs a simulator per suite file, and on a Pi those compete for the CPU
// with the hardware runs, whose timing is what the night is measuring.
// Runs under tsx (like report.mjs) so that it reads the station list through rig/config itself.
import { $, chalk, fs, minimist, path } from 'zx';
import { loadConfig } from '../rig/config/index.ts';
import { hostName } from '../rig/station/inventory.ts';
import { failedTests, namePattern } from './report-lib/failed.ts';
import { PROGRESS_MARK } from './nightly-progress.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['stations', 'timeout', 'config', 'heartbeat', 'shard', 'rerun-failed', 'results', 'log-dir', 'file', 'test'],
  boolean: ['help', 'keep-results', 'report', 'with-virtual', 'dry-run', 'health'],
  default: { report: true, health: true, timeout: '90m', heartbeat: '60s' },
  unknown: (a) => (a.startsWith('-') ? usage(`unknown option ${a}`) : true),
});

function usage(message) {
  if (message) console.error(`nightly: ${message}`);
  console.error(`usage: npm run nightly -- [--stations a,b] [--with-virtual] [--shard i/n] [--rerun-failed <report or results dir>]
                         [--file <suite file>]... [--test <name pattern>] [--no-health] [--results <dir>]
                         [--log-dir <dir>] [--timeout 90m] [--heartbeat 60s] [--config <file>] [--keep-results]
                         [--no-report] [--dry-run]
  default: every station of the config, results cleared first; with hardware stations configured, the virtual
  ones only with --with-virtual. Each station runs the health suite first and, if it passes, the SOTA suites.
  --dry-run prints what would run and stops. --heartbeat: a line saying what each station is doing whenever
  nothing was printed for that long.`);
  process.exit(message ? 64 : 0);
}
if (args.help) usage();
const DURATION = /^\d+(ms|s|m)$/;
if (!DURATION.test(args.timeout)) usage(`--timeout: expected a duration like 90m, seen ${args.timeout}`);
if (!DURATION.test(args.heartbeat)) usage(`--heartbeat: expected a duration like 60s, seen ${args.heartbeat}`);
const ms = (d) => Number(/^\d+/.exec(d)[0]) * { ms: 1, s: 1000, m: 60_000 }[/[a-z]+$/.exec(d)[0]];
let shard;
if (args.shard !== undefined) {
  const m = /^(\d+)\/(\d+)$/.exec(args.shard);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) usage(`--shard: expected i/n with 1 ≤ i ≤ n (e.g. 2/3), seen ${args.shard}`);
  shard = args.shard;
}
// Paths on the command line are the user's: npm runs scripts from the package root, and says where the
// user was in INIT_CWD.
const fromUser = (p) => path.resolve(process.env.INIT_CWD ?? process.cwd(), p);

// 1. Which stations.
let config;
try {
  config = await loadConfig({ cwd: root, ...(args.config ? { path: fromUser(args.config) } : {}) });
} catch (err) {
  console.error(`nightly: ${err.message}`);
  process.exit(err.kind === 'config' ? 2 : 70);
}
const all = Object.keys(config.stations);
const virtual = all.filter((s) => config.stations[s].kind === 'virtual');
const hardware = all.filter((s) => !virtual.includes(s));
const left = hardware.length > 0 && !args['with-virtual'] ? virtual : [];
let stations = args.stations ? String(args.stations).split(',').map((s) => s.trim()).filter(Boolean) : all.filter((s) => !left.includes(s));
const unknown = stations.filter((s) => !all.includes(s));
if (unknown.length > 0) usage(`no station ${unknown.join(', ')} in ${config.source ?? 'the built-in config'} (have: ${all.join(', ')})`);
if (!args.stations && left.length > 0) console.log(`nightly: leaving out ${left.join(', ')} (virtual; --with-virtual runs them beside the hardware)`);

// 2. With --rerun-failed: only the tests that failed, on the stations (of this host) they failed on.
let rerun;
if (args['rerun-failed'] !== undefined) {
  const source = fromUser(args['rerun-failed']);
  let failed;
  try {
    failed = await failedTests(source);
  } catch (err) {
    usage(`--rerun-failed: ${err.message}`);
  }
  const host = hostName();
  rerun = new Map();
  const elsewhere = new Set();
  for (const f of failed) {
    if (f.station === undefined || !stations.includes(f.station) || (f.host !== undefined && f.host !== host)) {
      elsewhere.add(`${f.station ?? 'no station'}@${f.host ?? '?'}`);
      continue;
    }
    const r = rerun.get(f.station) ?? { files: new Set(), names: new Set() };
    r.files.add(f.file);
    r.names.add(f.name);
    rerun.set(f.station, r);
  }
  const count = [...rerun.values()].reduce((n, r) => n + r.names.size, 0);
  console.log(`nightly: ${failed.length} failed test(s) in ${path.relative(process.cwd(), source) || source}; ${count} on this host's stations (${host})${elsewhere.size > 0 ? `; not here: ${[...elsewhere].sort().join(', ')}` : ''}`);
  stations = stations.filter((s) => rerun.has(s));
  if (stations.length === 0) {
    console.log('nightly: nothing to rerun on this host');
    process.exit(0);
  }
}

const files = [].concat(args.file ?? []).map((f) => path.relative(root, fromUser(f)));
if (args.test !== undefined && rerun) usage('--test and --rerun-failed both choose tests: give one of them');
function suiteArgs(station) {
  const r = rerun?.get(station);
  // A shard may hold no file of a station's selection: that is not a failure.
  return [
    ...(shard ? ['--shard', shard, '--passWithNoTests'] : []),
    ...(r ? [...[...r.files].sort(), '-t', namePattern(r.names)] : files),
    ...(args.test !== undefined ? ['-t', args.test] : []),
  ];
}

if (args['dry-run']) {
  console.log(`nightly: would run ${stations.join(', ')}`);
  for (const s of stations) {
    const extra = suiteArgs(s);
    if (extra.length > 0 || !args.health) console.log(`nightly: ${s}: ${args.health ? 'health, then ' : ''}vitest run --project suites ${extra.join(' ')}`.trimEnd());
  }
  process.exit(0);
}

// 3. The results directory: emptied, so the report shows tonight's run only (history is kept apart), except
// on a rerun of a results directory, whose reruns go next to what failed (unless --results says otherwise)
// and show up in the report as retries of it.
const rerunSource = rerun ? fromUser(args['rerun-failed']) : undefined;
const rerunOfResults = rerunSource !== undefined && !(await fs.pathExists(path.join(rerunSource, 'index.html'))) && !rerunSource.endsWith('.html');
const results = args.results ? fromUser(args.results) : rerunOfResults ? rerunSource : path.join(root, 'reports', 'allure-results');
const rerunInPlace = rerunOfResults && rerunSource === results;
if (!args['keep-results'] && !rerunInPlace) await fs.emptyDir(results);
await fs.mkdirp(results);
const logDir = args['log-dir'] ? fromUser(args['log-dir']) : path.join(root, 'reports', 'runs', `nightly-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(logDir);
console.log(`nightly: ${stations.length} station(s) in parallel: ${stations.join(', ')}; results in ${path.relative(process.cwd(), results) || results}, logs in ${path.relative(process.cwd(), logDir) || logDir}`);

// 4. One process per station, in parallel; plain text, since it goes to log files too.
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
const progress = new Map(stations.map((s) => [s, { phase: 'waiting', passed: 0, failed: 0, skipped: 0, running: new Map() }]));
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
    return `${s} [${p.phase}]: ${done}${test ? `, running "${test}" for ${Math.round((Date.now() - since) / 1000)} s` : ''}`;
  });
  print(`nightly: ${clock()} — ${parts.join('; ')}\n`);
}
const beat = setInterval(() => {
  if (Date.now() - lastPrinted >= ms(args.heartbeat)) heartbeat();
}, Math.min(ms(args.heartbeat), 5_000));
beat.unref();

/** One vitest run of a project for a station, its output prefixed, logged, and counted. */
async function vitest(station, project, extra, log, timeout) {
  const tag = chalk.cyan(`[${station.padEnd(width)}]`);
  const env = {
    ...withoutColor(process.env),
    RIG_STATION: station,
    RIG_PROGRESS: '1',
    RIG_ALLURE_RESULTS: results,
    NO_COLOR: '1',
    ...(args.config ? { RIG_CONFIG: fromUser(args.config) } : {}),
  };
  const p = $({ cwd: root, env, nothrow: true, quiet: true })`npx vitest run --project ${project} ${extra}`.timeout(timeout, 'SIGTERM');
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
  if (rest && !rest.startsWith(PROGRESS_MARK)) print(`${tag} ${rest}\n`);
  return out;
}

const deadline = t0 + ms(args.timeout);
const runs = await Promise.all(
  stations.map(async (station) => {
    const log = fs.createWriteStream(path.join(logDir, `${station}.log`));
    const started = Date.now();
    const p = progress.get(station);
    let health = 'skipped';
    let out;
    try {
      if (args.health) {
        p.phase = 'health';
        const h = await vitest(station, 'health', [], log, `${Math.max(1, deadline - Date.now())}ms`);
        health = h.exitCode === 0 ? 'passed' : 'failed';
        if (health === 'failed') {
          print(`${chalk.red(`nightly: ${station} failed its health check`)}: broken infrastructure tonight, its suites are not run (see its health results)\n`);
        }
      }
      if (health !== 'failed') {
        p.phase = 'suites';
        out = await vitest(station, 'suites', suiteArgs(station), log, `${Math.max(1, deadline - Date.now())}ms`);
      }
    } finally {
      p.phase = 'done';
      await new Promise((resolve) => log.end(resolve));
    }
    return { station, health, exitCode: out?.exitCode ?? null, signal: out?.signal ?? null, passed: p.passed, failed: p.failed, seconds: Math.round((Date.now() - started) / 1000) };
  }),
);
clearInterval(beat);

// 5. The report, whatever the tests said: a failing night is exactly when it is needed.
let reportOk = true;
if (args.report) {
  const r = await $({ cwd: root, nothrow: true, stdio: 'inherit' })`npx tsx scripts/report.mjs ${results}`;
  reportOk = r.exitCode === 0;
}

// 6. The summary, its JSON for CI, and the exit code.
const state = (r) =>
  r.health === 'failed'
    ? 'broken'
    : r.exitCode === 0
      ? 'passed'
      : r.exitCode === 1
        ? 'failed'
        : r.signal
          ? `stopped (${r.signal}, --timeout ${args.timeout}?)`
          : `error (exit ${r.exitCode})`;
const rows = runs.map((r) => {
  const s = state(r);
  const shown = s === 'passed' ? chalk.green(s) : s === 'failed' ? chalk.red(s) : chalk.yellow(s);
  return `  ${r.station.padEnd(width)}  health ${r.health.padEnd(7)}  ${shown}  ${r.passed} passed, ${r.failed} failed  ${r.seconds} s`;
});
await fs.writeJson(path.join(logDir, 'summary.json'), { host: hostName(), results, shard: shard ?? null, rerun: Boolean(rerun), stations: runs.map((r) => ({ ...r, state: state(r) })) }, { spaces: 2 });
console.log(`\nnightly: ${Math.round((Date.now() - t0) / 1000)} s\n${rows.join('\n')}${args.report ? `\n  report: ${reportOk ? 'reports/allure-report/index.html' : chalk.red('not built (see above)')}` : ''}`);
const incomplete = runs.some((r) => r.health === 'failed' || (r.exitCode !== 0 && r.exitCode !== 1));
const failed = runs.some((r) => r.exitCode === 1);
process.exitCode = incomplete || !reportOk ? 69 : failed ? 1 : 0;
