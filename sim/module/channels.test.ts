// The module's two AT channels on one state machine: the USB AT port (the rig's) and the main UART uart1
// (the MCU's). Per-channel echo and line assembly, answers on the channel a command came from, RDY on both,
// URCs where AT+QURCCFG="urcport" sends them, and --honour-urcport's two readings (protocol §6, §9.8).
// In-process, with the real module, cloud, rails and clock: the channels are the module's own ports here.
import { afterEach, describe, expect, test } from 'vitest';
import { SimClock } from '../clock.ts';
import { Cloud, defaultCloudOptions } from '../cloud/cloud.ts';
import { Rails } from '../rails.ts';
import { channelNames, defaultModuleOptions, defaultTimers, Module, type ChannelName, type ModuleOptions } from './module.ts';
import { NvStore } from './nv.ts';
import { waitOn } from '../wait.ts';

/** What one channel's port received, with bounded waits on it. */
class Port {
  text = '';
  private waiters = new Set<() => void>();
  write(b: Buffer): void {
    this.text += b.toString('latin1');
    for (const w of [...this.waiters]) w();
  }
  flush(): void {}
  mark(): number {
    return this.text.length;
  }
  since(mark: number): string {
    return this.text.slice(mark);
  }
  waitFor(s: string, from = 0, timeoutMs = 3000): Promise<number> {
    return waitOn(
      this.waiters,
      () => {
        const i = this.text.indexOf(s, from);
        return i < 0 ? undefined : i + s.length;
      },
      timeoutMs,
      () => `expected ${JSON.stringify(s)} within ${timeoutMs} ms; seen since ${from}: ${JSON.stringify(this.text.slice(from).slice(-400))}`,
    );
  }
}

const clocks: SimClock[] = [];
afterEach(() => {
  for (const c of clocks.splice(0)) c.stopAll();
});

async function station(opts: Partial<ModuleOptions> = {}, urcPort = 'usbat') {
  const clock = new SimClock(0.002);
  clocks.push(clock);
  const rails = new Rails();
  const cloud = new Cloud(clock, { ...defaultCloudOptions, pushIntervalMs: 0 });
  const nv = new NvStore(undefined, { urcPort }, () => {});
  const ports: Record<ChannelName, Port> = { usbat: new Port(), uart1: new Port() };
  const m = new Module({ ...defaultModuleOptions, imei: '861234567890123', timers: defaultTimers, ...opts }, clock, rails, cloud, nv, ports, () => {});
  await Promise.all(channelNames.map((n) => ports[n].waitFor('\r\nRDY\r\n')));
  const command = async (ch: ChannelName, line: string): Promise<string> => {
    const from = ports[ch].mark();
    m.input(ch, Buffer.from(`${line}\r`, 'latin1'));
    const end = await Promise.race([ports[ch].waitFor('\r\nOK\r\n', from), ports[ch].waitFor('\r\nERROR\r\n', from)]);
    return ports[ch].text.slice(from, end);
  };
  return { m, ports, rails, command, close: () => m.close() };
}

describe('two AT channels, one state machine', () => {
  test('RDY on both; each channel echoes by its own ATE; an answer goes back only where the command came from', async () => {
    const s = await station();
    expect(await s.command('uart1', 'AT')).toBe('AT\r\r\nOK\r\n');
    expect(await s.command('uart1', 'ATE0')).toBe('ATE0\r\r\nOK\r\n');
    const usb = s.ports.usbat.mark();
    expect(await s.command('uart1', 'AT+CGSN')).toBe('\r\n861234567890123\r\n\r\nOK\r\n');
    // The USB AT port still echoes (ATE is per channel) and saw nothing of uart1's dialogue.
    expect(s.ports.usbat.since(usb)).toBe('');
    expect(await s.command('usbat', 'AT+CGSN')).toBe('AT+CGSN\r\r\n861234567890123\r\n\r\nOK\r\n');
    expect(s.m.snapshot()).toMatchObject({ echo: true, channels: { usbat: { echo: true }, uart1: { echo: false } } });
    // Half a line on one channel does not mix with a whole line on the other.
    const u1 = s.ports.uart1.mark();
    s.m.input('uart1', Buffer.from('AT+QIOTST', 'latin1'));
    expect(await s.command('usbat', 'AT')).toBe('AT\r\r\nOK\r\n');
    s.m.input('uart1', Buffer.from('ATE?\r', 'latin1'));
    await s.ports.uart1.waitFor('\r\nOK\r\n', u1);
    expect(s.ports.uart1.since(u1)).toBe('\r\n+QIOTSTATE: 1\r\n\r\nOK\r\n');
    s.close();
  });

  test('a power cycle turns echo on again on both channels and sends RDY on both', async () => {
    const s = await station();
    await s.command('uart1', 'ATE0');
    await s.command('usbat', 'ATE0');
    const marks = { usbat: s.ports.usbat.mark(), uart1: s.ports.uart1.mark() };
    s.rails.set('moduleVbat', false);
    s.rails.set('moduleVbat', true);
    await Promise.all(channelNames.map((n) => s.ports[n].waitFor('\r\nRDY\r\n', marks[n])));
    expect(await s.command('uart1', 'AT')).toBe('AT\r\r\nOK\r\n');
    expect(await s.command('usbat', 'AT')).toBe('AT\r\r\nOK\r\n');
    s.close();
  });

  test.each([
    ['usbat', ['usbat']],
    ['uart1', ['uart1']],
    ['all', ['usbat', 'uart1']],
    ['uart2', []],
  ] as const)('urcport "%s": +QIOTEVT of a registration reaches %j only', async (urcPort, reaches) => {
    const s = await station();
    await s.command('usbat', 'ATE0');
    await s.command('uart1', 'ATE0');
    await s.command('uart1', `AT+QURCCFG="urcport","${urcPort}"`);
    const marks = { usbat: s.ports.usbat.mark(), uart1: s.ports.uart1.mark() };
    await s.command('uart1', 'AT+QIOTCFG="productinfo","p1test","secret1"');
    await s.command('uart1', 'AT+QIOTREG=1');
    // QIOTSTATE 8 comes with 3,10200; wait on the state, then look at what each channel got.
    await new Promise<void>((resolve) => {
      const off = s.m.onChange(() => {
        if (s.m.connectionState === 8) {
          off();
          resolve();
        }
      });
    });
    for (const n of channelNames) {
      const got = s.ports[n].since(marks[n]);
      if ((reaches as readonly string[]).includes(n)) expect(got, n).toContain('\r\n+QIOTEVT: 3,10200\r\n');
      else expect(got, n).not.toContain('+QIOTEVT');
    }
    s.close();
  });

  test('the factory urcport is the sim option; the query answers on the asking channel', async () => {
    const s = await station({}, 'uart1');
    expect(await s.command('usbat', 'AT+QURCCFG="urcport"')).toBe('AT+QURCCFG="urcport"\r\r\n+QURCCFG: "urcport","uart1"\r\n\r\nOK\r\n');
    expect(s.m.urcChannels()).toEqual(['uart1']);
    s.close();
  });

  test('--honour-urcport off: +QIOTEVT goes out on both channels whatever urcport says', async () => {
    const s = await station({ honourUrcPort: false });
    await s.command('usbat', 'ATE0');
    await s.command('uart1', 'ATE0');
    await s.command('usbat', 'AT+QURCCFG="urcport","usbat"');
    const u1 = s.ports.uart1.mark();
    await s.command('usbat', 'AT+QIOTCFG="productinfo","p1test","secret1"');
    await s.command('usbat', 'AT+QIOTREG=1');
    await s.ports.usbat.waitFor('\r\n+QIOTEVT: 3,10200\r\n');
    await s.ports.uart1.waitFor('\r\n+QIOTEVT: 3,10200\r\n', u1);
    s.close();
  });
});
