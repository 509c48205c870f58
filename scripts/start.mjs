#!/usr/bin/env node
// npm start [-- <vitest options, e.g. -t smoke>]
//
// The whole SOTA mission on the built-in virtual station, reported: empties reports/allure-results, runs
// every suite (the `suites` vitest project) against the virtual station, builds the Allure report with
// scripts/report.mjs, and prints where it is. Failing suites still get their report; the exit code is
// then the test run's. The suites' speed settings (time scale, baud rate) are in
// suites/support/station-config.ts; suites/README.md says what they are and how long a run takes.
import { $, chalk, fs, path } from 'zx';

const root = path.resolve(import.meta.dirname, '..');
const results = path.join(root, 'reports', 'allure-results');
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const say = (msg) => console.log(chalk.bold(`start: ${msg}`));

$.cwd = root;
$.verbose = false;

// 1. A report of this run alone: earlier results would show up as retries.
await fs.emptyDir(results);
say(`emptied ${path.relative(root, results)}`);

// 2. Every suite, on the virtual station whatever RIG_STATION says in this shell.
say('running the suites on the virtual station (npx vitest run --project suites)');
const tests = await $({ stdio: 'inherit', nothrow: true, env: { ...process.env, RIG_STATION: 'virtual', FORCE_COLOR: process.env.FORCE_COLOR ?? '1' } })`npx vitest run --project suites ${process.argv.slice(2)}`;
say(`suites ${tests.exitCode === 0 ? 'passed' : `failed (exit code ${tests.exitCode})`} after ${elapsed()}`);

// 3. The report, even (above all) when something failed.
const report = await $({ nothrow: true })`npx tsx scripts/report.mjs`;
process.stdout.write(report.stdout);
if (report.exitCode !== 0) {
  process.stderr.write(report.stderr);
  console.error(chalk.red(`start: the report could not be built (exit code ${report.exitCode})`));
  process.exit(report.exitCode ?? 1);
}
const index = report.stdout.trim().split('\n').at(-1)?.replace(/^report:\s*/, '') ?? path.join(root, 'reports', 'allure-report', 'index.html');
say(`done in ${elapsed()}`);
console.log(`\nThe report: ${index}\n  open it in a browser (it works from file://, no network needed)`);
process.exit(tests.exitCode ?? 1);
