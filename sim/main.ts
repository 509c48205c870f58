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
import { defaultMcuOptions } from './mcu/firmware.ts';
import { startMcuPart } from './mcu/index.ts';
import { startModule } from './module/index.ts';
import { defaultModuleOptions, defaultTimers, urcPorts } from './module/module.ts';
import { Rails } from './rails.ts';
import { targetNames } from './target/profiles.ts';

interface Part {
  info: Record<string, unknown>;
  close(): Promise<void>;
}

// Every option with its default and what it means: `--help` prints this table, so it cannot fall behind.
const options = {
  baud: { type: 'string', default: '115200', help: 'pacing of the module USB AT pty, bits/s (10 bits a byte, both directions); 0 = unpaced' },
  'time-scale': { type: 'string', default: '1', help: 'wall ms per protocol ms for every timer (0.01 = 100x faster)' },
  seed: { type: 'string', default: '1', help: 'seed of the IMEI (unless --imei)' },
  'state-dir': { type: 'string', help: 'directory for the module NV state (survives restarts); default in memory' },
  'run-dir': { type: 'string', help: 'where the pty links live; default a temp dir removed at exit' },
  imei: { type: 'string', help: '15-digit IMEI; default derived from --seed' },
  'module-free-space': { type: 'string', default: String(defaultModuleOptions.freeSpace), help: 'bytes per download piece (smaller than a file: several pieces)' },
  'download-rate': { type: 'string', default: '100000', help: 'bytes per protocol second from the cloud' },
  'boot-ms': { type: 'string', default: String(defaultModuleOptions.bootMs), help: 'module power-on to RDY, protocol ms' },
  'connect-ms': { type: 'string', default: String(defaultModuleOptions.connectMs), help: 'AT+QIOTREG to 2,10200, protocol ms' },
  'cloud-latency-ms': { type: 'string', default: '200', help: 'cloud answer latency, protocol ms' },
  'url-delay-ms': { type: 'string', default: '1000', help: 'confirmation to download URL, protocol ms' },
  'retry-delay-ms': { type: 'string', default: '5000', help: 'DOWNLOADERROR to the URL again, protocol ms' },
  'push-interval-ms': { type: 'string', default: '600000', help: 'push cadence of "push actively" plans, protocol ms' },
  'download-error-budget': { type: 'string', default: String(defaultModuleOptions.downloadErrorBudget), help: 'more consecutive download errors than this: 10706' },
  'max-line-length': { type: 'string', default: String(defaultModuleOptions.maxLineLength), help: 'longer AT command lines are discarded and answered ERROR' },
  // Readings of docs/protocol.md §9 that hardware has not settled; defaults are the doc's likeliest.
  'max-read-length': { type: 'string', default: String(defaultModuleOptions.maxReadLength), help: 'largest AT+QIOTOTARD length' },
  'oversize-read': { type: 'string', default: defaultModuleOptions.oversizeRead, help: 'truncate|error: a longer AT+QIOTOTARD' },
  'read-trailer': { type: 'string', default: '\\r\\n\\r\\nOK\\r\\n', help: 'bytes between AT+QIOTOTARD data and OK (\\r, \\n escapes)' },
  'wrong-state-answer': { type: 'string', default: defaultModuleOptions.wrongStateAnswer, help: 'answer to QIOTUPDATE/QIOTOTARD in the wrong OTA state' },
  'event-10707': { type: 'string', default: defaultModuleOptions.event10707, help: 'flag0|flag|none: the 10707 payload of multi-component plans' },
  'qind-fota-end': { type: 'string', default: defaultModuleOptions.qindFotaEnd, help: 'none|before|after: +QIND: "FOTA","END",0 around 10705' },
  crc: { type: 'string', default: 'crc32', help: 'crc32|crc32-mpeg2: the CRC in 10701 (the virtual MCU checks the same)' },
  'bootstrap-auth': { type: 'string', default: 'on', help: 'on|off: 1,10200 on a DK first connection' },
  'request-needs-connection': { type: 'string', default: 'on', help: 'on|off: AT+QIOTOTAREQ answers ERROR unless QIOTSTATE is 8' },
  'honour-urcport': { type: 'string', default: 'on', help: 'on|off: +QIOTEVT follows AT+QURCCFG="urcport" (off: on both channels)' },
  'urcport-default': { type: 'string', default: 'usbat', help: `${urcPorts.join('|')}: factory value of AT+QURCCFG="urcport"` },
  'uart1-baud': { type: 'string', default: '115200', help: 'the module main UART to the MCU (and its taps), bits/s; 0 = unpaced' },
  'trace-at': { type: 'boolean', default: false, help: 'log every AT command line and URC to stderr (secrets masked)' },
  'exit-on-stdin-close': { type: 'boolean', default: false, help: 'stop when stdin closes (the parent is gone)' },
  // The --run-dir was made for this sim alone: it removes it when it stops, so a parent that died without
  // cleaning up (SIGKILL) leaves no directory behind.
  'remove-run-dir': { type: 'boolean', default: false, help: 'remove a given --run-dir at exit too' },
  target: { type: 'string', default: 'stm32f1x', help: `${targetNames.join('|')}: the STM32 behind the JTAG server` },
  'flash-image': { type: 'string', help: 'raw binary preloaded at the start of the target flash' },
  'flash-size-kib': { type: 'string', help: 'target flash size, KiB; default the part largest' },
  mcu: { type: 'string', default: 'off', help: 'on|off: the virtual MCU, its UART taps and console, for dut mode (off: none of them, no "mcu" key)' },
  'mcu-battery': { type: 'string', default: String(defaultMcuOptions.batteryPercent), help: 'the MCU battery reading, percent (checked against a 10700 limit)' },
  'mcu-block-size': { type: 'string', default: String(defaultMcuOptions.blockSize), help: 'bytes per AT+QIOTOTARD the MCU reads' },
  'mcu-watchdog-ms': { type: 'string', default: String(defaultMcuOptions.watchdogMs), help: 'watchdog window, protocol ms (an image in trial must confirm within it)' },
  'console-baud': { type: 'string', default: '115200', help: 'the MCU debug console pty, bits/s; 0 = unpaced' },
  help: { type: 'boolean', short: 'h', default: false, help: 'print this list and exit' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; default?: string | boolean; short?: string; help: string }>;

function helpText(): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ' <v>' : ''}`;
    const def = 'default' in o && o.type === 'string' ? ` (default ${o.default})` : '';
    return `  ${flag.padEnd(32)} ${o.help}${def}`;
  });
  return `usage: sim [options]\nStarts the virtual station and prints one JSON line describing it (docs: README "The virtual module", docs/virtual-mcu.md).\n${rows.join('\n')}\n`;
}

function usage(msg: string): never {
  process.stderr.write(`sim: ${msg} (--help lists the options)\n`);
  process.exit(64);
}

let parsed: ReturnType<typeof parseArgs<{ options: typeof options; strict: true; allowPositionals: false }>>;
try {
  parsed = parseArgs({ options, strict: true, allowPositionals: false });
} catch (err) {
  // parseArgs's own messages are one clear sentence; the stack trace is of no use to whoever typed the option.
  usage((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
}
const argv = parsed.values;
if (argv.help) {
  process.stdout.write(helpText());
  process.exit(0);
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

// Every value is checked before anything starts: a bad option leaves nothing half started.
const cloudOptions = {
  latencyMs: num('cloud-latency-ms', 0),
  urlDelayMs: num('url-delay-ms', 0),
  retryDelayMs: num('retry-delay-ms', 0),
  downloadRate: num('download-rate', 1),
  pushIntervalMs: num('push-interval-ms', 0),
  crcAlgorithm: choice('crc', crcAlgorithms) as CrcAlgorithm,
};
const uart1Baud = num('uart1-baud', 0, 4_000_000);
const moduleOptions = {
  baud,
  uart1Baud,
  urcPortDefault: choice('urcport-default', urcPorts),
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
};
const jtagOptions = {
  target: choice('target', targetNames),
  flashImage: argv['flash-image'],
  flashSizeKiB: argv['flash-size-kib'] === undefined ? undefined : num('flash-size-kib', 2, 1024),
};
const mcuOn = onOff('mcu');
const mcuOptions = {
  consoleBaud: num('console-baud', 0, 4_000_000),
  mcu: {
    ...defaultMcuOptions,
    batteryPercent: num('mcu-battery', 0, 100),
    blockSize: num('mcu-block-size', 1, 1_000_000),
    watchdogMs: num('mcu-watchdog-ms', 1, 3_600_000),
    crcAlgorithm: cloudOptions.crcAlgorithm,
    uartBaud: uart1Baud,
    timeScale,
  },
};

const ownRunDir = (argv['run-dir'] === undefined || argv['remove-run-dir'] === true) && stateDir === undefined;
const runDir = argv['run-dir'] ? path.resolve(argv['run-dir']) : (stateDir ?? mkdtempSync(path.join(tmpdir(), `sota-rig-${process.pid}-sim-`)));

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

  const cloud = startCloud(cloudOptions, { clock, admin, log });
  parts.push(cloud);

  const modulePart = await startModule({ ...moduleOptions, runDir }, { clock, rails, cloud: cloud.cloud, admin, log, fatal });
  parts.push(modulePart);

  // The relay board: every rail through an NC contact (a board reset or unplug leaves the station powered
  // and out of reset), so the station's config says relay: 'NC' for these pins.
  const firmata = await startFirmataBoard({ rails, pins: { moduleVbat: 2, moduleResetN: 3, targetVdd: 4, targetNrst: 5 }, dir: runDir, name: 'firmata' });
  parts.push({ info: { firmata: { port: firmata.info.port, pins: firmata.info.pins, contacts: firmata.info.contacts } }, close: () => firmata.close() });

  // The STM32 behind its remote_bitbang JTAG server and a Bus Pirate on a pty, on the targetVdd/targetNrst rails.
  const jtag = await startJtagPart(jtagOptions, { rails, admin, log, runDir });
  parts.push(jtag);

  // The MCU on that target, on the module's main UART, with its taps and console.
  if (mcuOn) parts.push(await startMcuPart({ ...mcuOptions, runDir }, { clock, target: jtag.jtag.target, uart1: modulePart.uart1, admin, log }));

  // Further parts start here and push themselves onto `parts`.

  const line: Record<string, unknown> = {};
  for (const part of parts) Object.assign(line, part.info);
  process.stdout.write(`${JSON.stringify(line)}\n`);
  log(`sim: ready (baud ${baud}, time scale ${timeScale}, IMEI ${imei}, state ${stateDir ?? 'in memory'})`);
} catch (err) {
  fatal(`start-up failed: ${(err as Error).message}`);
}
