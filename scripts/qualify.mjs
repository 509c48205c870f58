#!/usr/bin/env -S npx tsx
// npm run qualify -- --image <new.bin> [--previous 1_0_0,1_1_0] [--station virtual] [--config <file>]
//                    [--cases full,delta,interrupted,corrupt,rollback] [--allow-skip] [--json]
//                    [--write-packages <dir>]
//
// Release qualification of a new MCU image: from each previously released version (images of
// fixtures/manifest.json, or RIG_MANIFEST) the new image must install as a full package and as a delta,
// survive a module power cut during the cloud → module download and another in the middle of the block
// reads, refuse a package whose image is broken (the old version stays, verified by read-back), and the
// release must be revertible (a plan back to the previous version). The result is a pass/fail table, the run
// records in reports/runs/qualify-<time>/, and an exit code: 0 every case passed, 1 a case failed or was
// skipped (a station that cannot cut module power has not qualified the image against power cuts; pass
// --allow-skip to accept that), 2 invalid config (also a declared plan a case needs that is missing), 64 bad
// command line, 69 the station could not be opened.
//
// --write-packages <dir> writes the package files every case delivers and a `plans: [...]` block to paste
// into a hardware station's config, then exits: on a bench the plans must be created in Developer Center's
// console by hand (there is no public API for plans), and the rig matches them by SHA-256.
//
// It drives rig/sota directly on one station (the same flow as `rig upgrade` and the suites), rather than a
// vitest selection, because its subject is an image that is not in the fixtures: its packages (full, a
// VCDIFF delta from each previous version, a broken copy) are built here, in memory, and handed to the
// station's plan source — uploaded through the API on the virtual station; on a bench they must have been
// created in Developer Center and declared in the config (the rig then matches them by SHA-256).
// Runs under tsx (like report.mjs) because it imports the rig's TypeScript modules.
import { chalk, fs, minimist, path } from 'zx';
import { loadConfig } from '../rig/config/index.ts';
import { digestOf, encodeDelta, Image, loadManifest, Package } from '../rig/images/index.ts';
import { ensureBaseline, formatFault, parseFault, runProxyUpgrade, serializeRunRecord } from '../rig/sota/index.ts';
import { openStation } from '../rig/station/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const here = process.env.INIT_CWD ?? process.cwd();
const CASES = ['full', 'delta', 'interrupted', 'corrupt', 'rollback'];
const args = minimist(process.argv.slice(2), {
  string: ['image', 'previous', 'station', 'config', 'cases', 'write-packages'],
  boolean: ['help', 'json', 'allow-skip'],
  default: { station: 'virtual' },
  unknown: (a) => (a.startsWith('-') ? usage(`unknown option ${a}`) : true),
});

function usage(message) {
  if (message) console.error(`qualify: ${message}`);
  console.error(`usage: npm run qualify -- [--image <new.bin>] [--previous <v1,v2>] [--station <name>] [--config <file>]
                         [--cases ${CASES.join(',')}] [--allow-skip] [--json] [--write-packages <dir>]
  default image: the newest image of the manifest; default previous: every other image of the manifest`);
  process.exit(message ? 64 : 0);
}
function fail(code, message) {
  console.error(`qualify: ${message}`);
  process.exit(code);
}
if (args.help) usage();

// 1. The new image and the versions it must upgrade from.
const firmware = await loadManifest(process.env.RIG_MANIFEST ? path.resolve(here, process.env.RIG_MANIFEST) : undefined);
const released = [...firmware.images.values()];
let next;
if (args.image) {
  const file = path.resolve(here, args.image);
  if (!(await fs.pathExists(file))) usage(`--image: no file ${file}`);
  try {
    next = Image.fromBytes(new Uint8Array(await fs.readFile(file)), firmware.headerOffset);
  } catch (err) {
    fail(1, `${file} is not a whole image: ${err.message}`);
  }
} else {
  next = released.at(-1);
}
const previous = args.previous ? String(args.previous).split(',').map((v) => v.trim()).filter(Boolean) : released.filter((i) => i.version !== next.version).map((i) => i.version);
for (const v of previous) if (!firmware.images.has(v)) usage(`--previous: no image ${v} in ${firmware.manifestPath} (have ${[...firmware.images.keys()].join(', ')})`);
if (previous.length === 0) usage('no previous version to upgrade from');
const cases = args.cases ? String(args.cases).split(',').map((c) => c.trim()) : CASES;
for (const c of cases) if (!CASES.includes(c)) usage(`--cases: unknown case ${c} (have ${CASES.join(', ')})`);

// 2. The packages, built from the images (what a release engineer uploads).
const component = next.component;
const fullOf = (img, name = `full_${img.version}`) =>
  new Package(img.bytes, { name, component, version: img.version, type: 'full', sourceVersion: undefined, declared: digestOf(img.bytes), source: undefined, target: { version: img.version, size: img.size, sha256: img.sha256 } });
async function deltaOf(from, to) {
  const bytes = await encodeDelta(from.bytes, to.bytes);
  return new Package(bytes, {
    name: `delta_${from.version}_to_${to.version}`, component, version: to.version, type: 'delta', sourceVersion: from.version, declared: digestOf(bytes),
    source: { version: from.version, size: from.size, sha256: from.sha256 }, target: { version: to.version, size: to.size, sha256: to.sha256 },
  });
}
/** The new image with three body bytes flipped: the file matches what the cloud announces; the image inside does not hold together. */
function brokenOf(img) {
  const bytes = Uint8Array.from(img.bytes);
  for (const at of [0x300, Math.floor(bytes.length / 2), bytes.length - 16]) bytes[at] ^= 0xff;
  return new Package(bytes, { name: `broken_${img.version}`, component, version: img.version, type: 'full', sourceVersion: undefined, declared: digestOf(bytes), source: undefined, target: { version: img.version, size: img.size, sha256: img.sha256 } });
}

const plan = [];
for (const v of previous) {
  const from = firmware.image(v);
  const full = fullOf(next);
  const half = Math.floor(full.size / 2048) * 1024;
  if (cases.includes('full')) plan.push({ name: `full ${v} → ${next.version}`, from, pkg: full, expect: ['upgraded'], target: next });
  if (cases.includes('delta')) plan.push({ name: `delta ${v} → ${next.version}`, from, pkg: await deltaOf(from, next), expect: ['upgraded'], target: next });
  if (cases.includes('interrupted')) {
    // Two moments a field unit loses power: while the module fetches the file (the download restarts from
    // 0 after the reboot) and while the MCU reads it (the reads resume or restart). The first is keyed to
    // 10701 (download started), not to a 10702: 10702 comes every 5 s, so a fast download may see none.
    const needs = ['cycle', 'module'];
    plan.push({ name: `interrupted download (cloud → module) ${v} → ${next.version}`, tag: 'cut-download', from, pkg: full, expect: ['upgraded'], target: next, faults: ['event=10701:power-cycle-module=500'], needs });
    plan.push({ name: `interrupted block reads ${v} → ${next.version}`, tag: 'cut-reads', from, pkg: full, expect: ['upgraded'], target: next, faults: [`offset=${half}:power-cycle-module=500`], needs });
  }
  if (cases.includes('corrupt')) plan.push({ name: `broken image ${v} → ${next.version} refused`, from, pkg: brokenOf(next), expect: ['failed-intact'], target: from });
  if (cases.includes('rollback')) plan.push({ name: `rollback ${next.version} → ${v}`, from: next, pkg: fullOf(from), expect: ['upgraded'], target: from });
}

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
  fail(err.kind === 'config' ? 2 : 70, err.message);
}
const open = async () => {
  try {
    return await openStation(args.station, { config });
  } catch (err) {
    fail(err.kind === 'config' ? 2 : 69, err.message);
  }
};
const outDir = path.join(root, 'reports', 'runs', `qualify-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(outDir);
const log = (line) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);
log(`qualify: ${component} ${next.version} (${next.size} bytes, sha256 ${next.sha256.slice(0, 12)}…) from ${previous.join(', ')} on ${args.station}: ${plan.length} case(s)`);

let station = await open();
const results = [];
for (const [i, c] of plan.entries()) {
  const t0 = Date.now();
  log(chalk.cyan(`[${i + 1}/${plan.length}] ${c.name}`));
  const row = { case: c.name, package: c.pkg.name, expected: c.expect.join('|'), outcome: '', pass: false, seconds: 0, detail: '', record: '' };
  try {
    if (c.needs && !station.power.can(c.needs[0], c.needs[1])) {
      row.outcome = 'skipped';
      row.detail = `${args.station} has no ${c.needs[1]} supply line for the fault`;
    } else {
      await ensureBaseline(station, c.from);
      const run = await runProxyUpgrade(station, { plan: { component, package: c.pkg }, current: c.from, faults: (c.faults ?? []).map(parseFault), expect: c.expect });
      const file = path.join(outDir, `${String(i + 1).padStart(2, '0')}-${c.pkg.name}${c.tag ? `-${c.tag}` : ''}.json`);
      await fs.writeFile(file, serializeRunRecord(run));
      const v = run.verdict;
      const readbackOk = run.readback !== null && (c.target === c.from ? run.readback.matchesCurrent : run.readback.matchesTarget);
      const faultsOk = (c.faults ?? []).every((f) => run.fired.some((x) => x.fault === formatFault(parseFault(f))));
      // A run the station's config could not make (a plan not declared) is the config's fault, not the image's.
      row.outcome = v.failure?.kind === 'config' ? 'config error' : (v.outcome ?? `failure (${v.failure?.type})`);
      row.pass = v.ok && readbackOk && faultsOk;
      row.detail = !v.ok ? v.summary : !readbackOk ? `read-back does not hold ${c.target.version}` : !faultsOk ? 'the fault never fired' : (run.readback?.comparison ?? '');
      row.record = path.relative(root, file);
    }
  } catch (err) {
    row.outcome = err.kind === 'config' ? 'config error' : 'error';
    // The whole message: a missing declared plan names the package's sha256 on its second line.
    row.detail = String(err.message);
    if (err.kind === 'infrastructure') {
      await station.close().catch(() => undefined);
      station = await open();
    }
  }
  row.seconds = Math.round((Date.now() - t0) / 1000);
  results.push(row);
  log(`  ${row.pass ? chalk.green('PASS') : row.outcome === 'skipped' ? chalk.yellow('SKIP') : chalk.red('FAIL')} ${row.outcome} in ${row.seconds} s ${chalk.dim(row.detail)}`);
}
await station.close();

// 4. The table and the exit code. A skipped case has not shown the image survives what it tests.
const failed = results.filter((r) => !r.pass && !(r.outcome === 'skipped' && args['allow-skip']));
const configErrors = results.filter((r) => r.outcome === 'config error');
await fs.writeJson(path.join(outDir, 'summary.json'), { image: { component, version: next.version, sha256: next.sha256 }, station: args.station, previous, results }, { spaces: 2 });
if (args.json) {
  process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, allowSkip: args['allow-skip'] === true, image: next.version, station: args.station, results, records: outDir }, null, 2)}\n`);
} else {
  const w = (k) => Math.max(k.length, ...results.map((r) => String(r[k]).length));
  const cols = ['case', 'expected', 'outcome', 'seconds'];
  const line = (r) => [r.pass ? chalk.green('PASS') : r.outcome === 'skipped' ? chalk.yellow('SKIP') : chalk.red('FAIL'), ...cols.map((k) => String(r[k]).padEnd(w(k)))].join('  ').trimEnd();
  // Why a case was skipped or failed goes under its row, so the table alone tells what to fix.
  const why = (r) => (r.pass || !r.detail ? '' : `\n      ${r.detail.split('\n').join('\n      ')}`);
  console.log(`\n${chalk.bold(['    ', ...cols.map((k) => k.padEnd(w(k)))].join('  ').trimEnd())}\n${results.map((r) => line(r) + why(r)).join('\n')}`);
  const skipped = results.filter((r) => r.outcome === 'skipped').length;
  if (skipped > 0) console.log(`\n${skipped} case(s) skipped: ${args['allow-skip'] ? 'accepted (--allow-skip)' : 'they count as failed; --allow-skip accepts them'}`);
  console.log(`\nqualify: ${component} ${next.version}: ${failed.length === 0 ? chalk.green('QUALIFIED') : chalk.red(`NOT QUALIFIED (${failed.length} of ${results.length} failed)`)}; records in ${path.relative(root, outDir)}`);
}
process.exitCode = configErrors.length > 0 ? 2 : failed.length === 0 ? 0 : 1;
