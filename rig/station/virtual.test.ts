// The virtual station described as a bench: the pure part of virtual.ts (the process part runs in open.test.ts),
// and what becomes of the sim when the rig dies without closing it.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { firstLine } from '../../sim/harness.ts';
import { parseConfig } from '../config/load.ts';
import { commandLine, descendants, isGone } from './testing/procs.ts';
import { resolveTimeouts } from './timeouts.ts';
import { stationFromSim, withVirtualMcu } from './virtual.ts';

const simLine = {
  admin: { url: 'http://127.0.0.1:40001' },
  module: { port: '/tmp/sota-rig-virtual-x/module-rig', imei: '861234567890123', baud: 921600 },
  firmata: {
    port: '/tmp/sota-rig-virtual-x/firmata-rig',
    pins: { moduleVbat: 2, moduleResetN: 3, targetVdd: 4, targetNrst: 5 },
    contacts: { moduleVbat: 'NC', moduleResetN: 'NC', targetVdd: 'NO', targetNrst: 'NC' },
  },
  jtag: { host: '127.0.0.1', port: 40002, target: 'stm32f4x', buspirate: '/tmp/sota-rig-virtual-x/probe-buspirate' },
} as const;

test('the sim’s answer becomes an ordinary bench entry: pty, relay lines in their roles, a Bus Pirate probe, admin API', () => {
  const v = parseConfig({ stations: { virtual: { target: 'stm32f4x', baud: 921600, timeScale: 0.1, timeouts: { bootMs: 4000 }, openocd: '/opt/openocd/bin/openocd' } } }).stations.virtual!;
  if (v.kind !== 'virtual') throw new Error('not virtual');
  const hw = stationFromSim(v, structuredClone(simLine) as Parameters<typeof stationFromSim>[1]);
  expect(hw.kind).toBe('hardware');
  expect(hw.module).toEqual({ port: '/tmp/sota-rig-virtual-x/module-rig', baudRate: 921600, echo: 'keep' });
  expect(hw.power.boards).toEqual({ relays: { port: '/tmp/sota-rig-virtual-x/firmata-rig', connectTimeoutMs: 10_000, baudRate: 57600 } });
  expect(hw.power.lines['target-vdd']).toEqual({ kind: 'firmata', board: 'relays', pin: 4, relay: 'NO', safe: 'on' });
  expect(hw.power.lines['module-reset']).toEqual({ kind: 'firmata', board: 'relays', pin: 3, relay: 'NC', safe: 'on' });
  expect(hw.power.roles).toEqual({ moduleSupply: 'module-vbat', moduleReset: 'module-reset', targetSupply: 'target-vdd', targetReset: 'target-nrst' });
  expect(hw.probe).toEqual({ interface: { kind: 'buspirate', port: '/tmp/sota-rig-virtual-x/probe-buspirate' }, target: 'stm32f4x', openocd: '/opt/openocd/bin/openocd', timeouts: {} });
  expect(hw.plans).toEqual({ kind: 'api', url: 'http://127.0.0.1:40001' });
  expect(hw.timeouts).toEqual({ timeScale: 0.1, bootMs: 4000 });
  expect(resolveTimeouts(hw.timeouts).bootMs).toBe(400);
});

test('the sim’s MCU (docs/virtual-mcu.md §8) becomes the entry’s MCU side; without a layout or taps there is none', () => {
  const v = parseConfig({}).stations.virtual!;
  if (v.kind !== 'virtual') throw new Error('not virtual');
  const mcu = {
    taps: { mcuToModule: '/tmp/x/tap-mcu-tx-rig', moduleToMcu: '/tmp/x/tap-mcu-rx-rig', baud: 115200 },
    console: { port: '/tmp/x/console-rig', baud: 115200 },
    layout: {
      flashBase: 134217728,
      swapUnit: 2048,
      bootloader: { address: 134217728, size: 16384 },
      record: [{ address: 134234112, size: 2048 }, { address: 134236160, size: 2048 }],
      slotA: { address: 134348800, size: 131072 },
      slotB: { address: 134479872, size: 131072 },
      scratch: { address: 134610944, size: 2048 },
    },
    bootRecord: 'vmcu-1',
  };
  const hw = stationFromSim(v, { ...structuredClone(simLine), mcu } as Parameters<typeof stationFromSim>[1]);
  expect(hw.mcu).toEqual({
    taps: { mcuToModule: '/tmp/x/tap-mcu-tx-rig', moduleToMcu: '/tmp/x/tap-mcu-rx-rig', baudRate: 115200 },
    console: { port: '/tmp/x/console-rig', baudRate: 115200 },
    layout: { ...mcu.layout, flashBase: undefined },
    bootRecord: 'vmcu-1',
  });
  const noLayout = stationFromSim(v, { ...structuredClone(simLine), mcu: { layout: null, why: 'flash of 64 KiB is smaller than the layout needs' } } as Parameters<typeof stationFromSim>[1]);
  expect(noLayout.mcu).toBeUndefined();
  expect(stationFromSim(v, structuredClone(simLine) as Parameters<typeof stationFromSim>[1]).mcu).toBeUndefined();
});

test('dut mode gives a virtual station that does not say its virtual MCU; a bench and a station that says are left alone', () => {
  const config = parseConfig({ stations: { off: { kind: 'virtual', mcu: false }, bench: { module: { port: '/dev/x' }, probe: { interface: { kind: 'stlink' }, target: 'stm32f1x' }, layout: { slotAddress: 0x0800_0000, slotSize: 4096 } } } });
  const v = withVirtualMcu(config, 'virtual').stations.virtual!;
  expect(v.kind === 'virtual' && v.mcu).toBe(true);
  expect(config.stations.virtual!.kind === 'virtual' && config.stations.virtual!.mcu).toBeUndefined();
  expect(withVirtualMcu(config, 'off')).toBe(config);
  expect(withVirtualMcu(config, 'bench')).toBe(config);
  expect(withVirtualMcu(config, 'nosuch')).toBe(config);
});

test('a virtual entry takes its time scale from `timeScale`, not from `timeouts`', () => {
  expect(() => parseConfig({ stations: { virtual: { timeScale: 0.1, timeouts: { timeScale: 0.5 } } } })).toThrow(
    /stations\.virtual\.timeouts\.timeScale: expected one of the keys commandMs, bootMs/,
  );
});

// The rig SIGKILLed while it holds a virtual station, its descriptors leaked to a process that outlives it
// (the sim's stdin, stdout and stderr pipes among them, so none of them closes or breaks): only the kernel's
// parent-death signal can then tell the sim that the rig is gone.
const HOLDER = `
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from './rig/config/load.ts';
import { startVirtualStation } from './rig/station/virtual.ts';
const v = parseConfig({ stations: { virtual: { timeScale: 0.05 } } }).stations.virtual;
const station = await startVirtualStation(v);
const sockets = readdirSync('/proc/self/fd').map(Number).filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } });
const keeper = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', ...sockets] });
process.stdout.write(JSON.stringify({ sim: station.pid, keeper: keeper.pid, runDir: path.dirname(station.config.module.port) }) + '\\n');
setInterval(() => {}, 60_000);
`;

/** Re-reads /proc until none of `pids` runs, bounded; returns those still running. */
async function stillRunningAfter(pids: number[], withinMs: number): Promise<number[]> {
  const end = performance.now() + withinMs;
  let left = pids.filter((p) => !isGone(p));
  while (left.length > 0 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    left = left.filter((p) => !isGone(p));
  }
  return left;
}

test('the rig SIGKILLed: its sim and the sim’s socats go, and so does the run directory, even with its pipes to the sim held open by a leaked descriptor', async () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOLDER], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  holder.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  const holderExit = new Promise((r) => holder.once('exit', r));
  let held: { sim: number; keeper: number; runDir: string } | undefined;
  let simTree: number[] = [];
  try {
    const first = await firstLine(holder, 30_000, 'its station was up', () => stderr);
    held = JSON.parse(first) as { sim: number; keeper: number; runDir: string };
    simTree = [held.sim, ...descendants(held.sim)];
    // The module's pty, the relay board's and the probe's (sim --mcu off by default).
    expect(simTree.map((p) => commandLine(p).split(' ')[0]).filter((c) => c === 'socat')).toHaveLength(3);
    expect(existsSync(held.runDir)).toBe(true);
    holder.kill('SIGKILL');
    await holderExit;
    expect(await stillRunningAfter(simTree, 10_000)).toEqual([]);
    expect(existsSync(held.runDir)).toBe(false);
  } finally {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    if (held) {
      process.kill(held.keeper, 'SIGKILL');
      rmSync(held.runDir, { recursive: true, force: true });
    }
    for (const p of simTree) if (!isGone(p)) process.kill(p, 'SIGKILL');
  }
});
