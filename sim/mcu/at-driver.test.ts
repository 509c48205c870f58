// The MCU's AT driver on its own: echo skipped, URCs apart from answers, counted binary reads, and an answer
// cut short by the module's power loss that must not swallow the RDY that follows it.
import { expect, test } from 'vitest';
import { ManualClock } from '../clock.ts';
import { AtDriver } from './at-driver.ts';
import { defaultMcuOptions, type Firmware } from './firmware.ts';
import { McuRuntime } from './runtime.ts';

function driver() {
  const clock = new ManualClock();
  const rt = new McuRuntime(clock);
  rt.setRunning(true);
  const sent: string[] = [];
  let receive: (b: Buffer) => void = () => {};
  const fw = { rt, options: { ...defaultMcuOptions, uartBaud: 0 }, uartSend: (b: Buffer) => void sent.push(b.toString('latin1')), uartReceive: (fn: (b: Buffer) => void) => void (receive = fn) } as unknown as Firmware;
  const at = new AtDriver(fw);
  return { clock, at, sent, module: (s: string | Buffer) => receive(typeof s === 'string' ? Buffer.from(s, 'latin1') : s) };
}

test('an answer with its echo, a URC in between, and binary data holding CR LF and OK', async () => {
  const d = driver();
  const reply = d.at.command('AT+QIOTOTARD=0,8', 64);
  const data = Buffer.from('\r\nOK\r\n\x00\xff', 'latin1');
  d.module('AT+QIOTOTARD=0,8\r\r\n+QIOTEVT: 7,10702\r\n\r\n+QIOTOTARD: 0,8\r\n');
  d.module(Buffer.concat([data, Buffer.from('\r\n\r\nOK\r\n')]));
  await d.clock.advance(0);
  const r = await reply;
  expect(d.sent).toEqual(['AT+QIOTOTARD=0,8\r']);
  expect(r).toEqual({ final: 'OK', lines: ['+QIOTOTARD: 0,8'], data });
  expect(d.at.urcs).toEqual(['+QIOTEVT: 7,10702']);
});

test('a read answer cut off by the module losing power: the command times out and the RDY after it is still seen', async () => {
  const d = driver();
  const reply = d.at.command('AT+QIOTOTARD=4096,1024', 1088);
  d.module('\r\n+QIOTOTARD: 4096,1024\r\n');
  d.module(Buffer.alloc(300, 0x55));
  d.module('\r\nRDY\r\n');
  await d.clock.advance(20_000);
  expect(await reply).toBeUndefined();
  expect(d.at.urcs).toEqual(['RDY']);
  expect(d.at.stats.timeouts).toBe(1);
  // And the driver is back to lines: the next command is answered normally.
  const next = d.at.command('AT');
  d.module('\r\nOK\r\n');
  await d.clock.advance(0);
  expect(await next).toEqual({ final: 'OK', lines: [] });
});

test('a read answer cut in its header: the RDY after it is not taken for the one byte "+QIOTOTARD: 2048,1" announced', async () => {
  const d = driver();
  const reply = d.at.command('AT+QIOTOTARD=2048,1024', 1088);
  d.module('\r\n+QIOTOTARD: 2048,1');
  d.module('\r\nRDY\r\n');
  await d.clock.advance(20_000);
  expect(await reply).toBeUndefined();
  expect(d.at.urcs).toEqual(['RDY']);
  expect(d.at.stats.cutBlocks).toBe(1);
});
