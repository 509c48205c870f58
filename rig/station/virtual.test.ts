// The virtual station described as a bench: the pure part of virtual.ts (the process part runs in open.test.ts).
import { expect, test } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { resolveTimeouts } from './timeouts.ts';
import { stationFromSim } from './virtual.ts';

const simLine = {
  admin: { url: 'http://127.0.0.1:40001' },
  module: { port: '/tmp/sota-rig-virtual-x/module-rig', imei: '861234567890123', baud: 921600 },
  firmata: {
    port: '/tmp/sota-rig-virtual-x/firmata-rig',
    pins: { moduleVbat: 2, moduleResetN: 3, targetVdd: 4, targetNrst: 5 },
    contacts: { moduleVbat: 'NC', moduleResetN: 'NC', targetVdd: 'NO', targetNrst: 'NC' },
  },
  jtag: { host: '127.0.0.1', port: 40002, target: 'stm32f4x' },
} as const;

test('the sim’s answer becomes an ordinary bench entry: pty, relay lines in their roles, remote_bitbang, admin API', () => {
  const v = parseConfig({ stations: { virtual: { target: 'stm32f4x', baud: 921600, timeScale: 0.1, timeouts: { bootMs: 4000 }, openocd: '/opt/openocd/bin/openocd' } } }).stations.virtual!;
  if (v.kind !== 'virtual') throw new Error('not virtual');
  const hw = stationFromSim(v, structuredClone(simLine) as Parameters<typeof stationFromSim>[1]);
  expect(hw.kind).toBe('hardware');
  expect(hw.module).toEqual({ port: '/tmp/sota-rig-virtual-x/module-rig', baudRate: 921600 });
  expect(hw.power.boards).toEqual({ relays: { port: '/tmp/sota-rig-virtual-x/firmata-rig', connectTimeoutMs: 10_000, baudRate: 57600 } });
  expect(hw.power.lines['target-vdd']).toEqual({ kind: 'firmata', board: 'relays', pin: 4, relay: 'NO', safe: 'on' });
  expect(hw.power.lines['module-reset']).toEqual({ kind: 'firmata', board: 'relays', pin: 3, relay: 'NC', safe: 'on' });
  expect(hw.power.roles).toEqual({ moduleSupply: 'module-vbat', moduleReset: 'module-reset', targetSupply: 'target-vdd', targetReset: 'target-nrst' });
  expect(hw.probe).toMatchObject({ interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 40002 }, target: 'stm32f4x', workAreaSize: 0, openocd: '/opt/openocd/bin/openocd' });
  expect(hw.plans).toEqual({ kind: 'api', url: 'http://127.0.0.1:40001' });
  expect(hw.timeouts).toEqual({ timeScale: 0.1, bootMs: 4000 });
  expect(resolveTimeouts(hw.timeouts).bootMs).toBe(400);
});

test('a virtual entry takes its time scale from `timeScale`, not from `timeouts`', () => {
  expect(() => parseConfig({ stations: { virtual: { timeScale: 0.1, timeouts: { timeScale: 0.5 } } } })).toThrow(
    /stations\.virtual\.timeouts\.timeScale: expected one of the keys commandMs, bootMs/,
  );
});
