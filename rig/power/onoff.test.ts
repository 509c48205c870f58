// onoff's own code against an emulated sysfs GPIO tree in a private mount namespace (see
// testing/sysfs-gpio-host.ts). The tree holds a Pi 5-style chip (pinctrl-rp1 at base 571) and a Pi 4-style
// one (pinctrl-bcm2711 at 512). Needs root and unshare(1); without them these tests fail, they do not skip.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PowerConfigInput } from './config.ts';
import type { EmulatedChip, Scenario, TreeState } from './testing/sysfs-gpio-host.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const hostScript = path.join(here, 'testing', 'sysfs-gpio-host.ts');

const chips: EmulatedChip[] = [
  { name: 'gpiochip512', label: 'pinctrl-bcm2711', base: 512, ngpio: 58, cdev: 'gpiochip1' },
  { name: 'gpiochip571', label: 'pinctrl-rp1', base: 571, ngpio: 54, cdev: 'gpiochip0' },
  // Above 1000 on purpose: the EINVAL scenario's export refuses exactly those (see the host).
  { name: 'gpiochip1024', label: 'mcp23017', base: 1024, ngpio: 16, cdev: 'gpiochip2' },
];

type Msg = Record<string, unknown>;

/** One emulated tree in its own mount namespace, and the line holders started inside it. */
class GpioHost {
  private readonly queue: Msg[] = [];
  private waiter: (() => void) | undefined;
  private stderr = '';
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.queue.push(JSON.parse(line) as Msg);
      this.waiter?.();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-3000)));
    child.on('exit', (code, signal) => {
      this.exited = `exited with ${code ?? signal}`;
      this.waiter?.();
    });
  }

  static async start(scenario: Scenario): Promise<GpioHost> {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', process.execPath, '--import', 'tsx', hostScript, JSON.stringify(scenario)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const host = new GpioHost(child);
    child.on('error', () => {});
    try {
      const first = await host.next('ready', 20_000);
      if (first.fatal) throw new Error(String(first.fatal));
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(
        `the onoff tests need a private mount namespace with a tmpfs over /sys/class/gpio (root and util-linux unshare; CI runs as root), and it could not be made: ${(err as Error).message}; stderr: ${host.stderr.trim() || '(empty)'}`,
      );
    }
    return host;
  }

  /** The next message carrying `key` (or a fatal one), within `timeoutMs`. */
  async next(key: string, timeoutMs = 15_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => key in m || 'fatal' in m);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      if (this.exited) throw new Error(`the gpio host ${this.exited} while waiting for "${key}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${key}" from the gpio host within ${timeoutMs} ms (queued: ${JSON.stringify(this.queue)})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  send(cmd: Msg): void {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  /** Starts a holder with these lines; resolves with its first answer ({opened} or {error}). */
  async holder(power: PowerConfigInput, uid?: number): Promise<Msg> {
    this.send({ spawn: { station: 'pi', power }, ...(uid !== undefined ? { uid } : {}) });
    return (await this.next('holder')).holder as Msg;
  }

  async ask(cmd: Msg): Promise<Msg> {
    this.send({ send: cmd });
    return (await this.next('holder')).holder as Msg;
  }

  async state(): Promise<TreeState> {
    this.send({ state: true });
    return (await this.next('state')).state as TreeState;
  }

  async holderExit(): Promise<{ code: number | null; signal: string | null; stderr: string }> {
    return (await this.next('holderExit')).holderExit as { code: number | null; signal: string | null; stderr: string };
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill('SIGKILL');
  }
}

describe('onoff lines on an emulated sysfs GPIO tree', () => {
  let host: GpioHost;
  beforeAll(async () => {
    host = await GpioHost.start({ sysfs: 'present', chips, export: 'fifo' });
  }, 30_000);
  afterAll(() => host?.close());

  test('label + offset resolve on both bases; active-low, initial levels; close keeps lines exported unless told', async () => {
    const opened = await host.holder({
      lines: {
        vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 17 }, // 571 + 17
        pwrkey: { kind: 'gpio', chip: 'pinctrl-bcm2711', line: 4, activeLow: true, initial: 'off' }, // 512 + 4
        vdd: { kind: 'gpio', gpio: 590, safe: 'off', initial: 'on', unexportOnClose: true },
        nrst: { kind: 'gpio', chip: '/dev/gpiochip1', line: 6, activeLow: true }, // the bcm2711 chip by its cdev
        aux: { kind: 'gpio', chip: '/sys/class/gpio/gpiochip571', line: 20, safe: 'off', unexportOnClose: true },
      },
    });
    expect(opened).toEqual({ opened: ['vbat', 'pwrkey', 'vdd', 'nrst', 'aux'] });
    let s = await host.state();
    expect(s.exported).toEqual({
      '588': { direction: 'out', activeLow: false, raw: 1 },
      '516': { direction: 'out', activeLow: true, raw: 1 }, // off, active-low: high on the wire
      '590': { direction: 'out', activeLow: false, raw: 1 },
      '518': { direction: 'out', activeLow: true, raw: 0 },
      '591': { direction: 'out', activeLow: false, raw: 0 },
    });
    // The level is set with the direction ("high"/"low"), never "out" first: no glitch through low.
    expect(s.log).toEqual(expect.arrayContaining(['gpio588 direction high', 'gpio516 direction high', 'gpio518 direction low']));
    expect(s.log.filter((l) => l.endsWith('direction out'))).toEqual([]);

    expect(await host.ask({ set: 'pwrkey', on: true })).toMatchObject({ done: expect.any(String) });
    expect(await host.ask({ set: 'vbat', on: false })).toMatchObject({ done: expect.any(String) });
    s = await host.state();
    expect(s.exported['516']!.raw).toBe(0);
    expect(s.exported['588']!.raw).toBe(0);
    expect(await host.ask({ get: 'pwrkey' })).toEqual({ value: true });
    expect(await host.ask({ get: 'vbat' })).toEqual({ value: false });

    expect(await host.ask({ close: true })).toEqual({ closed: true });
    s = await host.state();
    // The default: still exported, driven at the safe level.
    expect(s.exported).toEqual({
      '588': { direction: 'out', activeLow: false, raw: 1 }, // safe "on"
      '516': { direction: 'out', activeLow: true, raw: 0 }, // safe "on", active-low
      '518': { direction: 'out', activeLow: true, raw: 0 },
    });
    // unexportOnClose: given back at the safe level (this kernel keeps released outputs driven).
    expect(s.released).toMatchObject({ '590': { direction: 'out', raw: 0 }, '591': { direction: 'out', raw: 0 } });
    expect(s.log.filter((l) => l.startsWith('unexport'))).toEqual(['unexport 590', 'unexport 591']);
    // A closed line refuses to switch, as a firmata one does.
    expect(await host.ask({ set: 'vbat', on: false })).toMatchObject({ error: { message: expect.stringContaining('pi: vbat: cannot switch off: the line is closed') } });
    host.send({ kill: 'SIGTERM' });
    await host.holderExit();
  });

  test('names that match no chip, numbers on no chip and offsets past the chip are ConfigErrors that list the chips', async () => {
    let r = await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-bcm2835', line: 17 } } });
    expect(r.error).toMatchObject({ name: 'ConfigError', kind: 'config' });
    expect((r.error as Msg).message).toContain('pi: vbat: no gpiochip matches "pinctrl-bcm2835"');
    expect((r.error as Msg).seen).toContain('pinctrl-rp1 (gpiochip571: 571..624)');
    await host.holderExit();

    // GPIO17 as it was numbered before kernel 6.6
    r = await host.holder({ lines: { vbat: { kind: 'gpio', gpio: 17 } } });
    expect((r.error as Msg).message).toContain('pi: vbat: GPIO 17 is on no gpiochip of this kernel');
    await host.holderExit();

    r = await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 54 } } });
    expect((r.error as Msg).message).toContain('pi: vbat: pinctrl-rp1 has no line 54');
    await host.holderExit();
    expect((await host.state()).log.filter((l) => l.startsWith('export'))).not.toContain('export 625');
  });

  test('SIGTERM: the holder drives every line to its safe level and still dies of SIGTERM', async () => {
    const opened = await host.holder({
      lines: {
        vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 2, safe: 'on' },
        nrst: { kind: 'gpio', chip: 'pinctrl-rp1', line: 3, activeLow: true, safe: 'on' },
        vdd: { kind: 'gpio', chip: 'pinctrl-bcm2711', line: 10, safe: 'off', initial: 'on' },
      },
    });
    expect(opened).toEqual({ opened: ['vbat', 'nrst', 'vdd'] });
    await host.ask({ set: 'vbat', on: false });
    await host.ask({ set: 'nrst', on: false });
    const before = await host.state();
    expect(before.exported).toMatchObject({ '573': { raw: 0 }, '574': { raw: 1 }, '522': { raw: 1 } });

    host.send({ kill: 'SIGTERM' });
    const exit = await host.holderExit();
    expect(exit).toMatchObject({ code: null, signal: 'SIGTERM' });
    const after = await host.state();
    expect(after.exported).toMatchObject({ '573': { direction: 'out', raw: 1 }, '574': { direction: 'out', raw: 0 }, '522': { direction: 'out', raw: 0 } });
    expect(after.released).not.toHaveProperty('573');
  });

  test('an uncaught exception: the lines are at their safe level before the process dies with the error', async () => {
    await host.holder({
      lines: {
        vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 5, safe: 'on' },
        vdd: { kind: 'gpio', chip: 'pinctrl-rp1', line: 6, activeLow: true, safe: 'off', initial: 'on' },
      },
    });
    await host.ask({ set: 'vbat', on: false });
    expect((await host.state()).exported).toMatchObject({ '576': { raw: 0 }, '577': { raw: 0 } });
    host.send({ send: { throw: 'boom in a flow' } });
    const exit = await host.holderExit();
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('boom in a flow');
    const after = await host.state();
    // Only synchronous work can run in a dying process: the levels are safe, the lines stay exported.
    expect(after.exported).toMatchObject({ '576': { raw: 1 }, '577': { raw: 1 } });
  });

  test('an unhandled rejection is a crash too: safe levels, exit code 1', async () => {
    await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-bcm2711', line: 20, safe: 'on', initial: 'off' } } });
    expect((await host.state()).exported).toMatchObject({ '532': { raw: 0 } });
    host.send({ send: { reject: 'lost promise' } });
    const exit = await host.holderExit();
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('lost promise');
    expect((await host.state()).exported).toMatchObject({ '532': { raw: 1 } });
  });
});

describe('a kernel that returns released outputs to inputs (upstream pinctrl, Pi with strict_gpiod)', () => {
  let host: GpioHost;
  beforeAll(async () => {
    host = await GpioHost.start({ sysfs: 'present', chips, export: 'fifo', release: 'input' });
  }, 30_000);
  afterAll(() => host?.close());

  const lines: PowerConfigInput = {
    lines: {
      vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 30, initial: 'off' }, // relay driver, safe "on"
      nrst: { kind: 'gpio', chip: 'pinctrl-rp1', line: 31, activeLow: true, initial: 'off' },
      vdd: { kind: 'gpio', chip: 'pinctrl-rp1', line: 32, safe: 'off', initial: 'on' },
    },
  };

  test('a clean close leaves every line exported and driven at its safe level, and the next run takes them back', async () => {
    expect(await host.holder(lines)).toEqual({ opened: ['vbat', 'nrst', 'vdd'] });
    expect(await host.ask({ close: true })).toEqual({ closed: true });
    let s = await host.state();
    expect(s.exported).toEqual({
      '601': { direction: 'out', activeLow: false, raw: 1 },
      '602': { direction: 'out', activeLow: true, raw: 0 },
      '603': { direction: 'out', activeLow: false, raw: 0 },
    });
    expect(s.released).toEqual({});
    host.send({ kill: 'SIGTERM' });
    await host.holderExit();

    // Lines left exported are no obstacle: the next run re-drives them to its initial levels.
    expect(await host.holder(lines)).toEqual({ opened: ['vbat', 'nrst', 'vdd'] });
    s = await host.state();
    expect(s.exported).toMatchObject({ '601': { raw: 0 }, '602': { raw: 1 }, '603': { raw: 1 } });
    expect(s.log.filter((l) => l === 'export busy 601')).toHaveLength(0); // re-used, not exported twice
    host.send({ kill: 'SIGTERM' });
    await host.holderExit();
  });

  test('unexportOnClose on such a kernel leaves the relay driver floating: the hazard the default avoids', async () => {
    expect(await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 40, unexportOnClose: true } } })).toEqual({ opened: ['vbat'] });
    expect(await host.ask({ close: true })).toEqual({ closed: true });
    const s = await host.state();
    expect(s.exported).not.toHaveProperty('611');
    expect(s.released['611']).toMatchObject({ direction: 'in' });
    host.send({ kill: 'SIGTERM' });
    await host.holderExit();
  });
});

describe('onoff export failures name the line', () => {
  test('EACCES: a user who may not write /sys/class/gpio/export', async () => {
    const host = await GpioHost.start({ sysfs: 'present', chips, export: 'root-only' });
    try {
      const r = await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 17 } } }, 65534);
      expect(r.error).toMatchObject({ name: 'InfrastructureError', kind: 'infrastructure', station: 'pi' });
      expect((r.error as Msg).message).toContain('pi: vbat: could not take pinctrl-rp1 line 17 = GPIO 588: permission denied (EACCES)');
      expect((r.error as Msg).expected).toContain('gpio group');
    } finally {
      host.close();
    }
  });

  test('EINVAL: the kernel refuses the export', async () => {
    const host = await GpioHost.start({ sysfs: 'present', chips, export: 'einval' });
    try {
      const r = await host.holder({ lines: { relay: { kind: 'gpio', chip: 'mcp23017', line: 6 } } });
      expect(r.error).toMatchObject({ name: 'InfrastructureError' });
      expect((r.error as Msg).message).toContain('pi: relay: could not take mcp23017 line 6 = GPIO 1030: the kernel refused the export (EINVAL)');
      expect((r.error as Msg).seen).toMatch(/^EINVAL on \/sys\/class\/gpio\/export/);
    } finally {
      host.close();
    }
  });

  test('a kernel without sysfs GPIO', async () => {
    const host = await GpioHost.start({ sysfs: 'missing', chips: [], export: 'fifo' });
    try {
      const r = await host.holder({ lines: { vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 17 } } });
      expect(r.error).toMatchObject({ name: 'InfrastructureError', station: 'pi' });
      expect((r.error as Msg).message).toContain('pi: vbat: sysfs GPIO is missing: there is no /sys/class/gpio/export');
    } finally {
      host.close();
    }
  });
});
