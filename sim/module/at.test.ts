// The module's basic AT behaviour, its answers to bad input, and the sim process's lifecycle (JSON line,
// clean stop, socat dying), over the real pty with plain byte strings.
import { readdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { awaitReady, expectOk, powerCycle, register, simsPerTest, sync } from '../harness.ts';

const args = ['--baud', '0', '--time-scale', '0.01'];
const sim = simsPerTest(afterEach, args);
/** For the one test whose sim is meant to die: its exit code is that test's own assertion. */
const simMeantToFail = simsPerTest(afterEach, args, { expectCleanExit: false });

/** Processes whose command line mentions `needle` (to find the sim's socat). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** mulberry32: a small seeded generator, so a failing fuzz run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('basic commands', () => {
  test('identity, signal, functionality, URC port and baud queries', async () => {
    const s = await sim();
    await awaitReady(s);
    expect(await s.command('ATI')).toBe('ATI\r\r\nQuectel\r\nEC200U\r\nRevision: EC200UCNAAR03A03M08\r\n\r\nOK\r\n');
    expect(await s.command('AT+GSN')).toBe(`AT+GSN\r\r\n${s.info.module.imei}\r\n\r\nOK\r\n`);
    expect(await s.command('AT+QGMR')).toBe('AT+QGMR\r\r\nEC200UCNAAR03A03M08\r\n\r\nOK\r\n');
    expect(await s.command('AT+CSQ')).toBe('AT+CSQ\r\r\n+CSQ: 28,99\r\n\r\nOK\r\n');
    expect(await s.api('POST', '/device', { rssi: 12 })).toEqual({ rssi: 12, ber: 99 });
    expect(await s.command('AT+CSQ')).toContain('+CSQ: 12,99\r\n');
    expect(await s.command('AT+CFUN?')).toContain('+CFUN: 1\r\n');
    await expectOk(s, 'AT+CFUN=0');
    expect(await s.command('AT+CFUN?')).toContain('+CFUN: 0\r\n');
    expect(await s.command('AT+CSQ')).toContain('+CSQ: 99,99\r\n');
    await expectOk(s, 'AT+CFUN=1');
    expect(await s.command('AT+IPR?')).toContain('+IPR: 115200\r\n');
    expect(await s.command('AT+QURCCFG="urcport"')).toContain('+QURCCFG: "urcport","usbat"\r\n');
    await expectOk(s, 'AT+QURCCFG="urcport","uart1"');
    expect(await s.command('AT+QURCCFG="urcport"')).toContain('+QURCCFG: "urcport","uart1"\r\n');
    expect(await s.command('AT+QIOTINFO?')).toContain('+QIOTINFO: "version","2.9.0"\r\n');
    expect(await s.command('AT+QIOTUPDATE=?')).toContain('+QIOTUPDATE: (0-3)\r\n');
    expect(await s.command('AT+QIOTOTARD=?')).toContain('+QIOTOTARD: <start>,(1-1024)\r\n');
  });

  test('echo: on after boot, ATE0 turns it off, on again after a power cycle and after AT+CFUN=1,1', async () => {
    const s = await sim();
    await awaitReady(s);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
    expect(await s.command('ATE0')).toBe('ATE0\r\r\nOK\r\n');
    expect(await s.command('AT')).toBe('\r\nOK\r\n');
    await powerCycle(s);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
    await expectOk(s, 'ATE0');
    const from = s.mark();
    expect(await s.command('AT+CFUN=1,1')).toBe('\r\nOK\r\n');
    await s.waitFor('\r\nOK\r\n\r\nRDY\r\n', 5000, from);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
  });

  test('the rig closing and reopening its end of the pty changes nothing for the module', async () => {
    const s = await sim();
    await awaitReady(s);
    await s.reopen();
    expect(await s.command('AT+GSN')).toContain(`${s.info.module.imei}\r\n\r\nOK\r\n`);
    await s.reopen();
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
  });

  test('unknown commands and malformed parameters answer ERROR', async () => {
    const s = await sim();
    await awaitReady(s);
    for (const line of ['AT+FOO', 'AT+CGMI=1', 'ATZ9', 'AT+QIOTREG=3', 'AT+QIOTREG="1"', 'AT+QIOTREG=1,1', 'AT+QIOTUPDATE=4', 'AT+QIOTUPDATE=0', 'AT+QIOTUPDATE=2', 'AT+QIOTOTARD=1', 'AT+QIOTOTARD="0",1', 'AT+QIOTOTAREQ=2', 'AT+QIOTMCUVER=STM32,1', 'AT+QIOTCFG="productinfo","unterminated', 'AT+IPR=9600']) {
      expect(await s.command(line), line).toMatch(/\r\nERROR\r\n$/);
    }
  });

  test('QuecThing configuration rules: REG needs product info, product info only while deregistered', async () => {
    const s = await sim();
    await awaitReady(s);
    expect(await s.command('AT+QIOTSTATE?')).toContain('+QIOTSTATE: 1\r\n');
    expect(await s.command('AT+QIOTREG=1')).toMatch(/\r\nERROR\r\n$/);
    expect(await s.command('AT+QIOTOTAREQ')).toMatch(/\r\nERROR\r\n$/);
    expect(await s.command('AT+QIOTCFG=?')).toBe(
      'AT+QIOTCFG=?\r\r\n+QIOTCFG: "productinfo",<pk>,<ps>\r\n+QIOTCFG: "server",1,<server_URL>\r\n+QIOTCFG: "lifetime",(1-65535)\r\n+QIOTCFG: "buffer",(0,1)\r\n+QIOTCFG: "act",(1-15)\r\n+QIOTCFG: "session_mode",(0,1)\r\n+QIOTCFG: "tsl",(0,1)\r\n+QIOTCFG: "dk_ds",<dk>,<ds>\r\n+QIOTCFG: "txid_mode",(0,1)\r\n\r\nOK\r\n',
    );
    expect(await s.command('AT+QIOTCFG="server"')).toContain('+QIOTCFG: "server",1,"mqtt://iot-south.quectelcn.com:1883"\r\n');
    expect(await s.command('AT+QIOTCFG="dk_ds"')).toMatch(/\r\nERROR\r\n$/);
    await register(s);
    expect(await s.command('AT+QIOTSTATE?')).toContain('+QIOTSTATE: 8\r\n');
    expect(await s.command('AT+QIOTCFG="productinfo","other","other"')).toMatch(/\r\nERROR\r\n$/);
    expect(await s.command('AT+QIOTCFG="lifetime",300')).toMatch(/\r\nOK\r\n$/);
    const from = s.mark();
    await expectOk(s, 'AT+QIOTREG=0');
    await s.waitFor('\r\n+QIOTEVT: 6,10200\r\n', 5000, from);
    await expectOk(s, 'AT+QIOTCFG="productinfo","other","other"');
    expect(await s.command('AT+QIOTCFG="lifetime"')).toContain('+QIOTCFG: "lifetime",300\r\n');
    // MCU versions: set, query one, delete with an empty version.
    await expectOk(s, 'AT+QIOTMCUVER="BLE","1.2"');
    expect(await s.command('AT+QIOTMCUVER="BLE"')).toContain('+QIOTMCUVER: "BLE","1.2"\r\n');
    await expectOk(s, 'AT+QIOTMCUVER="BLE",""');
    expect(await s.command('AT+QIOTMCUVER="BLE"')).toMatch(/\r\nERROR\r\n$/);
  });
});

describe('bad input', () => {
  test('garbage, binary noise and overlong lines: clear answers, the module keeps working', async () => {
    const s = await sim();
    await awaitReady(s);
    await expectOk(s, 'ATE0');
    // No "AT" in the line: ignored, as V.25ter modules ignore everything before "AT".
    let from = s.mark();
    await s.send('hello world\r');
    expect(await s.command('AT')).toBe('\r\nOK\r\n');
    expect(s.since(from)).toBe('\r\nOK\r\n');
    // Noise before a command does not stop the command.
    expect(await s.command('\x00\x7f\xffzzAT+CSQ')).toContain('+CSQ: 28,99');
    // An overlong line is discarded up to its terminator and answered ERROR.
    from = s.mark();
    expect(await s.command(`AT+QIOTMCUVER="${'x'.repeat(5000)}","1"`)).toBe('\r\nERROR\r\n');
    const noise = Buffer.alloc(20000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) & 0xff;
    await s.send(noise);
    await s.send('\r');
    await sync(s);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
    expect(s.alive()).toBe(true);
  });

  test('while powered off: no output, input ignored; after power-on RDY is the first thing sent', async () => {
    const s = await sim();
    await awaitReady(s);
    await s.api('POST', '/faults', { kind: 'power-off' });
    const from = s.mark();
    await s.send('AT\rAT+QIOTREG=1\rATI\r');
    expect((await s.api<{ powered: boolean }>('GET', '/module')).powered).toBe(false);
    await s.api('POST', '/faults', { kind: 'power-on' });
    await s.waitFor('\r\nRDY\r\n', 5000, from);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
    expect(s.since(from)).toBe('\r\nRDY\r\nAT\r\r\nOK\r\n');
  });

  test('randomised: thousands of random and mutated lines (seeded), then AT still answers OK', async () => {
    const s = await sim(['--seed', '7']);
    await awaitReady(s);
    const rand = rng(20261127);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const corpus = [
      'AT', 'ATI', 'ATE0', 'ATE1', 'AT+GSN', 'AT+CSQ', 'AT+CFUN?', 'AT+CFUN=1', 'AT+QGMR', 'AT+IPR?',
      'AT+QIOTCFG="productinfo","pk","ps"', 'AT+QIOTCFG="server",1,"mqtt://x:1883"', 'AT+QIOTCFG="lifetime",120',
      'AT+QIOTCFG="dk_ds","abc","def"', 'AT+QIOTREG=1', 'AT+QIOTREG?', 'AT+QIOTREG=0', 'AT+QIOTSTATE?',
      'AT+QIOTMCUVER="STM32","1_0_0"', 'AT+QIOTMCUVER?', 'AT+QIOTMCUVER="STM32"', 'AT+QIOTOTAREQ=1', 'AT+QIOTOTAREQ',
      'AT+QIOTUPDATE=1', 'AT+QIOTUPDATE=0', 'AT+QIOTUPDATE=2', 'AT+QIOTUPDATE=3', 'AT+QIOTOTARD=0,1024',
      'AT+QIOTOTARD=4294967295,4294967295', 'AT+QURCCFG="urcport","all"', 'AT+QIOTINFO?',
    ] as const;
    const mutate = (line: string): string => {
      let out = line;
      const n = 1 + Math.floor(rand() * 3);
      for (let i = 0; i < n; i++) {
        const at = Math.floor(rand() * (out.length + 1));
        const op = Math.floor(rand() * 5);
        const ch = String.fromCharCode(Math.floor(rand() * 256));
        if (op === 0) out = out.slice(0, at) + out.slice(at + 1);
        else if (op === 1) out = out.slice(0, at) + ch + out.slice(at);
        else if (op === 2) out = out.slice(0, at) + ch + out.slice(at + 1);
        else if (op === 3) out = out + out.slice(at);
        else out = out.slice(0, at);
      }
      return out;
    };
    const lines: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const kind = rand();
      if (kind < 0.45) lines.push(mutate(pick(corpus)));
      else if (kind < 0.6) lines.push(pick(corpus));
      else if (kind < 0.8) lines.push(Array.from({ length: Math.floor(rand() * 120) }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join(''));
      else if (kind < 0.98) lines.push(Array.from({ length: Math.floor(rand() * 200) }, () => String.fromCharCode(Math.floor(rand() * 256))).join(''));
      else lines.push(`AT+${'Q'.repeat(1100 + Math.floor(rand() * 3000))}`);
    }
    const from = s.mark();
    for (let i = 0; i < lines.length; i += 200) await s.send(Buffer.from(`${lines.slice(i, i + 200).join('\r')}\r`, 'latin1'));
    await sync(s);
    expect(s.alive()).toBe(true);
    expect(await s.command('AT')).toBe('AT\r\r\nOK\r\n');
    const answered = s.since(from);
    expect(answered).toContain('\r\nERROR\r\n');
    expect(answered).toContain('\r\nOK\r\n');
    expect(s.stderr).not.toContain('internal error');
  });
});

describe('process lifecycle', () => {
  test('SIGTERM: exit 0, ptys removed, socat gone', async () => {
    const s = await sim();
    const port = s.info.module.port;
    expect(s.info.admin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.info.module.imei).toMatch(/^\d{15}$/);
    expect(existsSync(port)).toBe(true);
    expect(processesMentioning(port).length).toBeGreaterThan(0);
    expect(await s.stop()).toBe(0);
    expect(existsSync(port)).toBe(false);
    expect(existsSync(path.dirname(port))).toBe(false);
    expect(processesMentioning(port)).toEqual([]);
  });

  test('socat killed from outside: the sim says so and exits non-zero, leaving nothing behind', async () => {
    const s = await simMeantToFail();
    const port = s.info.module.port;
    const socat = processesMentioning(port).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('socat'));
    expect(socat).toHaveLength(1);
    process.kill(socat[0]!, 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => s.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(s.stderr).toMatch(/pty .* closed unexpectedly/);
    expect(existsSync(port)).toBe(false);
    expect(existsSync(path.dirname(port))).toBe(false);
  });

  test('Ctrl-C (SIGINT to the whole process group): exit 0, nothing left; SIGKILL: socat follows the sim', async () => {
    const launch = async (): Promise<{ child: ReturnType<typeof spawn>; port: string; exit: Promise<number | null> }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'sim/main.ts', '--baud', '0'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr!.resume();
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`sim exited with ${code} before its JSON line`)));
      });
      return { child, port: (JSON.parse(line) as { module: { port: string } }).module.port, exit };
    };
    const a = await launch();
    process.kill(-a.child.pid!, 'SIGINT');
    expect(await a.exit).toBe(0);
    expect(existsSync(path.dirname(a.port))).toBe(false);
    expect(processesMentioning(a.port)).toEqual([]);

    const b = await launch();
    expect(processesMentioning(b.port).length).toBeGreaterThan(0);
    process.kill(b.child.pid!, 'SIGKILL');
    await b.exit;
    // socat gets its parent-death signal; wait for it, bounded.
    for (let i = 0; i < 100 && processesMentioning(b.port).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesMentioning(b.port)).toEqual([]);
    rmSync(path.dirname(b.port), { recursive: true, force: true });
  });

  test('a bad option is a usage error (exit 64) in one line, before anything starts', () => {
    for (const [args, message] of [
      [['--baud', 'fast'], 'sim: --baud must be a number in [0, 4000000], got "fast" (--help lists the options)'],
      [['--no-such-option'], "sim: Unknown option '--no-such-option' (--help lists the options)"],
      [['--urcport-default', 'usb'], 'sim: --urcport-default must be one of usbat, usbmodem, uart1, uart2, all, got "usb" (--help lists the options)'],
    ] as const) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'sim/main.ts', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr).toBe(`${message}\n`);
      expect(r.stdout).toBe('');
    }
  });

  test('--help lists every option with its default, and exits 0 without starting anything', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'sim/main.ts', '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage: sim \[options\]\n/);
    for (const o of ['--baud <v>', '--time-scale <v>', '--honour-urcport <v>', '--urcport-default <v>', '--uart1-baud <v>', '--target <v>', '--flash-image <v>',
      '--mcu <v>', '--mcu-battery <v>', '--mcu-block-size <v>', '--mcu-watchdog-ms <v>', '--console-baud <v>', '--trace-at', '--help']) {
      expect(r.stdout, o).toContain(`  ${o} `);
    }
    expect(r.stdout).toMatch(/--honour-urcport <v> +on\|off: .*\(default on\)/);
    expect(r.stdout).toMatch(/--mcu <v> +on\|off: .*\(default off\)/);
  });
});
