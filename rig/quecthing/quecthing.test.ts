import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { AtCommandError, AtPort, AtResponseError, formatTranscript } from '../at/index.ts';
import { createMockModule } from '../at/testing/mock.ts';
import { answer } from '../at/testing/peer.ts';
import type { Script } from '../at/testing/peer.ts';
import { AbortedError, ConfigError } from '../errors.ts';
import { EventFailedError, EventTimeoutError } from './cursor.ts';
import { isEvent } from './events.ts';
import { QuecThing, UpdateAction } from './quecthing.ts';

const ports: AtPort[] = [];
afterEach(async () => {
  for (const p of ports.splice(0)) await p.close();
  SerialPortMock.binding.reset();
});

async function setup(replies: Record<string, string | ((cmd: string) => string)>, extra?: Script) {
  const { serial, peer } = createMockModule({
    seed: 3,
    script: (cmd, p) => {
      const r = replies[cmd];
      if (r !== undefined) void p.send(typeof r === 'function' ? r(cmd) : r);
      else extra?.(cmd, p);
    },
  });
  const port = new AtPort({ station: 'bench-1', serial, commandTimeoutMs: 1000 });
  ports.push(port);
  await port.open();
  return { qt: new QuecThing(port), peer, port };
}

describe('QuecThing commands', () => {
  it('send the documented command text and parse typed answers', async () => {
    const { qt, peer } = await setup({
      AT: answer('OK'),
      ATE0: 'ATE0\r' + answer('OK'),
      ATI: answer('Quectel', 'EC200U', 'Revision: EC200UCNAAR02A11M08', 'OK'),
      'AT+QGMR': answer('EC200UCNAAR02A11M08_01.200.01.200', 'OK'),
      'AT+GSN': answer('866123456789012', 'OK'),
      'AT+CFUN=4': answer('OK'),
      'AT+CFUN=1,1': answer('OK'),
      'AT+CFUN?': answer('+CFUN: 1', 'OK'),
      'AT+CSQ': answer('+CSQ: 24,99', 'OK'),
      'AT+QIOTCFG="productinfo","p11abc","c2VjcmV0"': answer('OK'),
      'AT+QIOTCFG="productinfo"': answer('+QIOTCFG: "productinfo","p11abc","c2VjcmV0","1"', 'OK'),
      'AT+QIOTCFG="server",1,"mqtt://iot-south.acceleronix.io:1883"': answer('OK'),
      'AT+QIOTCFG="server"': answer('+QIOTCFG: "server",1,"mqtt://iot-south.acceleronix.io:1883"', 'OK'),
      'AT+QIOTREG=1': answer('OK'),
      'AT+QIOTREG?': answer('+QIOTREG: 1', 'OK'),
      'AT+QIOTSTATE?': answer('+QIOTSTATE: 8', 'OK'),
      'AT+QURCCFG="urcport"': answer('+QURCCFG: "urcport","uart1"', 'OK'),
      'AT+QIOTINFO?': answer('+QIOTINFO: "sdkver","2.9.0"', '+QIOTINFO: "modver","EC200U,A"', 'OK'),
      'AT+QIOTMCUVER="STM32","1_0_0"': answer('OK'),
      'AT+QIOTMCUVER?': answer('+QIOTMCUVER: "STM32","1_0_0"', '+QIOTMCUVER: "BLE","0.9"', 'OK'),
      'AT+QIOTMCUVER="STM32"': answer('+QIOTMCUVER: "STM32","1_0_0"', 'OK'),
      'AT+QIOTMCUVER="NONE"': answer('OK'),
      AT_QIOTOTAREQ: '',
      'AT+QIOTOTAREQ': answer('OK'),
      'AT+QIOTOTAREQ=0': answer('OK'),
      'AT+QIOTOTAREQ=1': answer('OK'),
      'AT+QIOTUPDATE=0': answer('OK'),
      'AT+QIOTUPDATE=1': answer('OK'),
      'AT+QIOTUPDATE=2': answer('OK'),
      'AT+QIOTUPDATE=3': answer('OK'),
    });
    await qt.at();
    await qt.setEcho(false);
    expect(await qt.identify()).toEqual({
      manufacturer: 'Quectel',
      model: 'EC200U',
      revision: 'EC200UCNAAR02A11M08',
      lines: ['Quectel', 'EC200U', 'Revision: EC200UCNAAR02A11M08'],
    });
    expect(await qt.firmwareRevision()).toBe('EC200UCNAAR02A11M08_01.200.01.200');
    expect(await qt.imei()).toBe('866123456789012');
    await qt.setFunctionality(4);
    await qt.setFunctionality(1, true);
    expect(await qt.functionality()).toBe(1);
    expect(await qt.signalQuality()).toEqual({ rssi: 24, ber: 99, dbm: -65 });
    expect(await qt.urcPort()).toBe('uart1');
    await qt.setProductInfo('p11abc', 'c2VjcmV0');
    expect(await qt.productInfo()).toEqual({ productKey: 'p11abc', productSecret: 'c2VjcmV0', authVersion: '1' });
    await qt.setServer(1, 'mqtt://iot-south.acceleronix.io:1883');
    expect(await qt.server()).toEqual({ type: 1, url: 'mqtt://iot-south.acceleronix.io:1883' });
    await qt.register(1);
    expect(await qt.registration()).toBe(1);
    expect(await qt.state()).toEqual({ state: 8, name: 'subscribed' });
    expect(await qt.info()).toEqual([
      { item: 'sdkver', value: '2.9.0' },
      { item: 'modver', value: 'EC200U,A' },
    ]);
    await qt.setMcuVersion('STM32', '1_0_0');
    expect(await qt.mcuVersions()).toEqual([
      { component: 'STM32', version: '1_0_0' },
      { component: 'BLE', version: '0.9' },
    ]);
    expect(await qt.mcuVersion('STM32')).toBe('1_0_0');
    expect(await qt.mcuVersion('NONE')).toBeUndefined();
    await qt.otaRequest();
    await qt.otaRequest({ sha256: false });
    await qt.otaRequest({ sha256: true });
    for (const a of [UpdateAction.refuse, UpdateAction.confirm, UpdateAction.nextPiece, UpdateAction.updating]) await qt.otaUpdate(a);
    expect(peer.received.slice(-7)).toEqual([
      'AT+QIOTOTAREQ',
      'AT+QIOTOTAREQ=0',
      'AT+QIOTOTAREQ=1',
      'AT+QIOTUPDATE=0',
      'AT+QIOTUPDATE=1',
      'AT+QIOTUPDATE=2',
      'AT+QIOTUPDATE=3',
    ]);
  });

  it('reads a block as a Buffer and checks its header against the request', async () => {
    const data = Buffer.from('\r\nOK\r\n\0\0ERROR\r\n+QIOTEVT: 7,10706\r\n');
    const { qt } = await setup({
      'AT+QIOTOTARD=27648,1024': `\r\n+QIOTOTARD: 27648,${data.length}\r\n${data.toString('latin1')}\r\n\r\nOK\r\n`,
      'AT+QIOTOTARD=0,16': `\r\n+QIOTOTARD: 16,4\r\nabcd\r\n\r\nOK\r\n`,
      'AT+QIOTOTARD=0,2': `\r\n+QIOTOTARD: 0,4\r\nabcd\r\n\r\nOK\r\n`,
      'AT+QIOTOTARD=99999,1024': answer('ERROR'),
    });
    const events: string[] = [];
    qt.on('event', (e) => events.push(e.kind));
    expect(await qt.otaRead(27648, 1024)).toEqual({ start: 27648, data });
    await expect(qt.otaRead(0, 16)).rejects.toThrow(/expected \+QIOTOTARD: 0,<n> with 0 < n ≤ 16; seen \+QIOTOTARD: 16,4 with 4 bytes/);
    await expect(qt.otaRead(0, 2)).rejects.toBeInstanceOf(AtResponseError);
    await expect(qt.otaRead(99999, 1024)).rejects.toBeInstanceOf(AtCommandError);
    expect(events).toEqual([]); // the +QIOTEVT inside the data is data
    await expect(qt.otaRead(-1, 10)).rejects.toBeInstanceOf(RangeError);
  });

  it('reads ahead: the next block leaves behind a whole block and only then, with the caller\'s say', async () => {
    const block = (start: number, n: number) => `\r\n+QIOTOTARD: ${start},${n}\r\n${'x'.repeat(n)}\r\n\r\nOK\r\n`;
    const { qt, peer } = await setup({
      'AT+QIOTOTARD=0,8': block(0, 8),
      'AT+QIOTOTARD=8,8': block(8, 8),
      'AT+QIOTOTARD=16,8': block(16, 5),
      'AT+QIOTOTARD=24,8': block(24, 8),
      'AT+QIOTOTARD=21,8': block(21, 8),
      // A module that prints the header without the space: read ahead all the same.
      'AT+QIOTOTARD=32,8': `\r\n+QIOTOTARD:32,8\r\n${'y'.repeat(8)}\r\n\r\nOK\r\n`,
      'AT+QIOTOTARD=40,8': block(40, 8),
      // A block from the wrong place, and a read that asked for more than it got.
      'AT+QIOTOTARD=48,8': block(49, 8),
      'AT+QIOTOTARD=56,16': block(56, 8),
      'AT+QIOTOTARD=72,8': answer('ERROR'),
    });
    // On a port that has answered nothing yet, nothing can be followed.
    await expect(qt.otaReadAfter({ start: 0, length: 8 }, 8, 8)).resolves.toBeUndefined();
    const first = qt.otaRead(0, 8);
    const second = qt.otaReadAfter({ start: 0, length: 8 }, 8, 8);
    await expect(first).resolves.toMatchObject({ start: 0 });
    await expect(second).resolves.toMatchObject({ start: 8, data: Buffer.from('x'.repeat(8)) });
    // The caller says no (a fault due at the boundary): not sent.
    const third = qt.otaRead(16, 8);
    const vetoed = qt.otaReadAfter({ start: 16, length: 8 }, 24, 8, { when: () => false });
    await expect(third).resolves.toMatchObject({ start: 16, data: Buffer.from('xxxxx') });
    await expect(vetoed).resolves.toBeUndefined();
    // The block before came back short (5 of 8): the next one starts elsewhere, so it is not sent.
    const again = qt.otaRead(16, 8);
    const wrongPlace = qt.otaReadAfter({ start: 16, length: 8 }, 24, 8, { when: () => true });
    await again;
    await expect(wrongPlace).resolves.toBeUndefined();
    // Behind another command than the one named, it is not sent either.
    const other = qt.otaRead(0, 8);
    const notBehind = qt.otaReadAfter({ start: 8, length: 8 }, 16, 8);
    await other;
    await expect(notBehind).resolves.toBeUndefined();
    const terse = qt.otaRead(32, 8);
    const behindTerse = qt.otaReadAfter({ start: 32, length: 8 }, 40, 8);
    await terse;
    await expect(behindTerse).resolves.toMatchObject({ start: 40 });
    // Whole, but from another offset than asked: the read fails, and nothing follows it.
    const misplaced = qt.otaRead(48, 8);
    const behindMisplaced = qt.otaReadAfter({ start: 48, length: 8 }, 56, 8);
    await expect(misplaced).rejects.toBeInstanceOf(AtResponseError);
    await expect(behindMisplaced).resolves.toBeUndefined();
    // Behind a read of another length than named (16 asked, 8 came): not the read it was queued behind.
    const longer = qt.otaRead(56, 16);
    const behindLonger = qt.otaReadAfter({ start: 56, length: 8 }, 64, 8);
    await longer;
    await expect(behindLonger).resolves.toBeUndefined();
    // Behind a read the module refused.
    const refused = qt.otaRead(72, 8);
    const behindRefused = qt.otaReadAfter({ start: 72, length: 8 }, 80, 8);
    await expect(refused).rejects.toBeInstanceOf(AtCommandError);
    await expect(behindRefused).resolves.toBeUndefined();
    expect(peer.received).toEqual(['AT+QIOTOTARD=0,8', 'AT+QIOTOTARD=8,8', 'AT+QIOTOTARD=16,8', 'AT+QIOTOTARD=16,8', 'AT+QIOTOTARD=0,8', 'AT+QIOTOTARD=32,8', 'AT+QIOTOTARD=40,8', 'AT+QIOTOTARD=48,8', 'AT+QIOTOTARD=56,16', 'AT+QIOTOTARD=72,8']);
  });

  it('rejects malformed answers with what was expected, without leaking the secret', async () => {
    const { qt } = await setup({
      'AT+GSN': answer('not-an-imei', 'OK'),
      'AT+QIOTSTATE?': answer('+QIOTSTATE: ready', 'OK'),
      'AT+QIOTCFG="productinfo"': answer('+QIOTCFG: "server","p11abc","hunter2"', 'OK'),
      'AT+QURCCFG="urcport"': answer('+QURCCFG: "urcport"', 'OK'),
    });
    await expect(qt.urcPort()).rejects.toThrow(/expected \+QURCCFG: "urcport","<port>"; seen "\+QURCCFG: \\"urcport\\""/);
    await expect(qt.imei()).rejects.toThrow(/bench-1: unexpected answer to AT\+GSN .*expected a 15-digit IMEI; seen "not-an-imei"/s);
    await expect(qt.state()).rejects.toBeInstanceOf(AtResponseError);
    const e = (await qt.productInfo().catch((err: unknown) => err)) as Error;
    expect(e).toBeInstanceOf(AtResponseError);
    expect(JSON.stringify({ m: e.message, j: e })).not.toContain('hunter2');
    await expect(qt.setMcuVersion('STM32', 'bad"version')).rejects.toBeInstanceOf(ConfigError);
    const bad = (await qt.setProductInfo('p11abc', 'hun"ter2').catch((err: unknown) => err)) as ConfigError;
    expect(bad).toBeInstanceOf(ConfigError);
    expect(bad.message).toBe('bench-1: cannot send the ProductSecret as an AT string parameter (contains a quote or a control character)');
  });
});

describe('QuecThing MCU version of one component', () => {
  it('is undefined for an unknown component whether the module answers a bare OK or ERROR', async () => {
    const { qt, peer } = await setup({
      'AT+QIOTMCUVER="STM32"': answer('+QIOTMCUVER: "STM32","1_0_0"', 'OK'),
      'AT+QIOTMCUVER="OKNONE"': answer('OK'),
      'AT+QIOTMCUVER="NONE"': answer('ERROR'),
      'AT+QIOTMCUVER?': answer('+QIOTMCUVER: "STM32","1_0_0"', 'OK'),
    });
    expect(await qt.mcuVersion('STM32')).toBe('1_0_0');
    expect(await qt.mcuVersion('OKNONE')).toBeUndefined();
    expect(await qt.mcuVersion('NONE')).toBeUndefined();
    // The ERROR was checked against the whole list before it was taken to mean "unknown".
    expect(peer.received.slice(-2)).toEqual(['AT+QIOTMCUVER="NONE"', 'AT+QIOTMCUVER?']);
  });

  it('keeps an ERROR for a component the module lists, or when the list cannot be read', async () => {
    const { qt } = await setup({
      'AT+QIOTMCUVER="STM32"': answer('ERROR'),
      'AT+QIOTMCUVER?': answer('+QIOTMCUVER: "STM32","1_0_0"', 'OK'),
    });
    const e = (await qt.mcuVersion('STM32').catch((err: unknown) => err)) as AtCommandError;
    expect(e).toBeInstanceOf(AtCommandError);
    expect(e.message).toContain('AT+QIOTMCUVER="STM32" answered ERROR');
    const { qt: qt2 } = await setup({ 'AT+QIOTMCUVER="NONE"': answer('ERROR'), 'AT+QIOTMCUVER?': answer('ERROR') });
    await expect(qt2.mcuVersion('NONE')).rejects.toThrow('AT+QIOTMCUVER="NONE" answered ERROR');
  });
});

describe('QuecThing secrets', () => {
  it('masks the ProductSecret and the DeviceSecret everywhere once set or read, even in garbled lines', async () => {
    const { qt, port } = await setup({
      'AT+QIOTCFG="productinfo","p11abc","c2VjcmV0"': `AT+QIOTCFG="productinfo,"p11abc","c2VjcmV0"\r${answer('OK')}`,
      'AT+QIOTCFG="dk_ds","dk1","DEVSECRET1"': `AT+QIOTCFG="dk_ds","dk1,"DEVSECRET1"\r${answer('OK')}`,
      'AT+QIOTCFG="dk_ds"': answer('+QIOTCFG: "dk_ds","dk1","DEVSECRET1"', 'OK'),
      'AT+QIOTCFG="productinfo"': answer('+QIOTCFG: "productinfo","p11abc","ModuleHeldPS","1"', 'OK'),
      'AT+QIOTSTATE?': answer('+QIOTSTATE: "p11abc,ModuleHeldPS"', 'OK'),
    });
    await qt.setProductInfo('p11abc', 'c2VjcmV0');
    await qt.setDeviceKey('dk1', 'DEVSECRET1');
    expect(await qt.deviceKey()).toEqual({ deviceKey: 'dk1', deviceSecret: 'DEVSECRET1' });
    expect(await qt.productInfo()).toEqual({ productKey: 'p11abc', productSecret: 'ModuleHeldPS', authVersion: '1' });
    const e = (await qt.state().catch((err: unknown) => err)) as AtResponseError;
    expect(e).toBeInstanceOf(AtResponseError);
    const lines = port.transcript().map((x) => `[${x.dir}]${x.text}`);
    expect(lines).toContain('[RX]AT+QIOTCFG="productinfo,"p11abc","********"');
    expect(lines).toContain('[TX]AT+QIOTCFG="dk_ds","dk1","********"');
    expect(lines).toContain('[RX]AT+QIOTCFG="dk_ds","dk1,"********"');
    expect(lines).toContain('[RX]+QIOTCFG: "dk_ds","dk1","********"');
    const everything = JSON.stringify({ t: port.transcript(), f: formatTranscript(port.transcript()), e, m: e.message });
    for (const secret of ['c2VjcmV0', 'DEVSECRET1', 'ModuleHeldPS']) expect(everything).not.toContain(secret);
    await expect(qt.setDeviceKey('dk1', 'bad"secret')).rejects.toThrow('cannot send the DeviceSecret as an AT string parameter');
  });
});

describe('QuecThing events', () => {
  it('cannot miss an event that arrives in the same read as the OK', async () => {
    const { qt } = await setup({
      'AT+QIOTOTAREQ=1': answer('OK', '+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954'),
    });
    const events = qt.events();
    await qt.otaRequest({ sha256: true });
    const plan = await events.next(isEvent('ota-plan'), { timeoutMs: 1000 });
    expect(plan.target).toBe('2_0_0');
  });

  it('passes over other events, fails fast on failOn, times out with what it saw', async () => {
    const { qt, peer } = await setup({});
    const events = qt.events();
    await peer.send(answer('+QIOTEVT: 7,10702', '+QIOTEVT: 7,10702', '+QIOTEVT: 7,10703,"STM32",10,0,10'));
    const piece = await events.next(isEvent('ota-piece-ready'), { timeoutMs: 1000 });
    expect(piece).toMatchObject({ start: 0, length: 10 });
    expect(events.history.map((e) => e.kind)).toEqual(['ota-downloading', 'ota-downloading', 'ota-piece-ready']);

    await peer.send(answer('+QIND: "FOTA","END",0', '+QIOTEVT: 7,10706'));
    const failed = (await events
      .next(isEvent('ota-success'), { timeoutMs: 1000, failOn: isEvent('ota-failed', 'reboot'), expected: '+QIOTEVT: 7,10705' })
      .catch((e: unknown) => e)) as EventFailedError;
    expect(failed).toBeInstanceOf(EventFailedError);
    expect(failed.message).toMatch(/^bench-1: \+QIOTEVT: 7,10706 while waiting for \+QIOTEVT: 7,10705/);

    const timeout = (await events.next(isEvent('ota-success'), { timeoutMs: 30, expected: '+QIOTEVT: 7,10705' }).catch((e: unknown) => e)) as Error;
    expect(timeout).toBeInstanceOf(EventTimeoutError);
    expect(timeout.message).toContain('no +QIOTEVT: 7,10705 within 30 ms');
    expect(timeout.message).toContain('"+QIOTEVT: 7,10706"');

    const ctl = new AbortController();
    const waiting = events.next(isEvent('ota-success'), { timeoutMs: 60_000, signal: ctl.signal }).catch((e: unknown) => e);
    ctl.abort(new Error('suite timeout'));
    expect(await waiting).toBeInstanceOf(AbortedError);
    events.close();
  });
});
