#!/usr/bin/env node
// One-shot, idempotent setup for a fresh Debian machine (or a Raspberry Pi OS one):
// the Debian packages the rig and its tests drive, then the npm packages, then the build.
// Plain Node on purpose: it runs before node_modules (and so zx) exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Why each is needed: socat makes the pty pairs of the virtual station; openocd is the real SWD/JTAG
// client (Debian's 0.12); xdelta3 encodes VCDIFF delta packages; chromium checks the Allure report;
// g++/make/python3 build onoff's epoll addon, which ships no prebuild.
const debianPackages = ['socat', 'openocd', 'xdelta3', 'chromium', 'g++', 'make', 'python3'];

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const did = [];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) fail(`${cmd} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}`);
}
function fail(msg) {
  console.error(`setup: ${msg}`);
  process.exit(1);
}
function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}
function sudo(cmd, args) {
  if (asRoot) run(cmd, args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  else run('sudo', ['DEBIAN_FRONTEND=noninteractive', cmd, ...args]);
}

const missing = debianPackages.filter((p) => !installed(p));
if (missing.length > 0) {
  console.log(`setup: installing Debian packages: ${missing.join(' ')}`);
  sudo('apt-get', ['update', '-qq']);
  sudo('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  did.push(`installed ${missing.join(', ')}`);
} else {
  console.log(`setup: Debian packages present: ${debianPackages.join(' ')}`);
}

// npm ci only when the lock file is newer than the installed tree: re-running setup is cheap.
const lock = path.join(root, 'package-lock.json');
const marker = path.join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  console.log('setup: installing npm packages (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  did.push('installed npm packages');
} else {
  console.log('setup: npm packages up to date');
}

console.log('setup: building (tsc)');
run('npm', ['run', '--silent', 'build']);
did.push('built dist/');

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
console.log(`setup: done (${pkg.name} ${pkg.version}): ${did.join('; ')}`);
