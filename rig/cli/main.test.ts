import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { runProcess, type Ran } from '../../scripts/testing/run.ts';
import { loadManifest } from '../images/manifest.ts';
import { parseRunRecord } from '../sota/record.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-cli-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Every output of every rig command this file runs, for the last test: no ProductSecret in any of them. The
 * virtual station's own secret (its config default) is on the module's side of every virtual run here.
 */
const outputs: { args: string; text: string }[] = [];
const SECRETS = ['VirtualStationProductSecret', 'TopSecretValue', 'Pl4nted-S3cret-9f2c'];

/** The CLI as a user runs it: `node bin/rig.js …` from the compiled dist/ (npm test builds it first). */
async function rig(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  // Others edit rig/ while these tests run: the stale-dist warning would be noise in every stderr here (it has its own test).
  const r = await runProcess(process.execPath, ['bin/rig.js', ...args], { cwd: root, env: { RIG_CONFIG: '', RIG_NO_STALE_CHECK: '1', ...opts.env }, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  outputs.push({ args: args.join(' '), text: r.stdout + r.stderr });
  return r;
}

/** A rig process to talk to while it runs: its output so far, a wait for a pattern, and its end. */
function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['bin/rig.js', ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_NO_STALE_CHECK: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const waiters: (() => void)[] = [];
  const feed = (k: 'stdout' | 'stderr') => (d: Buffer) => {
    out[k] += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout.on('data', feed('stdout'));
  child.stderr.on('data', feed('stderr'));
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      outputs.push({ args: args.join(' '), text: out.stdout + out.stderr });
      resolve(code);
    }),
  );
  return {
    child,
    out,
    closed,
    /** Resolves once stdout or stderr matches; bounded. */
    until(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout: ${out.stdout}\nstderr: ${out.stderr}`)), timeoutMs);
        const check = (): void => {
          if (pattern.test(out.stdout) || pattern.test(out.stderr)) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

function writeConfig(name: string, config: unknown): string {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const SUBCOMMANDS = ['doctor', 'at', 'power', 'flash', 'readback', 'upgrade', 'repro', 'sweep', 'sim', 'image', 'report'];

describe('rig command: help, usage, config errors', () => {
  test('bin/rig.js warns on stderr, once, when a source is newer than dist/, and says nothing when dist/ is newer', async () => {
    // A copy of bin/rig.js over a stub build, so the check sees files this test controls.
    const home = mkdtempSync(path.join(tmp, 'stale-'));
    mkdirSync(path.join(home, 'bin'));
    mkdirSync(path.join(home, 'dist', 'rig', 'cli'), { recursive: true });
    mkdirSync(path.join(home, 'rig', 'sota'), { recursive: true });
    copyFileSync(path.join(root, 'bin', 'rig.js'), path.join(home, 'bin', 'rig.js'));
    const main = path.join(home, 'dist', 'rig', 'cli', 'main.js');
    writeFileSync(main, "export async function runCli() { process.stdout.write('ran\\n'); return 0; }\n");
    writeFileSync(path.join(home, 'rig', 'sota', 'flow.ts'), '');
    const run = (): Promise<Ran> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(home, 'bin', 'rig.js'), '--help'], { env: { ...process.env, RIG_NO_STALE_CHECK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('close', (status) => resolve({ status, stdout, stderr }));
      });
    const past = new Date(Date.now() - 60_000);
    utimesSync(main, past, past);
    const stale = await run();
    expect(stale.stderr).toBe('rig: warning: dist/ is older than rig/sota/flow.ts (git pull?); run `npm run build` — this runs the old build\n');
    expect(stale.stdout).toBe('ran\n');
    utimesSync(path.join(home, 'rig', 'sota', 'flow.ts'), new Date(past.getTime() - 60_000), new Date(past.getTime() - 60_000));
    const fresh = await run();
    expect(fresh.stderr).toBe('');
    expect(fresh.stdout).toBe('ran\n');
  });

  test('--help lists every subcommand and the exit codes', async () => {
    const r = await rig(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: rig <command>');
    for (const name of SUBCOMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\s+\\S`, 'm'));
    expect(r.stdout).toContain('2 config error');
  });

  test('every subcommand has its own --help, and it loads nothing heavy', async () => {
    for (const name of SUBCOMMANDS) {
      const r = await rig([name, '--help']);
      expect(r.status, name).toBe(0);
      expect(r.stdout, name).toMatch(new RegExp(`^Usage: rig ${name}`));
    }
  });

  test('--help does not import serialport, the OpenOCD driver or zod', async () => {
    // A resolve hook prints every module the process imports.
    const r = await rig(['--help'], { env: { NODE_OPTIONS: `--import ${JSON.stringify(path.join(root, 'rig/cli/testing/trace-imports.mjs'))}` } });
    expect(r.status).toBe(0);
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('import '));
    expect(loaded.length).toBeGreaterThan(0);
    for (const heavy of ['serialport', '/probe/', 'zod', 'johnny-five', 'cli-progress']) expect(loaded.filter((l) => l.includes(heavy)), heavy).toEqual([]);
  });

  test('an unknown command is a usage error (64)', async () => {
    const r = await rig(['no-such-command']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("unknown command 'no-such-command'");
  });

  test('an unknown option is a usage error (64) naming it', async () => {
    const r = await rig(['upgrade', 'virtual', '--pakage', 'full_2_0_0']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('--pakage');
  });

  test('--version prints the package version', async () => {
    const r = await rig(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  test('a broken config gives one message naming the key, what was expected and what was found, and exit code 2', async () => {
    const file = writeConfig('broken.json', { stations: { 'bench-1': { module: { port: '/dev/serial/by-id/usb-Quectel-if02', baudRate: 'fast' }, probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' }, layout: { slotAddress: '0x08010000', slotSize: 65536 } } } });
    const r = await rig(['doctor', 'bench-1', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^rig: config error: .*1 problem$/);
    expect(lines[1]).toBe('  stations.bench-1.module.baudRate: expected a number, found "fast"');
    expect(lines).toHaveLength(2);
  });

  test('a fault that does not parse is a usage error naming what was expected', async () => {
    const r = await rig(['upgrade', 'virtual', '--package', 'full_2_0_0', '--fault', 'offset=8192:explode']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("'explode'");
    expect(r.stderr).toContain('power-cycle-module');
  });
});

describe.concurrent('rig command on the virtual station', { timeout: 120_000 }, () => {
  test('rig doctor virtual: every check passes (exit 0)', async () => {
    const r = await rig(['doctor', 'virtual', '--json']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { ok: boolean; checks: { check: string; status: string; detail: string }[] };
    expect(out.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    const names = out.checks.map((c) => c.check);
    for (const c of ['station lock', 'serial port exists', 'serial port opens', 'module answers AT', 'QuecThing (AT+QIOTINFO?)', 'openocd installed', 'probe examines the target', 'line module-vbat']) expect(names).toContain(c);
    expect(out.checks.find((c) => c.check === 'QuecThing (AT+QIOTINFO?)')?.detail).toMatch(/version=\d/);
    expect(out.checks.find((c) => c.check === 'probe examines the target')?.detail).toContain('Cortex-M3');
    expect(out.ok).toBe(true);
    expect(r.status).toBe(0);
  });

  test('rig doctor on a station whose serial port does not exist: non-zero, the failure and its fix named', async () => {
    const port = '/dev/serial/by-id/usb-Quectel_EC200U-CN_NOSUCH-if02-port0';
    // The probe is the virtual station's kind of interface, on a port nothing listens on: it fails too.
    const file = writeConfig('missing-port.json', {
      stations: { 'bench-x': { module: { port }, probe: { interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 9 }, target: 'stm32f1x' }, layout: { slotAddress: '0x08000000', slotSize: 65536 } } },
    });
    const r = await rig(['doctor', 'bench-x', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/serial port exists\s+✘ FAIL\s+\/dev\/serial\/by-id\/usb-Quectel_EC200U-CN_NOSUCH-if02-port0 does not exist/);
    expect(r.stdout).toMatch(/module answers AT\s+– skip/);
    expect(r.stdout).toContain('What to do:');
    expect(r.stdout).toContain('bench-x: serial port exists: check the module\'s USB cable and power');
    expect(r.stdout).toContain('stations.bench-x.module.port');
    expect(r.stdout).toMatch(/probe connects\s+✘ FAIL/);
    expect(r.stdout).toMatch(/\d checks failed/);
  });

  test('rig doctor: a Firmata board not named by /dev/serial/by-id warns; a declared plan whose package the rig cannot find fails', async () => {
    const file = writeConfig('doctor-plans.json', {
      stations: {
        'bench-y': {
          module: { port: '/dev/serial/by-id/usb-Quectel_NOSUCH-if02-port0' },
          probe: { interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 9 }, target: 'stm32f1x' },
          layout: { slotAddress: '0x08000000', slotSize: 65536 },
          power: { boards: { relays: { port: '/dev/ttyACM-nosuch' } }, lines: { 'target-vdd': { kind: 'firmata', board: 'relays', pin: 7 } } },
          plans: { kind: 'declared', plans: [{ name: 'full 2', package: 'full_2_0_0', targetVersion: '2_0_0' }, { name: 'lost', package: { file: 'gone.bin', sha256: 'a'.repeat(64) }, targetVersion: '2_0_0' }] },
        },
      },
    });
    const r = await rig(['doctor', 'bench-y', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/Firmata board relays port\s+! warn\s+\/dev\/ttyACM-nosuch/);
    expect(r.stdout).toMatch(/plan full 2\s+✔ ok\s+plan "full 2": full_2_0_0/);
    expect(r.stdout).toMatch(new RegExp(`plan lost\\s+✘ FAIL\\s+plan "lost": no package with sha256 ${'a'.repeat(64)}`));
  });

  test("rig at virtual 'AT' answers OK; an unknown command answers ERROR (exit 1)", async () => {
    const ok = await rig(['at', 'virtual', 'AT']);
    expect(ok.stdout).toBe('OK\n');
    expect(ok.status).toBe(0);
    const bad = await rig(['at', 'virtual', 'AT+NOSUCH', '--json']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ station: 'virtual', answers: [{ command: 'AT+NOSUCH', ok: false, final: 'ERROR' }] });
  });

  test('rig at: the interactive console reads commands from stdin and masks the ProductSecret', async () => {
    const r = await new Promise<Ran>((resolve, reject) => {
      const child = spawn(process.execPath, ['bin/rig.js', 'at', 'virtual'], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_NO_STALE_CHECK: '1', HOME: tmp }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end('AT+QIOTCFG="productinfo","pk1","TopSecretValue"\nAT+QIOTCFG="productinfo"\nATI\n.quit\n');
      const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`console did not end: ${stdout} ${stderr}`))), 60_000);
      child.once('close', (status) => (clearTimeout(timer), outputs.push({ args: 'at virtual (console)', text: stdout + stderr }), resolve({ status, stdout, stderr })));
    });
    expect(r.stdout).toContain('+QIOTCFG: "productinfo","pk1","********"');
    expect(r.stdout).not.toContain('TopSecretValue');
    expect(r.stdout).toContain('EC200U');
    expect(r.status).toBe(0);
    const history = readFileSync(path.join(tmp, '.rig_at_history'), 'utf8');
    expect(history).toContain('ATI\n');
    expect(history).toContain('AT+QIOTCFG="productinfo","pk1","********"\n');
    expect(history).not.toContain('TopSecretValue');
  });

  test('rig at: a ProductSecret in a command is masked in the text, in --json (the command too) and in the error for a command of two lines', async () => {
    const set = `AT+QIOTCFG="productinfo","pk9","${SECRETS[2]}"`;
    const text = await rig(['at', 'virtual', set, 'AT+QIOTCFG="productinfo"']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('+QIOTCFG: "productinfo","pk9","********"');
    const json = await rig(['at', 'virtual', '--json', set, 'AT+QIOTCFG="productinfo"']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout).answers).toEqual([
      { command: 'AT+QIOTCFG="productinfo","pk9","********"', ok: true, lines: [], final: 'OK' },
      { command: 'AT+QIOTCFG="productinfo"', ok: true, lines: [expect.stringMatching(/^\+QIOTCFG: "productinfo","pk9","\*{8}"/)], final: 'OK' },
    ]);
    const twoLines = await rig(['at', 'virtual', `${set}\rAT`]);
    expect(twoLines.status).toBe(64);
    expect(twoLines.stderr).toContain('a command is one line');
  });

  test('rig power virtual module-vbat cycle: the line is cycled and reads on', async () => {
    const r = await rig(['power', 'virtual', 'module-vbat', 'cycle', '--off-ms', '300', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ station: 'virtual', line: 'module-vbat', action: 'cycle', level: 'on', offMs: 300 });
    const bad = await rig(['power', 'virtual', 'module-vbatt', 'off']);
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain('one of module-vbat, module-reset, target-vdd, target-nrst');
  });

  test('rig readback writes a file equal to the flash contents', async () => {
    const firmware = await loadManifest();
    const image = firmware.image('1_1_0');
    const file = writeConfig('preloaded.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_1_0.bin') } } });
    const out = path.join(tmp, 'slot.bin');
    const r = await rig(['readback', 'virtual', '--config', file, '-o', out]);
    expect(r.status).toBe(0);
    const bytes = readFileSync(out);
    // The default slot of the virtual station is 64 KiB: the image, then erased flash.
    expect(bytes.length).toBe(64 * 1024);
    expect(Buffer.compare(bytes.subarray(0, image.bytes.length), Buffer.from(image.bytes))).toBe(0);
    expect(bytes.subarray(image.bytes.length).every((b) => b === 0xff)).toBe(true);
    expect(r.stdout).toMatch(/\n {2}holds: STM32 1_1_0 \(24576 bytes, sha256 [0-9a-f]{12}…\)\n/);
    // A short read says what it read, not "a damaged image header".
    const part = await rig(['readback', 'virtual', '0x08000000:0x100', '--config', file, '-o', path.join(tmp, 'head.bin')]);
    expect(part.stdout).toContain('holds: the first 256 bytes of STM32 1_0_0, 1_1_0 and 2_0_0 (the same there)');
    expect(part.status).toBe(0);
  });

  test('rig upgrade virtual --package: upgraded verdict and a run record; rig repro of it: same verdict', { timeout: 180_000 }, async () => {
    const record = path.join(tmp, 'run.json');
    // The target holds 1_1_0: rig upgrade identifies it as the starting image, and the baseline has nothing to program.
    const config = writeConfig('from-1-1.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_1_0.bin') } } });
    const up = await rig(['upgrade', 'virtual', '--config', config, '--package', 'full_2_0_0', '-o', record], { timeoutMs: 120_000 });
    expect(up.stdout).toMatch(/^PASS upgraded: /);
    expect(up.status).toBe(0);
    expect(up.stderr).toMatch(/read blocks: [\d,]+\/25,344 bytes \(100 %\)/);
    expect(up.stderr).toContain('download (cloud → module): 25,344/25,344 bytes (100 %)');
    const saved = parseRunRecord(readFileSync(record, 'utf8'));
    expect(saved.verdict.outcome).toBe('upgraded');
    expect(saved.package.name).toBe('full_2_0_0');
    expect(saved.current.version).toBe('1_1_0');
    expect(saved.readback?.matchesTarget).toBe(true);

    const again = path.join(tmp, 'run-again.json');
    const re = await rig(['repro', record, '--config', config, '-o', again, '--json'], { timeoutMs: 120_000 });
    expect(re.status).toBe(0);
    const out = JSON.parse(re.stdout) as { same: boolean; comparison: string; station: string };
    expect(out).toMatchObject({ same: true, comparison: 'upgraded → upgraded', station: 'virtual' });
    expect(parseRunRecord(readFileSync(again, 'utf8')).verdict.outcome).toBe('upgraded');
  });

  test('rig upgrade on a target that holds no known image asks for --from (64) after opening only: no baseline, no programming, no plan', async () => {
    const r = await rig(['upgrade', 'virtual', '--package', 'full_2_0_0']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('which image does the target start from?');
    expect(r.stderr).toContain('--from <version> (1_0_0, 1_1_0, 2_0_0)');
    expect(r.stderr).toContain('seen erased (25344 bytes of 0xFF)');
    // Reading the slot needs the station open; nothing after that may have run.
    const steps = r.stderr.split('\n').filter((l) => l.startsWith('▸ ')).map((l) => l.replace(/^▸ virtual: /, ''));
    // A sim with the virtual MCU also has its taps and console opened (listen only), before the probe.
    const opened = ['lock', 'start the virtual station', 'power lines', 'module AT port', 'module answers AT', ...(steps.includes('MCU taps and console') ? ['MCU taps and console'] : []), 'probe (OpenOCD)'];
    expect(steps).toEqual(opened);
  });

  test.each([
    ['an unknown package', ['--package', 'nope'], '--package: no package nope'],
    ['an unknown --from', ['--package', 'full_2_0_0', '--from', '9_9_9'], '--from: no image 9_9_9'],
    ['--plan on the virtual station', ['--plan', 'bench-1 full 2.0.0'], 'virtual creates its plans through an API'],
    ['an unknown --mode', ['--package', 'full_2_0_0', '--mode', 'fast'], '--mode: unknown mode'],
    ['--battery in dut mode (the MCU under test has its own)', ['--mode', 'dut', '--package', 'full_2_0_0', '--from', '1_0_0', '--battery', '50'], "--battery is the MCU's own in dut mode"],
    ['--bootloader in proxy mode', ['--package', 'full_2_0_0', '--bootloader', 'vbl-1.0'], '--bootloader is for dut mode'],
    ['a dut finding expected of a proxy run', ['--package', 'full_2_0_0', '--expect', 'bricked'], "--expect: unknown outcome 'bricked' for a proxy run"],
    ['dut mode from a full package without --from', ['--mode', 'dut', '--package', 'full_2_0_0'], 'which release does the MCU start from?'],
  ])('rig upgrade with %s is a usage error (64) before the station opens', async (_what, args, message) => {
    const r = await rig(['upgrade', 'virtual', ...args]);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain(message);
    // No step at all: no lock, no sim, no power line, no OpenOCD.
    expect(r.stderr).not.toMatch(/^[▸✔✖] /m);
  });

  test.each([
    ['a package no declared plan delivers', 'bench', ['--package', 'full_2_0_0', '--from', '1_0_0'], 2, 'no declared plan delivers STM32 full 2_0_0'],
    ['a cloud fault a station with declared plans cannot inject', 'bench', ['--plan', 'full 1.1.0', '--from', '1_0_0', '--cloud-fault', 'network-down'], 2, "cannot inject cloud fault 'network-down'"],
    ['a power fault the station has no line for', 'bench', ['--plan', 'full 1.1.0', '--from', '1_0_0', '--fault', 'offset=1024:power-cycle-module'], 2, 'no module supply line'],
    ['an OpenOCD binary that is not there', 'noopenocd', ['--package', 'full_2_0_0', '--from', '1_0_0'], 2, '/nonexistent/openocd'],
    ['an unknown --cloud-fault', 'virtual', ['--package', 'full_2_0_0', '--from', '1_0_0', '--cloud-fault', 'meteor-strike'], 64, '--cloud-fault: no cloud fault "meteor-strike"'],
    ['a --cloud-fault that needs a count without one', 'virtual', ['--package', 'full_2_0_0', '--from', '1_0_0', '--cloud-fault', 'drop-uart-bytes'], 64, 'drop-uart-bytes=<count>'],
    ['an unknown --crc', 'virtual', ['--package', 'full_2_0_0', '--from', '1_0_0', '--crc', 'crc-31'], 64, '--crc'],
  ])('rig upgrade with %s fails before the station opens: no lock, no power line, no OpenOCD', async (_what, station, args, code, message) => {
    const config = writeConfig('preflight.json', {
      stations: {
        // A bench whose port does not exist: opening it would fail otherwise (69), after the lock.
        bench: {
          module: { port: '/dev/serial/by-id/usb-Quectel_missing-if02-port0' },
          probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
          layout: { slotAddress: 0x0800_0000, slotSize: 64 * 1024 },
          plans: { kind: 'declared', plans: [{ name: 'full 1.1.0', package: 'full_1_1_0', targetVersion: '1_1_0' }] },
        },
        noopenocd: { kind: 'virtual', openocd: '/nonexistent/openocd' },
      },
    });
    const r = await rig(['upgrade', station, '--config', config, ...args]);
    expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: code, stderr: expect.stringContaining(message) });
    expect(r.stderr).not.toMatch(/^[▸✔✖] /m);
  });

  test('rig at opens only what it uses: the module answers with no OpenOCD at all', async () => {
    const config = writeConfig('at-noopenocd.json', { stations: { virtual: { openocd: '/nonexistent/openocd' } } });
    const r = await rig(['at', 'virtual', '--config', config, 'AT']);
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: 'OK\n' });
  });

  test('rig upgrade on a station the config does not have is a config error (2) naming it, whatever else is asked', async () => {
    for (const args of [['--plan', 'some plan'], ['--package', 'full_2_0_0']]) {
      const r = await rig(['upgrade', 'no-such-bench', ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('no station "no-such-bench" in the config');
      expect(r.stderr).not.toMatch(/^[▸✔✖] /m);
    }
  });

  test('a --fault that never fires fails the upgrade (3); a record whose fault fired and does not fire again is not reproduced (3), replayed with its virtual settings', { timeout: 240_000 }, async () => {
    const record = path.join(tmp, 'unfired.json');
    const config = writeConfig('unfired.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_1_0.bin'), downloadRate: 200_000 } } });
    // 10706 is a failed upgrade: a run that upgrades never sees it.
    const up = await rig(['upgrade', 'virtual', '--config', config, '--package', 'full_2_0_0', '--fault', 'event=10706:power-cycle-module', '-o', record], { timeoutMs: 120_000 });
    expect(up.stdout).toMatch(/^FAULT NEVER FIRED upgraded: /);
    expect(up.stdout).toContain('event=10706:power-cycle-module=500: never fired');
    expect(up.status).toBe(3);
    const saved = parseRunRecord(readFileSync(record, 'utf8'));
    expect(saved.station.config).toMatchObject({ kind: 'virtual', downloadRate: 200_000 });
    expect(JSON.stringify(saved)).not.toContain('VirtualStationProductSecret');

    // The same record as if the fault had fired: replaying it cannot fire it, whatever the verdict.
    saved.fired = [{ fault: saved.faults[0]!, t: 1000, phase: 'download', effect: 'module power-cycled' }];
    writeFileSync(record, JSON.stringify(saved));
    const plain = writeConfig('plain-1-1.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_1_0.bin') } } });
    const re = await rig(['repro', record, '--config', plain, '-o', path.join(tmp, 'unfired-again.json')], { timeoutMs: 120_000 });
    expect(re.stderr).toContain("with the record's virtual settings:");
    expect(re.stderr).toContain('downloadRate=200000');
    expect(re.stdout).toContain('NOT REPRODUCED (same verdict, recorded fault did not fire): upgraded → upgraded');
    expect(re.status).toBe(3);
  });

  test('rig upgrade --plan on a station whose plans come from an API is a usage error pointing at --package', async () => {
    const r = await rig(['upgrade', 'virtual', '--plan', 'bench-1 full 2.0.0']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('virtual: --plan: virtual creates its plans through an API');
    expect(r.stderr).toContain('--package <name>');
  });

  test('rig repro says so (exit 1) when the verdict differs from the record', { timeout: 120_000 }, async () => {
    // A record claiming "upgraded" for a recipe that must be refused (battery 10 % against a 50 % plan).
    const firmware = await loadManifest();
    const pkg = firmware.package('full_1_1_0');
    const from = firmware.image('1_0_0');
    const record = {
      format: 'sota-rig/run-record', version: 1, flow: 'proxy', startedAt: new Date().toISOString(), durationMs: 0,
      station: { name: 'virtual', description: '', baudRate: 115200, target: 'stm32f1x', probe: '', component: 'STM32', slotAddress: 0x08000000 },
      plan: { id: 'x', component: 'STM32', sourceVersion: '', targetVersion: '1_1_0', size: pkg.size, md5: pkg.md5, crc: 0, sha256: pkg.sha256, minBattery: 50, minSignal: 0 },
      spec: { component: 'STM32', package: 'full_1_1_0', minBattery: 50 },
      package: { name: 'full_1_1_0', type: 'full', version: '1_1_0', sourceVersion: null, size: pkg.size, sha256: pkg.sha256, targetSha256: pkg.sha256 },
      current: { version: '1_0_0', size: from.bytes.length, sha256: from.sha256 },
      options: { battery: 10, blockSize: 1024, crcAlgorithm: 'crc-32', expect: ['upgraded', 'refused'], maxRecoveries: 5 },
      // A fault that fired in the recorded run; a refused plan never downloads, so it cannot fire now.
      faults: ['event=10702:power-cycle-module=500'], cloudFaults: [], fired: [{ fault: 'event=10702:power-cycle-module=500', t: 1000, phase: 'download', effect: 'module rebooted' }],
      events: [], transcript: [], phases: [], read: { bytes: 0, blocks: 0, ms: 0, bytesPerSecond: 0 }, progress: [],
      download: null, refusal: null, readback: null, errors: [],
      verdict: { outcome: 'upgraded', expected: ['upgraded', 'refused'], ok: true, summary: 'upgraded' },
    };
    const file = path.join(tmp, 'differs.json');
    writeFileSync(file, JSON.stringify(record));
    const config = writeConfig('from-1-again.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_0_0.bin') } } });
    const r = await rig(['repro', file, '--config', config, '-o', path.join(tmp, 'differs-again.json')], { timeoutMs: 110_000 });
    expect(r.stdout).toContain('DIFFERENT verdict: upgraded → refused');
    expect(r.stdout).toContain('note: fault event=10702:power-cycle-module=500 fired in the recorded run but not in this one');
    expect(r.status).toBe(1);
  });

  test('rig flash programs an image into the slot and verifies it; a second time nothing is written', { timeout: 120_000 }, async () => {
    const config = writeConfig('flash-from-1.json', { stations: { virtual: { flashImage: path.join(root, 'fixtures/images/STM32_1_0_0.bin') } } });
    const same = await rig(['flash', 'virtual', '1_0_0', '--config', config, '--json']);
    expect(same.status).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ written: false, verified: true, bytes: 24576, address: 0x08000000 });
    // A small file of other bytes, no release of the manifest: the flash is named by its bytes.
    const file = path.join(tmp, 'small.bin');
    writeFileSync(file, Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 37 + 11) & 0xff)));
    const other = await rig(['flash', 'virtual', file, '--config', config, '--json'], { timeoutMs: 110_000 });
    expect(other.status).toBe(0);
    expect(JSON.parse(other.stdout)).toMatchObject({ written: true, verified: true, bytes: 2048 });
    expect(JSON.parse(other.stdout).identity).toMatch(/^2048 bytes that are no known image .*no image header/);
    expect(other.stderr).toMatch(/programming: 2,048\/2,048 bytes \(100 %\)/);
  });

  test('Ctrl-C during an upgrade: exit 130 once the station is safe', async () => {
    const run = start(['upgrade', 'virtual', '--package', 'full_2_0_0', '--from', '1_0_0', '-o', path.join(tmp, 'interrupted.json')]);
    await run.until(/▸ baseline/);
    run.child.kill('SIGINT');
    expect(await run.closed).toBe(130);
    expect(run.out.stderr).toContain('rig: interrupted; the station is in its safe state');
    expect(existsSync(path.join(tmp, 'interrupted.json'))).toBe(false);
  });

  test('Ctrl-C as the run reaches its verdict (the version report): exit 130, and no record that says it passed', async () => {
    const file = path.join(tmp, 'interrupted-at-the-end.json');
    const run = start(['upgrade', 'virtual', '--package', 'full_2_0_0', '--from', '1_0_0', '-o', file]);
    await run.until(/▸ report version/, 120_000);
    run.child.kill('SIGINT');
    expect(await run.closed).toBe(130);
    // Either the stop came first (the run failed on its way: its record says so), or the verdict did (no
    // record), or — on a loaded machine — the signal landed after the run had finished, and the rig says so.
    expect(run.out.stderr).toContain('rig: interrupted');
    if (existsSync(file) && parseRunRecord(readFileSync(file, 'utf8')).verdict.ok) expect(run.out.stderr).toMatch(/after the command had finished|no station was open/);
  });

  test('rig sim shows where the parts are, and Ctrl-C stops it cleanly (exit 0)', async () => {
    const sim = start(['sim']);
    await sim.until(/Ctrl-C stops it/);
    expect(sim.out.stdout).toMatch(/module AT port\s+\/\S+module-rig\s+IMEI \d{15}, 115200 baud/);
    expect(sim.out.stdout).toMatch(/Firmata relay board\s+\/\S+\s+moduleVbat=pin 2/);
    expect(sim.out.stdout).toMatch(/STM32 \(remote_bitbang\)\s+127\.0\.0\.1:\d+/);
    expect(sim.out.stdout).toMatch(/Developer Center admin API\s+http:\/\/127\.0\.0\.1:\d+/);
    const port = /module AT port\s+(\S+)/.exec(sim.out.stdout)![1]!;
    expect(existsSync(port)).toBe(true);
    sim.child.kill('SIGINT');
    expect(await sim.closed).toBe(0);
    expect(existsSync(port)).toBe(false);
  });

  test('rig report passes its options to scripts/report.mjs', async () => {
    const r = await rig(['report', '--help-report']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: npm run report');
  });

  // Last in the file: it reads what the tests above printed and wrote.
  test('no ProductSecret in any output of the commands above: stdout, stderr, --json, run records, the console history', () => {
    expect(outputs.length).toBeGreaterThan(0);
    const files = readdirSync(tmp, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => path.join(d.parentPath, d.name))
      .filter((f) => !f.endsWith('.bin'));
    expect(files.some((f) => f.endsWith('run.json'))).toBe(true);
    const leaks = [...outputs.map((o) => ({ where: `rig ${o.args}`, text: o.text })), ...files.map((f) => ({ where: f, text: readFileSync(f, 'utf8') }))]
      .flatMap(({ where, text }) => SECRETS.filter((secret) => text.includes(secret)).map((secret) => `${secret} in ${where}`));
    expect(leaks).toEqual([]);
  });
});
