#!/usr/bin/env -S npx tsx
// npm run bench [-- --quick] [--reps N] [--only read,probe,parallel] [--parallel-baud B] [--cpu-prof] [--out F]
//
// How close the rig gets to the wire (issue 9). Every section runs in a process of its own (scripts/bench/
// section.ts) against virtual stations that the rig drives through its hardware code paths:
//   1. the proxy flow's block-read phase of a 256 KiB package at 115200 and 921600 baud ÷ the protocol
//      minimum, and with an unpaced pty the rig's CPU ms per MiB;
//   2. a straightforward serialport ReadlineParser peer on the same station, rig ÷ peer;
//   3. read-back of 256 KiB and programming of 32 KiB through rig/probe (KiB/s, issue 18), read-back ÷ a
//      bare openocd run; 20 small probe operations, spawning openocd for each ÷ one persistent session;
//   4. 1, 2 and 4 stations at once, each station's read-phase efficiency relative to the lone one;
//   5. the rig process's peak RSS with 4 stations.
// Each figure is measured 3 times (alternating who goes first) and the median reported. Items 4 and 5 run
// compiled (plain node on dist/, as bin/rig.js runs; the build includes scripts/bench/section.ts), one process
// per repetition, so that each repetition has a peak RSS of its own. Prints a table and
// writes reports/bench/latest.json. Exit 0 whether or not targets are met; 1 when a measurement failed (or
// openocd, socat, tsx are missing), 64 for a usage error.
// Runs under tsx (package.json) because it shares its arithmetic with the unit tests (scripts/bench/wire.ts).
// The read and probe sections run under tsx too (their figures are times and CPU, which tsx's loader does
// not touch once the modules are loaded); its loader thread would add ~40 MB to item 5.
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { $, fs, minimist, path, which } from 'zx';
import { makeBenchFixtures } from './bench/fixtures.ts';
import { formatTarget, meets, summarize } from './bench/wire.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['reps', 'only', 'parallel-baud', 'out'],
  boolean: ['quick', 'cpu-prof', 'help'],
  alias: { h: 'help' },
  unknown: (a) => usage(a.startsWith('-') ? `unknown option ${a} (see --help)` : `unexpected argument ${a}`),
});

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
// Exit codes as the rig command's: 64 for a usage error.
function usage(message) {
  console.error(`bench: ${message}`);
  process.exit(64);
}

if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--reps N] [--only read,probe,parallel] [--parallel-baud B] [--cpu-prof] [--out FILE]
  --quick          leave out the 115200-baud read phases (the longest part, ~3 min): those figures read "not measured"
  --reps N         repetitions of every figure (default 3; the median is reported)
  --only LIST      run only these sections
  --parallel-baud  baud rate of the parallel stations (default 921600, the most work per second for the rig)
  --cpu-prof       write V8 CPU profiles of every section to reports/bench/profiles/
  --out FILE       default reports/bench/latest.json`);
  process.exit(0);
}

const reps = args.reps === undefined ? 3 : Number(args.reps);
if (!Number.isInteger(reps) || reps < 1) usage(`--reps: expected a whole number >= 1, seen ${args.reps}`);
if (reps < 3) console.error(`bench: --reps ${reps}: fewer than 3 repetitions, the medians are not the figures issue 9 asks for`);
const SECTIONS = ['read', 'probe', 'parallel'];
const only = args.only ? String(args.only).split(',') : SECTIONS;
for (const s of only) if (!SECTIONS.includes(s)) usage(`--only: expected some of ${SECTIONS.join(', ')}, seen ${s}`);
const parallelBaud = args['parallel-baud'] === undefined ? 921600 : Number(args['parallel-baud']);
if (!Number.isInteger(parallelBaud) || parallelBaud <= 0) usage(`--parallel-baud: expected a baud rate, seen ${args['parallel-baud']}`);
const outFile = path.resolve(process.env.INIT_CWD ?? process.cwd(), args.out ?? path.join(root, 'reports', 'bench', 'latest.json'));
const benchDir = path.join(root, 'reports', 'bench');

// 0. What the sections need: the tools `npm run setup` installs.
for (const tool of ['openocd', 'socat']) {
  if (!(await which(tool, { nothrow: true }))) fail(`${tool} is not on PATH (run npm run setup)`);
}
// Sections run as `node --import tsx …`: one process (tsx's CLI would run the script in a child of its own,
// out of reach of --cpu-prof and of the parent's accounting).
let tsxLoader;
try {
  tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
} catch {
  fail('tsx is not installed (run npm run setup)');
}

await fs.mkdirp(benchDir);
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sota-rig-bench-'));
const started = new Date();
const loadStart = os.loadavg();
const openocdVersion = (await $({ nothrow: true })`openocd --version 2>&1`).stdout.split('\n')[0] ?? '';

// 1. The 256 KiB package, made by the fixture tools.
console.error(`bench: making the 256 KiB fixture set in ${work}`);
const manifest = await makeBenchFixtures(path.join(work, 'fixtures'));

// The compiled rig for items 4 and 5: the project's build (tsconfig.build.json), as `npm test` makes it.
const compiledSection = path.join(root, 'dist', 'scripts', 'bench', 'section.js');
// Item 5 runs as `rig` runs: with the node options of bin/rig.js's `#!/usr/bin/env -S node …` line.
const rigNodeOptions = (/^#!\/usr\/bin\/env -S node(.*)$/m.exec(await fs.readFile(path.join(root, 'bin', 'rig.js'), 'utf8'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
let built = false;
let build = null;
if (only.includes('parallel')) {
  console.error('bench: building dist/ (npm run build) for the parallel section');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const b = await $({ nothrow: true, cwd: root })`${process.execPath} ${tsc} -p tsconfig.build.json`;
  // tsc's exit 2 is "type errors, outputs generated": with others' work in progress in the tree, the bench
  // runs what was emitted and says so (build.exitCode in latest.json); 1 means nothing was emitted.
  build = { exitCode: b.exitCode, diagnostics: `${b.stdout}${b.stderr}`.split('\n').filter(Boolean).slice(0, 20) };
  built = (b.exitCode === 0 || b.exitCode === 2) && (await fs.pathExists(compiledSection));
  if (b.exitCode !== 0) console.error(`bench: the build reported errors (exit ${b.exitCode})${built ? ', running what it emitted' : '; the parallel section is left out'}:\n${b.stdout}${b.stderr}`);
}

// 2. The sections, one process each.
const profDir = path.join(benchDir, 'profiles');
if (args['cpu-prof']) await fs.mkdirp(profDir);
async function section(name, extra, label, { compiled = false } = {}) {
  const out = path.join(work, `${label}.json`);
  const nodeArgs = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${label}.cpuprofile`] : [];
  const entry = compiled ? [...rigNodeOptions, compiledSection] : ['--import', tsxLoader, path.join(root, 'scripts', 'bench', 'section.ts')];
  console.error(`bench: ${label}${compiled ? ` (compiled, dist/${rigNodeOptions.length > 0 ? `, node ${rigNodeOptions.join(' ')} as bin/rig.js` : ''})` : ''}`);
  const p = await $({ stdio: ['ignore', 'inherit', 'inherit'], nothrow: true })`${process.execPath} ${nodeArgs} ${entry} ${name} --manifest ${manifest} --out ${out} ${extra.includes('--reps') ? [] : ['--reps', reps]} ${extra}`;
  if (p.exitCode !== 0) {
    failures.push(`${label}: exit ${p.exitCode}`);
    return undefined;
  }
  return fs.readJson(out);
}
const failures = [];
const results = {};
if (only.includes('read')) {
  // An unpaced read phase lasts ~0.15 s, where scheduling noise is of the same order: three times the reps.
  for (const baud of args.quick ? [921600, 0] : [115200, 921600, 0]) {
    results[`read-${baud}`] = await section('read', ['--baud', baud, ...(baud === 0 ? ['--reps', reps * 3] : [])], `read-${baud || 'unpaced'}`);
  }
}
if (only.includes('probe')) results.probe = await section('probe', [], 'probe');
if (only.includes('parallel') && !built) failures.push('parallel: the build of dist/ failed');
if (only.includes('parallel') && built) {
  // One process per repetition: item 5 is a process's peak RSS, and its median needs several processes.
  const parts = [];
  for (let rep = 0; rep < reps; rep++) {
    parts.push(await section('parallel', ['--baud', parallelBaud, '--counts', '1,2,4', '--reps', 1], `parallel-${parallelBaud}-${rep + 1}`, { compiled: true }));
  }
  const ok = parts.filter((p) => p !== undefined);
  results.parallel = ok.length === 0 ? undefined : {
    section: 'parallel',
    compiled: true,
    processes: ok.length,
    result: {
      ...ok[0].result,
      runs: ok.flatMap((p, i) => p.result.runs.map((r) => ({ ...r, rep: i }))),
      rss: undefined,
      rssRuns: ok.map((p) => p.result.rss),
    },
    durationMs: ok.reduce((a, p) => a + p.durationMs, 0),
    load: { start: ok[0].load.start, end: ok.at(-1).load.end },
  };
}

// What tsx's loader costs a process (its hooks thread is a second V8 isolate), why item 5 runs compiled: the
// rig's modules imported from dist/ by plain node (as bin/rig.js runs) and from the sources under tsx.
const idle = path.join(root, 'scripts', 'bench', 'idle-rss.mjs');
const rigModules = (base, ext) => ['station', 'sota', 'probe'].map((m) => path.join(root, base, 'rig', m, `index.${ext}`));
const rss = async (loader, modules) => Number((await $`${process.execPath} ${loader ? ['--import', tsxLoader] : []} ${idle} ${modules}`).stdout.trim());
const idleRss = { node: await rss(false, []), tsx: await rss(true, []), rigTsx: await rss(true, rigModules('', 'ts')), rigDist: null };
if (await fs.pathExists(path.join(root, 'dist', 'rig', 'sota', 'index.js'))) idleRss.rigDist = await rss(false, rigModules('dist', 'js'));

// 3. Figures: medians over the repetitions, against the targets.
const figures = [];
function figure(id, item, title, unit, values, target, note) {
  if (!values || values.length === 0) {
    figures.push({ id, item, title, unit, measured: false, target: target ?? null, met: null, note: note ?? 'not measured' });
    return;
  }
  const s = summarize(values);
  figures.push({ id, item, title, unit, measured: true, ...s, target: target ?? null, met: target ? meets(s.median, target) : null, ...(note ? { note } : {}) });
}
const runsOf = (key) => results[key]?.result.runs;
for (const baud of [115200, 921600]) {
  const runs = runsOf(`read-${baud}`);
  // The target is judged against issue 9's own arithmetic (24 bytes out, 1056 back a block): no echo. The
  // sim echoes, as modules do by default, each character as it takes it: the echo crosses while the command
  // does, and only its last byte a block adds line time (wire.ts lineBytes, the "with the echo" minimum).
  figure(`read-${baud}-vs-wire`, 1, `read phase ÷ protocol minimum, echo-free (issue's arithmetic) @${baud}`, '×', runs?.map((r) => r.rigVsWireNoEcho), { op: '<=', value: baud === 115200 ? 1.03 : 1.15 });
  figure(`read-${baud}-vs-wire-echo`, 1, `  same ÷ minimum with the module's echo (overlapping each command but its last byte) @${baud}`, '×', runs?.map((r) => r.rigVsWire));
  figure(`read-${baud}-echo-off-vs-wire`, 1, `  read phase with the echo off (module.echo 'off': ATE0) ÷ echo-free minimum @${baud}`, '×', runs?.map((r) => r.rigEchoOff?.vsWire).filter((x) => x !== undefined));
  figure(`peer-${baud}-vs-wire`, 2, `  peer's read phase ÷ echo-free minimum @${baud}`, '×', runs?.map((r) => r.peerVsWireNoEcho));
  figure(`rig-vs-peer-${baud}`, 2, `rig ÷ peer @${baud}`, '×', runs?.map((r) => r.rigVsPeer), { op: '<=', value: 1 });
  figure(`cpu-per-mib-${baud}`, 1, `  rig CPU per MiB read @${baud}`, 'ms/MiB', runs?.map((r) => r.rig.cpuMsPerMiB));
  figure(`peer-cpu-per-mib-${baud}`, 2, `  peer's CPU per MiB read @${baud}`, 'ms/MiB', runs?.map((r) => r.peer.cpuMsPerMiB));
  figure(`cpu-vs-peer-${baud}`, 2, `rig ÷ peer, CPU per MiB read @${baud}`, '×', runs?.map((r) => r.rig.cpuMsPerMiB / r.peer.cpuMsPerMiB), { op: '<=', value: 1 });
  figure(`turnaround-${baud}`, 1, `  rig turnaround per block (OK → next command) @${baud}`, 'ms', runs?.map((r) => r.rig.turnaroundMs));
  figure(`turnaround-share-${baud}`, 1, `  rig turnarounds ÷ read phase @${baud}`, '%', runs?.map((r) => 100 * r.rig.turnaroundShare));
  figure(`peer-turnaround-${baud}`, 2, `  peer turnaround per block @${baud}`, 'ms', runs?.map((r) => r.peer.turnaroundMs));
  figure(`answer-${baud}`, 1, `  rig command → OK per block @${baud}`, 'ms', runs?.map((r) => r.rig.answerMs));
  figure(`peer-answer-${baud}`, 2, `  peer command → OK per block @${baud}`, 'ms', runs?.map((r) => r.peer.answerMs));
}
{
  const runs = runsOf('read-0');
  figure('cpu-per-mib', 1, 'rig CPU per MiB read (unpaced pty)', 'ms/MiB', runs?.map((r) => r.rig.cpuMsPerMiB));
  figure('peer-cpu-per-mib', 2, "  peer's CPU per MiB read (unpaced pty)", 'ms/MiB', runs?.map((r) => r.peer.cpuMsPerMiB));
  figure('cpu-vs-peer-unpaced', 2, 'rig ÷ peer, CPU per MiB read (unpaced pty)', '×', runs?.map((r) => r.rig.cpuMsPerMiB / r.peer.cpuMsPerMiB), { op: '<=', value: 1 });
  figure('rig-vs-peer-unpaced', 2, 'rig ÷ peer, unpaced pty', '×', runs?.map((r) => r.rigVsPeer), { op: '<=', value: 1 });
}
{
  const runs = runsOf('probe');
  const kib = (bytes, ms) => bytes / 1024 / (ms / 1000);
  const probeBytes = results.probe?.result.bytes;
  const programBytes = results.probe?.result.programBytes;
  // Issue 18: the virtual probe path at hardware speed (the station's own adapter, the cfg's work area).
  figure('readback-rate', 3, 'read-back 256 KiB through rig/probe (warm session)', 'KiB/s', runs?.map((r) => kib(probeBytes, r.readback.rigMs)), { op: '>=', value: 150 });
  figure('program-rate', 3, 'programming 32 KiB through rig/probe, erase included (halt + flash write_image erase)', 'KiB/s', runs?.map((r) => kib(programBytes, r.program.rigWriteMs)), { op: '>=', value: 30 });
  figure('program-rate-verified', 3, '  same with its read-back verify', 'KiB/s', runs?.map((r) => kib(programBytes, r.program.rigTotalMs)));
  figure('program-vs-openocd', 3, "  programming: rig's write ÷ bare openocd's own figure", '×', runs?.map((r) => r.program.ratio).filter((x) => x !== null));
  // The headline is the issue's comparison: the rig's warm session against a whole bare openocd run (start,
  // init, read, shutdown). The transfer-only line leaves openocd's start-up and init out of the bare time.
  figure('readback-vs-openocd', 3, 'read-back 256 KiB: rig session ÷ whole bare openocd run', '×', runs?.map((r) => r.readback.ratio), { op: '<=', value: 1.1 });
  figure('readback-cpu-vs-openocd', 3, '  same, CPU of openocd + sim (rig ÷ bare)', '×', runs?.map((r) => r.readback.cpuRatio));
  figure('readback-vs-openocd-transfer', 3, "  rig session ÷ bare openocd's transfer alone", '×', runs?.map((r) => r.readback.transferRatio).filter((x) => x !== null));
  figure('readback-own-session-vs-bare', 3, '  bare openocd detached (as rig/probe starts it) ÷ bare', '×', runs?.map((r) => r.readback.bareOwnSessionMs / r.readback.bareMs));
  figure('session-speedup', 3, '20 small ops: spawn-per-op ÷ persistent session', '×', runs?.map((r) => r.small.speedup), { op: '>=', value: 5 });
}
{
  const runs = runsOf('parallel');
  for (const count of [2, 4]) {
    figure(`parallel-${count}`, 4, `${count} stations at once: worst station ÷ lone efficiency @${parallelBaud}`, '×', runs?.filter((r) => r.count === count).map((r) => r.minRelative), count === 4 ? { op: '>=', value: 0.9 } : undefined);
  }
  figure('lone-efficiency', 4, `  lone station: minimum with echo ÷ read phase @${parallelBaud}`, '×', runs?.filter((r) => r.count === 1).map((r) => r.lone));
  const four = runs?.filter((r) => r.count === 4);
  figure('parallel-4-rig-cpu', 4, '  4 stations: rig process CPU while reading', '% core', four?.map((r) => r.cpu.rigPercent));
  figure('parallel-4-sims-cpu', 4, '  4 stations: the 4 sims CPU while reading', '% core', four?.map((r) => r.cpu.simsPercent.reduce((a, b) => a + b, 0)));
  const mem = results.parallel?.result.rssRuns;
  figure('peak-rss', 5, `rig process peak RSS, 4 stations (compiled, node ${rigNodeOptions.join(' ') || '(no options)'} on dist/, as bin/rig.js)`, 'MB', mem?.map((m) => m.peak / 1e6), { op: '<=', value: 120 }, mem ? `${mem.length} processes, one per repetition` : undefined);
  figure('peak-rss-start', 5, '  same process before any station (after the imports)', 'MB', mem?.map((m) => m.start / 1e6));
  figure('peak-rss-heap', 5, '  V8 heap used at the sampled peak', 'MB', mem?.map((m) => m.atPeak.heapUsed / 1e6));
}

// 4. The table and latest.json.
const fmt = (x, unit) => x.toFixed({ '×': 3, ms: 2, '%': 1, MB: 1, 'KiB/s': 1 }[unit] ?? 0);
const rows = figures.map((f) => [
  String(f.item),
  f.title,
  f.measured ? `${fmt(f.median, f.unit)} ${f.unit}` : '—',
  f.measured && f.runs.length > 1 ? `${fmt(f.min, f.unit)}–${fmt(f.max, f.unit)}` : '',
  f.target ? formatTarget(f.target) : '',
  f.met === null ? '' : f.met ? 'met' : 'NOT MET',
]);
const head = ['#', 'figure', 'median', 'range', 'target', ''];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}`);
const judged = figures.filter((f) => f.met !== null);
const loadEnd = os.loadavg();
console.log(
  `\n${judged.filter((f) => f.met).length} of ${judged.length} targets met; ${reps} repetitions each; load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} at the start, ` +
    `${loadEnd.map((l) => l.toFixed(2)).join(' ')} at the end, ${os.cpus().length} CPUs`,
);

for (const [key, r] of Object.entries(results)) {
  if (r) console.log(`  ${key}: load average ${r.load.start[0].toFixed(2)} → ${r.load.end[0].toFixed(2)} (1 min), ${(r.durationMs / 1000).toFixed(0)} s`);
}

const report = {
  format: 'sota-rig/bench',
  version: 1,
  startedAt: started.toISOString(),
  durationMs: Date.now() - started.getTime(),
  options: { reps, quick: Boolean(args.quick), sections: only, parallelBaud, cpuProf: Boolean(args['cpu-prof']), compiledNodeOptions: rigNodeOptions },
  machine: {
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    memoryBytes: os.totalmem(),
    node: process.version,
    openocd: openocdVersion,
    loadAverage: { start: loadStart, end: loadEnd },
  },
  figures,
  sections: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v ?? null])),
  idleRss,
  build,
  failures,
};
await fs.mkdirp(path.dirname(outFile));
await fs.writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), outFile)}`);
await fs.remove(work);
if (failures.length > 0) fail(`${failures.length} section(s) failed: ${failures.join('; ')}`);
