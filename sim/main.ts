// The virtual station process. It starts each part, prints ONE JSON line on stdout describing the station
// (ports, URLs), logs to stderr, and on SIGINT/SIGTERM closes every part (ptys and sockets removed, socat
// gone) and exits 0. A part is `start…(opts, ctx) → { info, close() }`; adding one is a few lines below.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startAdmin } from './admin.ts';
import { SimClock } from './clock.ts';
import { crcAlgorithms, type CrcAlgorithm } from './cloud/hash.ts';
import { startCloud } from './cloud/index.ts';
import { startFirmataBoard } from './firmata/board.ts';
import { startJtagPart } from './jtag/part.ts';
import { startModule } from './module/index.ts';
import { defaultModuleOptions, defaultTimers, urcPorts } from './module/module.ts';
import { Rails } from './rails.ts';
import { targetNames } from './target/profiles.ts';

interface Part {
  info: Record<string, unknown>;
  close(): Promise<void>;
}

const { values: argv } = parseArgs({
  options: {
    baud: { type: 'string', default: '115200' },
    'time-scale': { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'state-dir': { type: 'string' },
    'run-dir': { type: 'string' },
    imei: { type: 'string' },
    'module-free-space': { type: 'string', default: String(defaultModuleOptions.freeSpace) },
    'download-rate': { type: 'string', default: '100000' },
    'boot-ms': { type: 'string', default: String(defaultModuleOptions.bootMs) },
    'connect-ms': { type: 'string', default: String(defaultModuleOptions.connectMs) },
    'cloud-latency-ms': { type: 'string', default: '200' },
    'url-delay-ms': { type: 'string', default: '1000' },
    'retry-delay-ms': { type: 'string', default: '5000' },
    'push-interval-ms': { type: 'string', default: '600000' },
    'download-error-budget': { type: 'string', default: String(defaultModuleOptions.downloadErrorBudget) },
    'max-line-length': { type: 'string', default: String(defaultModuleOptions.maxLineLength) },
    // Readings of protocol/quecthing-at.md §9 that hardware has not settled; defaults are the doc's likeliest.
    'max-read-length': { type: 'string', default: String(defaultModuleOptions.maxReadLength) },
    'oversize-read': { type: 'string', default: defaultModuleOptions.oversizeRead },
    'read-trailer': { type: 'string', default: '\\r\\n\\r\\nOK\\r\\n' },
    'wrong-state-answer': { type: 'string', default: defaultModuleOptions.wrongStateAnswer },
    'event-10707': { type: 'string', default: defaultModuleOptions.event10707 },
    'qind-fota-end': { type: 'string', default: defaultModuleOptions.qindFotaEnd },
    crc: { type: 'string', default: 'crc32' },
    'bootstrap-auth': { type: 'string', default: 'on' },
    'request-needs-connection': { type: 'string', default: 'on' },
    'honour-urcport': { type: 'string', default: 'on' },
    'urcport-default': { type: 'string', default: 'usbat' },
    'uart1-baud': { type: 'string', default: '115200' },
    'trace-at': { type: 'boolean', default: false },
    'exit-on-stdin-close': { type: 'boolean', default: false },
    // The --run-dir was made for this sim alone: it removes it when it stops, so a parent that died without
    // cleaning up (SIGKILL) leaves no directory behind.
    'remove-run-dir': { type: 'boolean', default: false },
    // Parts added by other issues pass their options through here.
    target: { type: 'string', default: 'stm32f1x' },
    'flash-image': { type: 'string' },
    'flash-size-kib': { type: 'string' },
  },
  strict: true,
  allowPositionals: false,
});

function usage(msg: string): never {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(64);
}
function num(name: keyof typeof argv, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = argv[name] as string;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) usage(`--${name} must be a number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return v;
}
function choice<T extends string>(name: keyof typeof argv, allowed: readonly T[]): T {
  const v = argv[name] as string;
  if (!allowed.includes(v as T)) usage(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}
const onOff = (name: keyof typeof argv): boolean => choice(name, ['on', 'off'] as const) === 'on';
const unescape = (s: string): string => s.replace(/\\r/g, '\r').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');

/** A plausible IMEI (TAC 86…, Luhn check digit) derived from the seed, so runs are reproducible. */
function imeiFromSeed(seed: number): string {
  let x = (seed >>> 0) + 0x6d2b79f5;
  let digits = '86';
  while (digits.length < 14) {
    x = Math.imul(x ^ (x >>> 15), x | 1) >>> 0;
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    digits += String((x >>> 0) % 10);
  }
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    let d = Number(digits[i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits + String((10 - (sum % 10)) % 10);
}

// stdout and stderr are pipes to whoever started the sim, and they break (EPIPE) when it dies. A failed write
// must never reach the uncaught-exception handler: its report is one more write to the same broken stderr,
// and that loop once kept the sim at 100 % CPU with its signals, its stdin close and its close-down starved.
let stderrBroken = false;
const log = (msg: string): void => {
  if (stderrBroken || process.stderr.destroyed) return;
  try {
    process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  } catch {
    stderrBroken = true;
  }
};

const baud = num('baud', 0, 4_000_000);
const timeScale = num('time-scale', 1e-6, 1000);
const seed = num('seed', 0, 2 ** 32 - 1);
const imei = argv.imei ?? imeiFromSeed(seed);
if (!/^\d{15}$/.test(imei)) usage(`--imei must be 15 digits, got ${JSON.stringify(imei)}`);
const stateDir = argv['state-dir'] ? path.resolve(argv['state-dir']) : undefined;
const ownRunDir = (argv['run-dir'] === undefined || argv['remove-run-dir'] === true) && stateDir === undefined;
const runDir = argv['run-dir'] ? path.resolve(argv['run-dir']) : (stateDir ?? mkdtempSync(path.join(tmpdir(), 'sota-sim-')));

const clock = new SimClock(timeScale);
const rails = new Rails();
const parts: Part[] = [];
let stopping: Promise<void> | undefined;

async function closeAll(): Promise<void> {
  // Reverse start order: the module goes before the cloud it talks to, the admin server last.
  for (const part of [...parts].reverse()) {
    try {
      await part.close();
    } catch (err) {
      log(`sim: closing a part failed: ${(err as Error).message}`);
    }
  }
  clock.stopAll();
  if (ownRunDir) rmSync(runDir, { recursive: true, force: true });
}

let stopCode = 0;
/** Closes everything once; a second signal or a fault during the close waits for the same close. */
async function stop(code: number): Promise<never> {
  if (stopping === undefined) {
    stopCode = code;
    stopping = closeAll();
  }
  await stopping;
  process.exit(stopCode);
}
function fatal(msg: string): void {
  log(`sim: fatal: ${msg}`);
  void stop(1);
}

const onStdioError = (stream: 'stdout' | 'stderr'): void => {
  if (stream === 'stderr') stderrBroken = true;
  // Started with --exit-on-stdin-close, the sim belongs to its parent: a pipe to it breaking means it is gone.
  if (argv['exit-on-stdin-close']) void stop(0);
};
process.stdout.on('error', () => onStdioError('stdout'));
process.stderr.on('error', () => onStdioError('stderr'));
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGHUP', () => void stop(0));
process.on('uncaughtException', (err) => fatal(`uncaught exception: ${err.stack ?? String(err)}`));
process.on('unhandledRejection', (err) => fatal(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`));
if (argv['exit-on-stdin-close']) {
  process.stdin.on('end', () => void stop(0));
  process.stdin.resume();
}

try {
  const admin = await startAdmin(log);
  parts.push({ info: { admin: { url: admin.url } }, close: () => admin.close() });

  const cloud = startCloud(
    {
      latencyMs: num('cloud-latency-ms', 0),
      urlDelayMs: num('url-delay-ms', 0),
      retryDelayMs: num('retry-delay-ms', 0),
      downloadRate: num('download-rate', 1),
      pushIntervalMs: num('push-interval-ms', 0),
      crcAlgorithm: choice('crc', crcAlgorithms) as CrcAlgorithm,
    },
    { clock, admin, log },
  );
  parts.push(cloud);

  parts.push(
    await startModule(
      {
        baud,
        uart1Baud: num('uart1-baud', 0, 4_000_000),
        urcPortDefault: choice('urcport-default', urcPorts),
        runDir,
        stateDir,
        module: {
          imei,
          bootMs: num('boot-ms', 0),
          connectMs: num('connect-ms', 0),
          freeSpace: num('module-free-space', 1),
          timers: defaultTimers,
          downloadErrorBudget: num('download-error-budget', 0),
          maxLineLength: num('max-line-length', 16, 1_000_000),
          maxReadLength: num('max-read-length', 1, 1_000_000),
          oversizeRead: choice('oversize-read', ['truncate', 'error'] as const),
          readTrailer: unescape(argv['read-trailer']!),
          wrongStateAnswer: argv['wrong-state-answer']!,
          event10707: choice('event-10707', ['flag0', 'flag', 'none'] as const),
          qindFotaEnd: choice('qind-fota-end', ['none', 'before', 'after'] as const),
          bootstrapAuth: onOff('bootstrap-auth'),
          requestNeedsConnection: onOff('request-needs-connection'),
          honourUrcPort: onOff('honour-urcport'),
          traceAt: argv['trace-at'] === true,
        },
      },
      { clock, rails, cloud: cloud.cloud, admin, log, fatal },
    ),
  );

  // The relay board: every rail through an NC contact (a board reset or unplug leaves the station powered
  // and out of reset), so the station's config says relay: 'NC' for these pins.
  const firmata = await startFirmataBoard({ rails, pins: { moduleVbat: 2, moduleResetN: 3, targetVdd: 4, targetNrst: 5 }, dir: runDir, name: 'firmata' });
  parts.push({ info: { firmata: { port: firmata.info.port, pins: firmata.info.pins, contacts: firmata.info.contacts } }, close: () => firmata.close() });

  // The STM32 behind its remote_bitbang JTAG server and a Bus Pirate on a pty, on the targetVdd/targetNrst rails.
  const jtag = await startJtagPart(
    {
      target: choice('target', targetNames),
      flashImage: argv['flash-image'],
      flashSizeKiB: argv['flash-size-kib'] === undefined ? undefined : num('flash-size-kib', 2, 1024),
    },
    { rails, admin, log, runDir },
  );
  parts.push(jtag);

  // Further parts (JTAG target, Firmata board, UART taps) start here and push themselves onto `parts`.

  const line: Record<string, unknown> = {};
  for (const part of parts) Object.assign(line, part.info);
  process.stdout.write(`${JSON.stringify(line)}\n`);
  log(`sim: ready (baud ${baud}, time scale ${timeScale}, IMEI ${imei}, state ${stateDir ?? 'in memory'})`);
} catch (err) {
  fatal(`start-up failed: ${(err as Error).message}`);
}
