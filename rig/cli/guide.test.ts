// A command line that guides (issue 17): the wrong word named with what was probably meant, answers labelled
// with their commands, a console history without repeats, a rejected package that says why, programming that
// shows progress, and commands that attach to the virtual station `rig sim` keeps running. The CLI as a user
// runs it: node bin/rig.js from dist/ (npm test's pretest builds it).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { historyFromFile, historyToFile, remember } from './commands/at.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-guide-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function rig(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/rig.js', ...args], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_MANIFEST: '', RIG_SIM: '', RIG_NO_STALE_CHECK: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`rig ${args.join(' ')} did not finish: ${stdout} ${stderr}`))), opts.timeoutMs ?? 90_000);
    child.once('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
  });
}

describe('the wrong word, named', () => {
  test.each([
    [['doctr'], "rig: unknown command 'doctr' (did you mean 'doctor'?)"],
    [['--versio'], "rig: unknown option '--versio' (did you mean '--version'?)"],
    [['upgrade', 'virtual', '--pakage', 'full_2_0_0'], "unknown option '--pakage' (did you mean '--package'?)"],
    [['upgrade', 'virtual', '--package', 'ful_2_0_0'], "--package: no package ful_2_0_0 (did you mean 'full_2_0_0'?)"],
    [['image', 'lst'], "unknown action 'lst' (did you mean 'list'?)"],
    [['readback', 'virtual', 'slto', '-o', '/dev/null'], "not a region: slto (did you mean 'slot'?)"],
  ])('rig %j', async (args, line) => {
    const r = await rig(args);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain(line);
  });

  test('rig power: a mistyped action or line is named before any station starts', async () => {
    const action = await rig(['power', 'virtual', 'module-vbat', 'onn']);
    expect(action.stderr).toContain("rig power: unknown action 'onn' (did you mean 'on'?)");
    const line = await rig(['power', 'virtual', 'module-vbta', 'on']);
    expect(line.stderr).toContain('no power line "module-vbta" (did you mean \'module-vbat\'?)');
    const station = await rig(['power', 'virtul', 'module-vbat', 'on']);
    expect(station.stderr).toContain('no station "virtul" in the config (did you mean \'virtual\'?)');
    expect(station.status).toBe(2);
    for (const r of [action, line]) {
      expect(r.status).toBe(64);
      expect(r.stderr).not.toContain('start the virtual station');
    }
  });
});

describe('answers and history', () => {
  test('the console history keeps each command once, newest last in the file', () => {
    let h = historyFromFile('AT\nATI\nAT\nAT+CSQ\nATI\n');
    expect(h).toEqual(['ATI', 'AT+CSQ', 'AT']);
    h = remember(h, 'AT+CSQ');
    expect(historyToFile(h)).toBe('AT\nATI\nAT+CSQ\n');
  });

  test('rig at with several commands heads each answer with its command; the console writes its history without repeats', { timeout: 60_000 }, async () => {
    const r = await rig(['at', 'virtual', 'ATI', 'AT+CSQ', 'AT+NOSUCH']);
    expect(r.stdout).toMatch(/^> ATI\nQuectel\nEC200U\nRevision: \S+\nOK\n> AT\+CSQ\n\+CSQ: \d+,\d+\nOK\n> AT\+NOSUCH\nERROR\n$/);
    expect(r.status).toBe(1);
    const home = path.join(tmp, 'home');
    mkdirSync(home);
    writeFileSync(path.join(home, '.rig_at_history'), 'AT+CSQ\nATI\n');
    const c = await rig(['at', 'virtual'], { env: { HOME: home }, input: 'ATI\nAT\nATI\n.quit\n' });
    expect(c.status).toBe(0);
    expect(readFileSync(path.join(home, '.rig_at_history'), 'utf8')).toBe('AT+CSQ\nAT\nATI\n');
  });
});

describe('a rejected package says why', () => {
  test('text and the record (--json prints its download field): which digests differ, expected and seen; the verify step fails with the reason', { timeout: 90_000 }, async () => {
    const record = path.join(tmp, 'rejected.json');
    const r = await rig(['upgrade', 'virtual', '--package', 'delta_1_0_0_to_2_0_0', '--cloud-fault', 'corrupt-next-download', '--expect', 'failed-intact', '-o', record]);
    expect(r.stderr).toMatch(/✘ verify package \S+ \S+: package rejected: download against 10701: md5 expected [0-9a-f]{32} seen [0-9a-f]{32}/);
    expect(r.stdout).toMatch(/\n {2}download {2}rejected: download against 10701: md5 expected [0-9a-f]{32} seen [0-9a-f]{32}; crc \(crc-32\) expected \d+ \(0x[0-9a-f]+\) seen \d+/);
    expect(r.stdout).toContain('rebuilt image: delta applied but the result is not 2_0_0');
    expect(r.status).toBe(0);
    // What --json prints under `download` is the record's own field.
    const out = JSON.parse(readFileSync(record, 'utf8')) as { download: { verified: boolean; problems: string[] } };
    expect(out.download.verified).toBe(false);
    expect(out.download.problems[0]).toMatch(/^download against 10701: md5 expected/);
  });
});

describe('a virtual station that rig sim keeps running', () => {
  let sim: ReturnType<typeof spawn>;
  let attach = '';
  beforeAll(async () => {
    sim = spawn(process.execPath, ['bin/rig.js', 'sim'], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_NO_STALE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
    attach = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('rig sim printed no RIG_SIM line within 40 s')), 40_000);
      createInterface({ input: sim.stdout! }).on('line', (l) => {
        const m = /export RIG_SIM=(\S+)/.exec(l);
        if (!m) return;
        clearTimeout(timer);
        resolve(m[1]!);
      });
    });
  }, 45_000);
  afterAll(async () => {
    if (!sim || sim.exitCode !== null) return;
    const closed = new Promise((resolve) => sim.once('close', resolve));
    sim.kill('SIGINT');
    await closed;
  });

  test('commands attach to it: module state and flash carry from one command to the next', { timeout: 120_000 }, async () => {
    const set = await rig(['at', 'virtual', 'AT+QIOTCFG="lifetime",7200'], { env: { RIG_SIM: attach } });
    expect(set.stderr).toBe('');
    expect(set.status).toBe(0);
    const kept = await rig(['at', 'virtual', 'AT+QIOTCFG="lifetime"', '--attach', attach]);
    expect(kept.stdout).toContain('+QIOTCFG: "lifetime",7200');

    // Before the flash below overwrites what the virtual MCU boots from (doctor checks the MCU talks too).
    const doctor = await rig(['doctor', 'virtual', '--json'], { env: { RIG_SIM: attach } });
    const checks = (JSON.parse(doctor.stdout) as { checks: { check: string; status: string }[] }).checks;
    const status = (name: string) => checks.find((c) => c.check === name)?.status;
    for (const name of ['virtual station attached', 'station lock', 'serial port opens', 'module answers AT', 'probe examines the target', 'line module-vbat']) expect(status(name), name).toBe('ok');

    const app = path.join(tmp, 'app.bin');
    writeFileSync(app, Buffer.alloc(2048, 0x3c));
    const flash = await rig(['flash', 'virtual', app, '--attach', attach]);
    expect(flash.stderr).toContain('attach to the running virtual station (pid');
    expect(flash.stderr).toMatch(/programming: 2,048\/2,048 bytes \(100 %\)/);
    expect(flash.status).toBe(0);
    const out = path.join(tmp, 'back.bin');
    const back = await rig(['readback', 'virtual', '0x08000000:2048', '-o', out], { env: { RIG_SIM: attach } });
    expect(back.status).toBe(0);
    expect(readFileSync(out).equals(Buffer.alloc(2048, 0x3c))).toBe(true);
    expect(back.stdout).toContain('holds: 2048 bytes that are no known image');

  });

  test('an attach file whose station is gone: an infrastructure error saying to start rig sim', async () => {
    const stale = path.join(tmp, 'stale.json');
    writeFileSync(stale, JSON.stringify({ ...JSON.parse(readFileSync(attach, 'utf8')), pid: 2 ** 22 + 1 }));
    const r = await rig(['at', 'virtual', 'AT', '--attach', stale]);
    expect(r.status).toBe(69);
    expect(r.stderr).toContain('the virtual station to attach to is not running');
    expect(r.stderr).toContain('start it with `rig sim`');
    const hw = await rig(['at', 'bench-9', 'AT', '--attach', stale]);
    expect(hw.status).not.toBe(0);
  });
});
