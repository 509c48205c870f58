#!/usr/bin/env -S npx tsx
// npm run farm:merge -- <artifacts dir>... [--history <file>] [--output <dir>] [--junit <file>]
//                        [--summary <file>] [--name <title>]
//
// The farm's merge job (ci/github/farm.yml, ci/gitlab/farm.gitlab-ci.yml): ONE Allure report for every
// station of every Pi, from the artifacts their jobs uploaded (npm run farm:station writes them: an
// allure-results directory and an inventory.json per station). It finds every allure-results directory and
// every inventory under the given directories, builds the report with npm run report (one environment per
// station, a station name used on several Pis split per Pi, so no result is taken for a retry of another
// host's; each station's table from the inventories; history appended to --history, which the CI job keeps
// between nights), and writes JUnit XML for the CI's test dashboard. --summary appends a Markdown table
// (for $GITHUB_STEP_SUMMARY).
//
// Exit code: 0 when the report was built (test failures are the station jobs' to report); 1 when there were
// no results or the report could not be built; 64 for a bad command line.
import { $, chalk, fs, minimist, path } from 'zx';
import { junitFromResults } from './report-lib/junit.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['history', 'output', 'junit', 'summary', 'name'],
  boolean: ['help'],
  default: { output: 'farm-report', name: 'sota-rig farm' },
  unknown: (a) => (a.startsWith('-') ? usage(`unknown option ${a}`) : true),
});

function usage(message) {
  if (message) console.error(`farm:merge: ${message}`);
  console.error(`usage: npm run farm:merge -- <artifacts dir>... [--history <file>] [--output <dir>] [--junit <file>]
                            [--summary <file>] [--name <title>]
  default output: farm-report (index.html, junit.xml); history: <output>/../history/history.jsonl`);
  process.exit(message ? 64 : 0);
}
if (args.help) usage();
if (args._.length === 0) usage('which artifacts? (the directories the station jobs uploaded)');

const fromUser = (p) => path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
const output = fromUser(args.output);
const history = args.history ? fromUser(args.history) : path.join(path.dirname(output), 'history', 'history.jsonl');
const junit = args.junit ? fromUser(args.junit) : path.join(output, 'junit.xml');

// 1. What the station jobs left: results directories and inventories, however the CI laid them out.
const resultsDirs = [];
const inventories = [];
async function walk(dir, depth) {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new Error(`cannot read ${dir}: ${err.message}`, { cause: err });
  }
  if (entries.some((e) => e.isFile() && e.name.endsWith('-result.json'))) resultsDirs.push(dir);
  for (const e of entries) {
    if (e.isFile() && (e.name === 'inventory.json' || e.name.endsWith('.inventory.json'))) inventories.push(path.join(dir, e.name));
    // A station record directory inside a results directory is not a results directory of its own.
    if (e.isDirectory() && depth < 8 && e.name !== 'stations' && e.name !== 'node_modules') await walk(path.join(dir, e.name), depth + 1);
  }
}
for (const a of args._) {
  const dir = fromUser(String(a));
  if (!(await fs.pathExists(dir))) {
    console.error(`farm:merge: no artifacts directory ${dir}`);
    process.exit(1);
  }
  await walk(dir, 0);
}
resultsDirs.sort();
inventories.sort();
if (resultsDirs.length === 0) {
  console.error(`farm:merge: no allure-results under ${args._.join(', ')} (expected the station jobs' artifacts: <station>/allure-results/*-result.json)`);
  process.exit(1);
}
console.log(chalk.bold(`farm:merge: ${resultsDirs.length} results director${resultsDirs.length === 1 ? 'y' : 'ies'}, ${inventories.length} inventor${inventories.length === 1 ? 'y' : 'ies'}`));
for (const d of resultsDirs) console.log(`  results   ${path.relative(process.cwd(), d) || d}`);
for (const f of inventories) console.log(`  inventory ${path.relative(process.cwd(), f) || f}`);

// 2. The report.
await fs.ensureDir(path.dirname(history));
const report = await $({ cwd: root, nothrow: true, stdio: 'inherit' })`npx tsx scripts/report.mjs ${resultsDirs} ${inventories.flatMap((f) => ['--inventory', f])} --output ${output} --history ${history} --name ${args.name}`;
if (report.exitCode !== 0) {
  console.error(`farm:merge: the report was not built (npm run report exited ${report.exitCode})`);
  process.exit(1);
}

// 3. JUnit XML, and the summary.
const { xml, suites } = await junitFromResults(resultsDirs, args.name);
await fs.ensureDir(path.dirname(junit));
await fs.writeFile(junit, xml);
const rows = suites.map((s) => `| ${s.name} | ${s.tests} | ${s.tests - s.failures - s.errors - s.skipped} | ${s.failures} | ${s.errors} | ${s.retried} |`);
const table = ['| environment | tests | passed | failed | broken | retried |', '|---|---|---|---|---|---|', ...rows].join('\n');
console.log(`farm:merge: JUnit XML ${path.relative(process.cwd(), junit) || junit}\n${table}`);
if (args.summary) await fs.appendFile(fromUser(args.summary), `## ${args.name}\n\n${table}\n\nReport: ${path.join(output, 'index.html')}\n`);
console.log(`farm:merge: ${path.join(output, 'index.html')}`);
