#!/usr/bin/env -S npx tsx
// npm run qualify -- [--image <new.bin> [--version <v>]] [--releases <dir>] [--component <name>] [--locator <spec>]
//                    [--previous 1_0_0,1_1_0] [--station virtual] [--config <file>] [--mode proxy|dut]
//                    [--cases full,delta,interrupted,corrupt,rollback] [--allow-skip] [--retries 1]
//                    [--out <dir>] [--json] [--write-packages <dir>]
//
// Release qualification of a new MCU image. The image is what its bytes are (objcopy's .bin, an MCUboot-
// signed image, a rig fixture); its version is --version or what the component's version locator finds in
// it. The releases it must upgrade from are a manifest (`rig image add` writes one; RIG_MANIFEST, default
// fixtures/manifest.json) or --releases <dir> (its manifest.json, or its *.bin files named by their headers
// or file names). From each previous release the new image must install as a full package and as a delta,
// survive a module power cut during the cloud → module download and another in the middle of the block
// reads, refuse a package whose image is broken (the old release stays, verified by read-back), and the
// release must be revertible (a plan back to the previous release). With --mode dut the image under test
// upgrades itself on the station's MCU (taps, console, SWD): full, delta, a module power cut in the block
// reads, its own power cut while it writes and during the install (any state the A/B design allows), a reset
// in its trial boot (reverted), and the next upgrade taken by the image once installed.
//
// The result: a table, run records, summary.json, junit.xml and allure-results/ in reports/runs/qualify-<time>/
// (or --out), and an exit code:
//   0 QUALIFIED      every case passed
//   1 NOT QUALIFIED  a case failed because of the image, or was skipped (a station that cannot cut module
//                    power has not qualified the image against power cuts; --allow-skip accepts that)
//   2 config error   invalid config, a declared plan a case needs is missing
//   4 INCONCLUSIVE   no case failed because of the image, but the station failed in some (did not open,
//                    a port vanished, OpenOCD died, a fault's moment never came; in proxy mode also a
//                    module that left the protocol): run `rig doctor <station>` and qualify again. A case
//                    that failed on the station's equipment is retried once on a reopened station (--retries).
//   64 usage error   a bad option, an image whose version nobody gave and no locator finds
//
// --write-packages <dir> writes the package files every case delivers and a `plans: [...]` block to paste
// into a hardware station's config, then exits: on a bench the plans must be created in Developer Center's
// console by hand (there is no public API for plans), and the rig matches them by SHA-256.
//
// It drives rig/sota directly on one station (the same flow as `rig upgrade` and the suites), rather than a
// vitest selection, because its subject is an image that is not in the fixtures: its packages are built here,
// in memory, and handed to the station's plan source. Modes: proxy (the rig plays the MCU); cases and the
// judgement of a case's result are per mode (scripts/qualify-lib/). Runs under tsx: it imports the rig's
// TypeScript modules.
import os from 'node:os';
import { chalk, fs, minimist, path } from 'zx';
import { loadConfig } from '../rig/config/index.ts';
import { currentManifestPath, identifyRelease, loadManifest, loadReleases, parseLocator } from '../rig/images/index.ts';
import { ensureBaseline, formatFault, parseFault, runDutUpgrade, runProxyUpgrade, serializeRunRecord } from '../rig/sota/index.ts';
import { dutBootloader, dutReleases } from '../rig/sota/dut-firmware.ts';
import { openStation } from '../rig/station/index.ts';
import { withVirtualMcu } from '../rig/station/virtual.ts';
import { closest } from '../rig/cli/suggest.ts';
import { QualifyAllure } from './qualify-lib/allure.ts';
import { DUT_CASES, PROXY_CASES, dutCases, proxyCases } from './qualify-lib/cases.ts';
import { junitXml } from './qualify-lib/junit.ts';
import { DOCTOR_HINT, judgeError, judgeRun, overall, QUALIFY_EXIT } from './qualify-lib/outcome.ts';

const root = path.resolve(import.meta.dirname, '..');
const here = process.env.INIT_CWD ?? process.cwd();
const DUT_MANIFEST = path.join(root, 'fixtures', 'mcu', 'manifest.json');
const STRING_OPTIONS = ['image', 'version', 'releases', 'component', 'locator', 'previous', 'station', 'config', 'cases', 'mode', 'retries', 'out', 'write-packages'];
const BOOLEAN_OPTIONS = ['help', 'json', 'allow-skip'];
const args = minimist(process.argv.slice(2), {
  string: STRING_OPTIONS,
  boolean: BOOLEAN_OPTIONS,
  default: { station: 'virtual', mode: 'proxy', retries: '1' },
  unknown: (a) => {
    if (!a.startsWith('-')) return true;
    const name = a.replace(/=.*$/, '');
    const hint = closest(name, [...STRING_OPTIONS, ...BOOLEAN_OPTIONS].map((o) => `--${o}`));
    return usage(`unknown option ${name}${hint ? ` (did you mean ${hint}?)` : ''}`);
  },
});

/**
 * What a mode brings: its cases and how a case runs. proxy: rig/sota/proxy.ts plays the MCU. dut: the image
 * under test drives the dialogue on the station's MCU (rig/sota/dut.ts; the station needs its mcu entry), the
 * releases and the bootloader come from a dut set (default fixtures/mcu/manifest.json).
 */
const MODES = {
  proxy: {
    cases: PROXY_CASES,
    plan: proxyCases,
    releases: (set) => [...set.images.values()],
    /** Runs one case on an open station; returns the run record. */
    async run(station, c, recorder, firmware, faults) {
      await ensureBaseline(station, c.from, { recorder });
      return runProxyUpgrade(station, { plan: { component: c.pkg.component, package: c.pkg }, current: c.from, faults: faults.map(parseFault), expect: c.expect, recorder, firmware });
    },
  },
  dut: {
    cases: DUT_CASES,
    plan: dutCases,
    releases: dutReleases,
    async run(station, c, recorder, firmware, faults) {
      const bootloader = dutBootloader(firmware);
      const upgrade = { plan: { component: c.pkg.component, package: c.pkg }, from: c.from, ...(bootloader ? { bootloader } : {}), faults: faults.map(parseFault), expect: c.expect, recorder };
      const run = await runDutUpgrade(station, upgrade);
      if (!c.then || !run.verdict.ok) return run;
      // The image just installed, as it runs (no reset), is offered the next plan: it must take it itself.
      return runDutUpgrade(station, { plan: { component: c.then.pkg.component, package: c.then.pkg, pushActively: true }, from: c.then.from, fresh: false, expect: ['upgraded'], recorder });
    },
  },
};

function usage(message) {
  if (message) console.error(`qualify: ${message}`);
  console.error(`usage: npm run qualify -- [--image <new.bin> [--version <v>]] [--releases <dir>] [--component <name>]
                         [--locator <spec>] [--previous <v1,v2>] [--station <name>] [--config <file>] [--mode ${Object.keys(MODES).join('|')}]
                         [--cases ${PROXY_CASES.join(',')} | dut: ${DUT_CASES.join(',')}] [--allow-skip] [--retries <n>] [--out <dir>] [--json]
                         [--write-packages <dir>]
  default image: the newest release; default previous: every other release; releases: $RIG_MANIFEST, else
  fixtures/manifest.json (dut: fixtures/mcu/manifest.json, its reference applications); --locator: rig-header | mcuboot[:format=…] | string:offset=… | 'pattern:<regex>' | none
  exit: 0 qualified, 1 not qualified, 2 config error, 4 inconclusive (the station failed: run rig doctor), 64 usage`);
  process.exit(message ? QUALIFY_EXIT.usage : 0);
}
function fail(code, message) {
  console.error(`qualify: ${message}`);
  process.exit(code);
}
/** A typed error from the rig as an exit: usage 64, config 2, anything about the image 1. */
function failWith(err) {
  const code = err.kind === 'usage' ? QUALIFY_EXIT.usage : err.kind === 'config' ? QUALIFY_EXIT.config : err.kind === 'firmware' ? QUALIFY_EXIT.notQualified : 70;
  fail(code, err.message);
}
if (args.help) usage();

const mode = MODES[args.mode];
if (!mode) usage(`--mode: no mode ${args.mode} (have ${Object.keys(MODES).join(', ')})`);
const retries = Number(args.retries);
if (!Number.isInteger(retries) || retries < 0 || retries > 5) usage(`--retries: expected 0 to 5, seen ${args.retries}`);

// 1. The releases, the new image and the releases it must upgrade from.
let locator;
try {
  locator = args.locator === undefined ? undefined : parseLocator(args.locator);
} catch (err) {
  usage(`--locator: ${err.summary ?? err.message} (expected ${err.expected})`);
}
let releases;
try {
  releases = args.releases !== undefined
    ? await loadReleases(path.resolve(here, args.releases), { component: args.component ?? 'STM32', locator })
    : await loadManifest(args.mode === 'dut' && !process.env.RIG_MANIFEST ? DUT_MANIFEST : currentManifestPath());
} catch (err) {
  failWith(err);
}
const component = releases.component;
if (args.component !== undefined && args.component !== component) usage(`--component ${args.component}: the releases are of ${component}`);
locator ??= releases.locator;
const released = mode.releases(releases);
let next;
if (args.image) {
  const file = path.resolve(here, args.image);
  if (!(await fs.pathExists(file))) usage(`--image: no file ${file}`);
  const bytes = new Uint8Array(await fs.readFile(file));
  const known = released.find((i) => i.equals(bytes));
  if (known && args.version !== undefined && args.version !== known.version) usage(`--version ${args.version}: ${path.basename(file)} is release ${known.version} byte for byte`);
  try {
    next = known ?? identifyRelease(bytes, { component, version: args.version, locator, label: path.basename(file) }).image;
  } catch (err) {
    failWith(err);
  }
  if (!known && releases.images.has(next.version)) usage(`${path.basename(file)} is version ${next.version}, which is already a release with other bytes (sha256 ${releases.image(next.version).sha256.slice(0, 12)}…): give the new image its own version`);
} else {
  if (args.version !== undefined) usage('--version names the --image; without --image the newest release is qualified');
  next = released.at(-1);
  if (!next) usage(`no releases in ${releases.manifestPath}`);
}
const previous = args.previous ? String(args.previous).split(',').map((v) => v.trim()).filter(Boolean) : released.filter((i) => i.version !== next.version).map((i) => i.version);
for (const v of previous) if (!releases.images.has(v)) usage(`--previous: no image ${v} in ${releases.manifestPath} (have ${[...releases.images.keys()].join(', ')})`);
if (previous.length === 0) usage('no previous version to upgrade from');
const kinds = args.cases ? String(args.cases).split(',').map((c) => c.trim()) : [...mode.cases];
for (const c of kinds) if (!mode.cases.includes(c)) usage(`--cases: unknown case ${c} (have ${mode.cases.join(', ')})`);

// 2. The cases, with the packages a release engineer would upload.
const plan = await mode.plan(next, previous.map((v) => releases.image(v)), kinds);

// 2b. For a bench: the files to upload and the plans to declare, then stop.
if (args['write-packages'] !== undefined) {
  const dir = path.resolve(here, String(args['write-packages']));
  await fs.mkdirp(dir);
  const packages = [...new Map(plan.map((c) => [c.pkg.sha256, c.pkg])).values()];
  const entries = [];
  for (const pkg of packages) {
    const file = `${pkg.name}.bin`;
    await fs.writeFile(path.join(dir, file), pkg.bytes);
    entries.push({ name: `qualify ${pkg.name}`, package: { file, sha256: pkg.sha256, md5: pkg.md5 }, sourceVersion: pkg.sourceVersion ?? '', targetVersion: pkg.version });
  }
  const block = [
    `// ${component} ${next.version}: create one upgrade plan per entry in Developer Center (the file, its source and`,
    `// target version, no battery or signal threshold), then paste this under the station's plans:`,
    `// plans: { kind: 'declared', plans: [ … ] }. The plan names are yours to choose; the rig matches by sha256.`,
    `plans: ${JSON.stringify(entries, null, 2)},`,
  ].join('\n');
  await fs.writeFile(path.join(dir, 'plans.rig.config.txt'), `${block}\n`);
  if (args.json) process.stdout.write(`${JSON.stringify({ dir, packages: entries }, null, 2)}\n`);
  else console.log(`qualify: ${packages.length} package file(s) and plans.rig.config.txt in ${dir}\n\n${block}`);
  process.exit(0);
}

// 3. The station, once for all cases; reopened after a case that broke it.
let config;
try {
  config = await loadConfig({ cwd: root, ...(args.config ? { path: path.resolve(here, args.config) } : {}) });
} catch (err) {
  fail(err.kind === 'config' ? QUALIFY_EXIT.config : 70, err.message);
}
const outDir = args.out ? path.resolve(here, args.out) : path.join(root, 'reports', 'runs', `qualify-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(outDir);
const allure = new QualifyAllure(path.join(outDir, 'allure-results'));
const log = (line) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);
log(`qualify: ${component} ${next.version} (${next.size} bytes, sha256 ${next.sha256.slice(0, 12)}…) from ${previous.join(', ')} on ${args.station}, ${args.mode} mode: ${plan.length} case(s)`);

const LABELS = { passed: ['PASS', chalk.green], failed: ['FAIL', chalk.red], inconclusive: ['INCONCLUSIVE', chalk.yellow], skipped: ['SKIP', chalk.yellow], config: ['CONFIG', chalk.red] };
function label(status, width = 0) {
  const [word, colour] = LABELS[status];
  return colour(word.padEnd(width));
}

/** The station, or the error that kept it closed. */
async function open() {
  try {
    // A virtual station qualifies in dut mode with its virtual MCU (taps, console, bootloader model).
    return { station: await openStation(args.station, { config: args.mode === 'dut' ? withVirtualMcu(config, args.station) : config }) };
  } catch (err) {
    if (err.kind === 'config') fail(QUALIFY_EXIT.config, err.message);
    return { error: err };
  }
}

let { station, error: openError } = await open();
const results = [];
for (const [i, c] of plan.entries()) {
  const t0 = Date.now();
  log(chalk.cyan(`[${i + 1}/${plan.length}] ${c.name}`));
  const row = { case: c.name, package: c.pkg.name, expected: c.expect.join('|'), outcome: '', status: 'inconclusive', pass: false, seconds: 0, detail: '', record: '', attempts: 0 };
  const fullName = `qualify ${args.mode} ${component} ${c.name}`;
  const report = allure.start({
    name: c.name,
    fullName,
    labels: { station: args.station, parentSuite: 'qualify', suite: `${component} ${next.version}`, subSuite: `from ${c.from.version}`, feature: 'release qualification', story: c.kind, tag: args.mode },
    parameters: { station: args.station, 'source version': c.from.version, 'target version': c.pkg.version, 'package type': c.pkg.type, 'image sha256': next.sha256.slice(0, 12) },
    description: `${args.mode} mode: ${c.pkg.name} (${c.pkg.size} bytes) from ${c.from.version}; expected ${c.expect.join(' or ')}${c.faults.length ? `; faults ${c.faults.join(', ')}` : ''}`,
  });
  let judged;
  for (let attempt = 0; attempt <= retries; attempt++) {
    row.attempts = attempt + 1;
    if (!station) {
      judged = { status: 'inconclusive', outcome: 'not run', detail: `the station did not open: ${openError?.message}\n${DOCTOR_HINT(args.station)}`, retry: false, ...(openError ? { error: { name: openError.name, kind: openError.kind ?? 'internal', message: openError.message } } : {}) };
      break;
    }
    if (c.needs && !station.power.can(c.needs[0], c.needs[1])) {
      judged = { status: 'skipped', outcome: 'skipped', detail: `${args.station} has no ${c.needs[1]} supply line for the fault`, retry: false };
      break;
    }
    // A station with an MCU console gets the case's console-timed faults, when it has some.
    const faults = station.mcu?.console && c.consoleFaults ? c.consoleFaults : c.faults;
    try {
      const run = await report.step(attempt === 0 ? 'run' : `run again (attempt ${attempt + 1}) on a reopened station`, () => mode.run(station, c, report, releases, faults));
      const file = path.join(outDir, `${String(i + 1).padStart(2, '0')}-${c.pkg.name}${c.tag ? `-${c.tag}` : ''}.json`);
      await fs.writeFile(file, serializeRunRecord(run));
      row.record = path.relative(root, file);
      judged = judgeRun(run, { holds: c.holds === c.from ? 'current' : 'target', holdsVersion: c.holds.version, faults: faults.map((f) => formatFault(parseFault(f))) }, args.mode);
    } catch (err) {
      judged = judgeError(err, args.station);
    }
    if (!judged.retry) break;
    // The station's equipment failed: bring it back (OpenOCD, the port, the sim) before judging anything.
    log(chalk.yellow(`  the station failed (${judged.error?.name ?? 'error'}): reopening it${attempt < retries ? ' and running the case again' : ''}`));
    await station.close().catch(() => undefined);
    ({ station, error: openError } = await open());
    if (attempt >= retries) break;
  }
  Object.assign(row, { outcome: judged.outcome, status: judged.status, pass: judged.status === 'passed', detail: judged.detail, ...(judged.error ? { error: judged.error } : {}) });
  row.seconds = Math.round((Date.now() - t0) / 1000);
  report.finish(judged.status, judged.detail, judged.error);
  results.push(row);
  log(`  ${label(row.status)} ${row.outcome} in ${row.seconds} s ${chalk.dim(row.detail.split('\n')[0])}`);
}
await station?.close();


// 4. The table, the reports and the exit code. A skipped case has not shown the image survives what it tests.
const result = overall(results.map((r) => r.status), { allowSkip: args['allow-skip'] === true });
const junitFile = path.join(outDir, 'junit.xml');
await fs.writeFile(junitFile, junitXml({
  name: `qualify ${component} ${next.version} on ${args.station}`,
  timestamp: new Date().toISOString().replace(/\.\d+Z$/, ''),
  hostname: os.hostname(),
  properties: { component, version: next.version, sha256: next.sha256, station: args.station, mode: args.mode, previous: previous.join(','), verdict: result.verdict },
  cases: results.map((r) => ({ name: r.case, classname: `qualify.${component}.${next.version}`, seconds: r.seconds, status: r.status, message: r.detail.split('\n')[0] || r.outcome, detail: `${r.detail}${r.record ? `\nrun record: ${r.record}` : ''}`, ...(r.error ? { errorName: r.error.name } : {}) })),
}));
await fs.writeJson(path.join(outDir, 'summary.json'), { image: { component, version: next.version, sha256: next.sha256 }, station: args.station, mode: args.mode, previous, verdict: result.verdict, exitCode: result.exitCode, results }, { spaces: 2 });
if (args.json) {
  process.stdout.write(`${JSON.stringify({ ok: result.exitCode === 0, verdict: result.verdict, exitCode: result.exitCode, allowSkip: args['allow-skip'] === true, image: next.version, sha256: next.sha256, station: args.station, mode: args.mode, results, records: outDir, junit: junitFile, allureResults: allure.resultsDir }, null, 2)}\n`);
} else {
  const w = (k) => Math.max(k.length, ...results.map((r) => String(r[k]).length));
  const cols = ['case', 'expected', 'outcome', 'seconds'];
  const first = Math.max(...results.map((r) => LABELS[r.status][0].length));
  const line = (r) => [label(r.status, first), ...cols.map((k) => String(r[k]).padEnd(w(k)))].join('  ').trimEnd();
  // Why a case was skipped, failed or is inconclusive goes under its row, so the table alone tells what to fix.
  const why = (r) => (r.pass || !r.detail ? '' : `\n      ${r.detail.split('\n').join('\n      ')}`);
  console.log(`\n${chalk.bold([' '.repeat(first), ...cols.map((k) => k.padEnd(w(k)))].join('  ').trimEnd())}\n${results.map((r) => line(r) + why(r)).join('\n')}`);
  const { counts } = result;
  if (counts.skipped > 0) console.log(`\n${counts.skipped} case(s) skipped: ${args['allow-skip'] ? 'accepted (--allow-skip)' : 'they count as failed; --allow-skip accepts them'}`);
  const verdict = {
    QUALIFIED: chalk.green('QUALIFIED'),
    'NOT QUALIFIED': chalk.red(`NOT QUALIFIED (${result.against} of ${results.length} failed)`),
    INCONCLUSIVE: chalk.yellow(`INCONCLUSIVE (${counts.inconclusive} of ${results.length} cases: the station failed, not the image; run rig doctor ${args.station}, then qualify again)`),
    'CONFIG ERROR': chalk.red('CONFIG ERROR'),
  }[result.verdict];
  const shown = (p) => (path.relative(here, p).startsWith('..') ? p : path.relative(here, p));
  console.log(`\nqualify: ${component} ${next.version}: ${verdict}; records in ${shown(outDir)}`);
  console.log(chalk.dim(`  junit.xml and allure-results/ there; the report: npm run report -- ${shown(allure.resultsDir)}`));
}
process.exitCode = result.exitCode;
