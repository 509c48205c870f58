#!/usr/bin/env -S npx tsx
// npm run farm:station -- [--station <name>] [--expect <name>] [--out <dir>] [--shard i/n]
//                          [--rerun-failed <report or results dir>] [--file <suite file>]... [--test <pattern>]
//                          [--timeout 100m] [--config <file>]
//
// What one CI job of a farm does on its Pi (ci/github/farm.yml, ci/gitlab/farm.gitlab-ci.yml): the night of
// ONE station, whose name comes from the runner's environment (RIG_STATION, set where the runner is
// registered), checked against the station the CI engine routed the job for (--expect, from its matrix):
// a runner that picked up another station's job says so and stops before touching anything. Then
// `npm run nightly` for that station (health check first, then the suites) with its results, logs and
// summary in <out>/<station>/, and `rig inventory` of the station into <out>/<station>/inventory.json. The
// CI step after this one, which always runs, is `rig power <station> safe`; the merge job builds the farm's
// report from every station's <out> (npm run farm:merge).
//
// Exit code: nightly's (0 passed, 1 tests failed, 69 the station failed its health check or its run did
// not complete); 2 when the runner names no station or another one than the job's.
import { $, chalk, fs, minimist, path } from 'zx';

const root = path.resolve(import.meta.dirname, '..');
const args = minimist(process.argv.slice(2), {
  string: ['station', 'expect', 'out', 'shard', 'rerun-failed', 'timeout', 'config', 'file', 'test'],
  boolean: ['help'],
  default: { out: 'farm-out', timeout: '100m' },
  unknown: (a) => (a.startsWith('-') ? usage(`unknown option ${a}`) : true),
});

function usage(message) {
  if (message) console.error(`farm:station: ${message}`);
  console.error(`usage: npm run farm:station -- [--station <name>] [--expect <name>] [--out <dir>] [--shard i/n]
                              [--rerun-failed <report or results dir>] [--file <suite file>]... [--test <pattern>]
                              [--timeout 100m] [--config <file>]
  the station: --station, else $RIG_STATION (the runner's environment); --shard, --rerun-failed, --file and
  --test go to npm run nightly`);
  process.exit(message ? 64 : 0);
}
if (args.help) usage();

const station = (args.station ?? process.env.RIG_STATION ?? '').trim();
if (!station) {
  console.error(`farm:station: this runner names no station: set RIG_STATION in the runner's environment (GitHub: the runner's .env file; GitLab: environment = ["RIG_STATION=…"] in config.toml), or pass --station`);
  process.exit(2);
}
if (args.expect !== undefined && args.expect !== station) {
  console.error(`farm:station: this runner serves station ${station}, but the job was routed for ${args.expect}: give each runner its station's name as a label (GitHub) or tag (GitLab), and only that one`);
  process.exit(2);
}

const fromUser = (p) => path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
const out = path.join(fromUser(args.out), station);
await fs.emptyDir(out);
const results = path.join(out, 'allure-results');
const logs = path.join(out, 'logs');
console.log(chalk.bold(`farm:station: ${station} on ${process.env.ALLURE_HOST_NAME || (await import('node:os')).hostname()}: nightly, then inventory; into ${path.relative(process.cwd(), out) || out}`));

const passThrough = [
  ...(args.shard ? ['--shard', args.shard] : []),
  ...(args['rerun-failed'] ? ['--rerun-failed', fromUser(args['rerun-failed'])] : []),
  ...(args.config ? ['--config', fromUser(args.config)] : []),
  ...[].concat(args.file ?? []).flatMap((f) => ['--file', fromUser(f)]),
  ...(args.test !== undefined ? ['--test', args.test] : []),
];
const night = await $({ cwd: root, nothrow: true, stdio: 'inherit' })`npx tsx scripts/nightly.mjs --stations ${station} --results ${results} --log-dir ${logs} --no-report --timeout ${args.timeout} ${passThrough}`;

// After the night, so that "last health" is tonight's; written even when the station cannot be read.
const inventory = await $({ cwd: root, nothrow: true, quiet: true })`node bin/rig.js inventory ${station} --json ${args.config ? ['--config', fromUser(args.config)] : []}`;
if (inventory.stdout.trim().startsWith('{')) await fs.writeFile(path.join(out, 'inventory.json'), inventory.stdout);
else console.error(`farm:station: rig inventory wrote no inventory (exit ${inventory.exitCode}): ${inventory.stderr.trim().split('\n').at(-1) ?? ''}`);

console.log(`farm:station: ${station}: nightly exit ${night.exitCode}; results, logs and inventory in ${path.relative(process.cwd(), out) || out}`);
process.exit(night.exitCode ?? 69);
