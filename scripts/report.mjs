#!/usr/bin/env -S npx tsx
// npm run report [-- <allure-results dir>... [--dump <archive.zip>]... [--inventory <file>]... [--output <dir>]
//                    [--history <file>] [--history-limit <runs>] [--name <title>]]
//
// Builds the Allure 3 report (one self-contained index.html) from the suites' results — by default
// reports/allure-results, or several results directories and `allure run --dump` archives, one per Pi —
// with one environment per station and history across runs (reports/allurerc.ts), then removes the
// analytics tag Allure embeds and fails if the report would still load anything from off this machine.
// Each station's table in the report comes from the station records the suites leave in the results
// directories and from `rig inventory --json` files (--inventory, one per Pi of a farm).
// Runs under tsx (package.json) because it shares its helpers with the TypeScript tests.
import { $, fs, glob, minimist, path } from 'zx';
import { findRemoteReferences, stripThirdParty } from './report-lib/offline.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['dump', 'output', 'history', 'history-limit', 'name', 'inventory'],
  boolean: ['help'],
  alias: { o: 'output', h: 'help' },
  unknown: (a) => (a.startsWith('-') ? fail(`unknown option ${a} (see --help)`) : true),
});

function fail(message) {
  console.error(`report: ${message}`);
  process.exit(1);
}

if (args.help) {
  console.log(`usage: npm run report -- [<allure-results dir>...] [--dump <archive.zip or glob>]... [--inventory <file or glob>]...
                          [--output <dir>] [--history <file>] [--history-limit <runs>] [--name <title>]
  default results dir: reports/allure-results; default output: reports/allure-report;
  default history: reports/history/history.jsonl`);
  process.exit(0);
}

const historyLimit = args['history-limit'];
if (historyLimit !== undefined && !/^[1-9]\d*$/.test(historyLimit)) fail(`--history-limit: expected a number of runs, seen ${historyLimit}`);

// Paths on the command line are the user's: npm runs scripts from the package root, and says where the
// user was in INIT_CWD.
const here = process.env.INIT_CWD ?? process.cwd();
const fromUser = (p) => path.resolve(here, p);

// 1. What to read.
const resultsDirs = args._.length > 0 ? args._.map((d) => fromUser(String(d))) : [path.join(root, 'reports', 'allure-results')];
const dumpPatterns = [].concat(args.dump ?? []);
const dumps = [];
for (const pattern of dumpPatterns) {
  const matched = await glob(pattern, { absolute: true, cwd: here });
  if (matched.length === 0) fail(`no dump archive matches ${pattern}`);
  dumps.push(...matched.sort());
}
const inventories = [];
for (const pattern of [].concat(args.inventory ?? [])) {
  const matched = await glob(pattern, { absolute: true, cwd: here });
  if (matched.length === 0) fail(`no inventory file matches ${pattern}`);
  inventories.push(...matched.sort());
}
let resultFiles = 0;
for (const dir of resultsDirs) {
  if (!(await fs.pathExists(dir))) {
    // The default directory is missing only when no suite ran; an explicit one is a typo or a failed copy.
    fail(`no results directory ${dir}${args._.length === 0 ? ' (run the suites first: npm start, or npm test)' : ''}`);
  }
  resultFiles += (await fs.readdir(dir)).filter((n) => n.endsWith('-result.json')).length;
}
if (resultFiles === 0 && dumps.length === 0) {
  fail(`no test results in ${resultsDirs.join(', ')} (expected *-result.json files written by allure-vitest)`);
}

// 2. Where to write. The output is replaced as a whole, so refuse a directory that is not a report.
const output = args.output ? fromUser(args.output) : path.join(root, 'reports', 'allure-report');
if (await fs.pathExists(output)) {
  const entries = await fs.readdir(output);
  if (entries.length > 0 && !entries.includes('index.html')) {
    fail(`refusing to replace ${output}: it is not empty and holds no index.html, so it is not an Allure report`);
  }
  await fs.remove(output);
}
const history = args.history ? fromUser(args.history) : path.join(root, 'reports', 'history', 'history.jsonl');
await fs.ensureDir(path.dirname(history));

// 3. Generate.
const sources = [`${resultFiles} results in ${resultsDirs.length} director${resultsDirs.length === 1 ? 'y' : 'ies'}`];
if (dumps.length > 0) sources.push(`${dumps.length} dump archive${dumps.length === 1 ? '' : 's'}`);
if (inventories.length > 0) sources.push(`${inventories.length} inventor${inventories.length === 1 ? 'y' : 'ies'}`);
console.log(`report: generating from ${sources.join(' and ')}`);
const allure = path.join(root, 'node_modules', '.bin', 'allure');
const generate = await $({
  cwd: root,
  nothrow: true,
  quiet: true,
  env: {
    ...process.env,
    NO_COLOR: '1',
    SOTA_REPORT_RESULTS: JSON.stringify(resultsDirs),
    SOTA_REPORT_HISTORY: history,
    SOTA_REPORT_INVENTORY: JSON.stringify(inventories),
    ...(args.name ? { SOTA_REPORT_NAME: args.name } : {}),
  },
})`${allure} generate --config ${path.join(root, 'reports', 'allurerc.ts')} --output ${output} ${historyLimit ? ['--history-limit', historyLimit] : []} ${dumps.flatMap((d) => ['--dump', d])} ${resultsDirs}`.timeout('5m');
if (generate.exitCode !== 0 || !(await fs.pathExists(path.join(output, 'index.html')))) {
  process.stderr.write(generate.stdout + generate.stderr);
  fail(`allure generate exited with ${generate.exitCode ?? generate.signal} and wrote no ${path.join(output, 'index.html')}`);
}

// 4. Offline: remove the analytics tag, then prove nothing remote is left.
const files = (await glob('**/*.{html,htm,js,mjs,css}', { cwd: output, absolute: true })).sort();
const removed = [];
for (const file of files.filter((f) => /\.html?$/.test(f))) {
  const page = await fs.readFile(file, 'utf8');
  const cleaned = stripThirdParty(page);
  if (cleaned.removed.length > 0) {
    await fs.writeFile(file, cleaned.html);
    removed.push(...cleaned.removed.map((r) => `${path.relative(output, file)}: ${r}`));
  }
}
const remaining = [];
for (const file of files) {
  remaining.push(...findRemoteReferences(await fs.readFile(file, 'utf8'), path.relative(output, file)));
}
if (remaining.length > 0) {
  for (const r of remaining) console.error(`report: ${r.where} still references off-machine content: ${r.what}`);
  fail(`expected a report that loads nothing from off this machine; seen ${remaining.length} remote reference(s) after removing ${removed.length} element(s) — Allure's page template has changed: update scripts/report-lib/offline.ts`);
}

// 5. Say what was built and where.
const summary = JSON.parse(await fs.readFile(path.join(output, 'summary.json'), 'utf8'));
const byId = JSON.parse(await fs.readFile(path.join(output, 'test-results.json'), 'utf8')).byId ?? {};
const perEnvironment = new Map();
for (const tr of Object.values(byId)) perEnvironment.set(tr.environment, (perEnvironment.get(tr.environment) ?? 0) + 1);
const stats = summary.stats ?? {};
const statuses = ['passed', 'failed', 'broken', 'skipped', 'unknown'].filter((k) => stats[k]).map((k) => `${stats[k]} ${k}`);
const extras = ['retries', 'flaky'].filter((k) => stats[k]).map((k) => `${stats[k]} ${k}`);
const counts = [statuses.join(', '), ...(extras.length > 0 ? [extras.join(', ')] : [])].join('; ');
const runs = (await fs.pathExists(history)) ? (await fs.readFile(history, 'utf8')).split('\n').filter(Boolean).length : 0;
console.log(`report: ${stats.total ?? 0} tests (${counts}) in ${perEnvironment.size} environment(s): ${[...perEnvironment].map(([env, n]) => `${env} (${n})`).join(', ')}`);
console.log(`report: removed ${removed.length} third-party element(s) (analytics); nothing in the report loads from off this machine`);
const shown = path.relative(root, history);
console.log(`report: history holds ${runs} run(s): ${shown.startsWith('..') ? history : shown}`);
console.log(`report: ${path.join(output, 'index.html')}`);
