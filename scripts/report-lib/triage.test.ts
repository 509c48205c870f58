// The reason codes failures are grouped by, and each station's table in the report.
import { describe, expect, test } from 'vitest';
import { AtTimeoutError } from '../../rig/at/errors.ts';
import { InfrastructureError } from '../../rig/errors.ts';
import { stationRows, simPairs, type StationRecord } from './stations.ts';
import { reasonCode, stableText } from './triage.ts';

describe('reason codes', () => {
  test('one cause gives one code whatever its ports, offsets, times and digests', () => {
    const a = new InfrastructureError('serial port /dev/pts/3 vanished after 1024 bytes at 2026-11-27T05:12:01.123Z', { station: 'virtual' });
    const b = new InfrastructureError('serial port /dev/serial/by-id/usb-Quectel-if02-port0 vanished after 27648 bytes at 2026-11-28T01:00:00Z', { station: 'bench-2' });
    expect(reasonCode({ ...a.toJSON(), station: 'virtual' })).toBe('InfrastructureError: serial port <path> vanished after <n> bytes at <time>');
    expect(reasonCode({ ...b.toJSON(), station: 'bench-2' })).toBe(reasonCode({ ...a.toJSON(), station: 'virtual' }));
    const t = new AtTimeoutError({ station: 'bench-2', port: '/dev/ttyUSB2', command: 'AT+QIOTOTARD=27648,1024', expected: '+QIOTOTARD: …', waitedMs: 2000, lastLines: [] });
    expect(reasonCode(t.toJSON() as { name: string; message: string; station: string })).toMatch(/^AtTimeoutError: .*AT\+QIOTOTARD=<n>,<n>.*<n> ms/);
  });

  test('what says which moment or which image is kept: event codes, versions, part names', () => {
    expect(stableText('module ended with 10706 instead of 10705; flash holds STM32 1_1_0, not 2_0_0 (stm32f4x)')).toBe('module ended with 10706 instead of 10705; flash holds STM32 1_1_0, not 2_0_0 (stm32f4x)');
    expect(stableText('slot 0x08004000 differs, sha256 43ce9bb0fc7f6e3736eff0feacf54a1150f555ecdb2f84d6ece2aa526590957d, 127.0.0.1:40123')).toBe('slot <hex> differs, sha256 <hex>, <host:port>');
    expect(stableText('Test timed out in 180000ms.')).toBe('Test timed out in <n>ms.');
  });

  test('the first line only, without the station prefix, and never empty', () => {
    expect(reasonCode({ name: 'AssertionError', message: 'virtual: fault offset=8192:power-cycle-module=500 never fired\n- expected\n+ received', station: 'virtual' }))
      .toBe('AssertionError: fault offset=<n>:power-cycle-module=<n> never fired');
    expect(reasonCode({})).toBe('Error: (no message)');
    expect(reasonCode({ name: 'Error', message: 'x'.repeat(500) }).length).toBeLessThanOrEqual(160);
  });
});

describe("a station's table", () => {
  const identity: StationRecord['identity'] = {
    station: 'virtual',
    kind: 'virtual',
    description: 'built-in virtual station',
    module: { model: 'Quectel EC200U', firmware: 'EC200UCNAAR03A03M08', imei: '862377349655562', quecthing: '2.9.0', baudRate: 115200 },
    probe: { adapter: 'remote_bitbang', serial: undefined, serialSource: undefined, announced: undefined, openocd: 'Open On-Chip Debugger 0.12.0' },
    target: { family: 'stm32f1x', idcode: '0x3ba00477', core: 'Cortex-M3 r1p1', deviceId: '0x10036414', flashKiB: 512 },
  };
  const sim = (...extra: string[]) => ['--baud', '115200', '--time-scale', '0.1', '--target', 'stm32f1x', '--flash-image', '/w/fixtures/images/STM32_1_0_0.bin', ...extra];

  test('sim options common to every suite file are one row, and each file’s own options a row of its own', () => {
    const rows = stationRows([
      { station: 'virtual', kind: 'virtual', host: 'pi-1', scope: 'virtual.full-package', identity, sim: sim(), rig: '0.1.0', node: 'v20.20.2' },
      { station: 'virtual', kind: 'virtual', host: 'pi-1', scope: 'virtual.multi-piece', identity, sim: sim('--module-free-space', '10240'), rig: '0.1.0', node: 'v20.20.2' },
      // The host's inventory: how rig would start this sim by itself, not how the night's tests ran it.
      { station: 'virtual', kind: 'virtual', host: 'pi-1', sim: ['--time-scale', '1'], health: { station: 'virtual', host: 'pi-1', at: '2026-12-07T01:00:00.000Z', ok: true, summary: 'passed', steps: [] } },
    ]);
    expect(rows).toEqual({
      station: 'virtual',
      host: 'pi-1',
      module: 'Quectel EC200U',
      firmware: 'EC200UCNAAR03A03M08',
      IMEI: '862377349655562',
      QuecThing: '2.9.0',
      probe: 'remote_bitbang',
      target: 'stm32f1x, IDCODE 0x3ba00477',
      OpenOCD: '0.12.0',
      baud: '115200',
      'last health': 'passed 2026-12-07 01:00',
      'sota-rig': '0.1.0 (node v20.20.2)',
      sim: 'baud=115200 time-scale=0.1 target=stm32f1x flash-image=STM32_1_0_0.bin',
      'sim: multi-piece': 'module-free-space=10240',
    });
  });

  test('a station whose identity could not be read says why', () => {
    expect(stationRows([{ station: 'bench-1', kind: 'hardware', host: 'pi-2', error: { kind: 'infrastructure', message: 'bench-1: station is in use by pid 42\n  (details)' } }]))
      .toEqual({ station: 'bench-1', host: 'pi-2', 'not read': 'bench-1: station is in use by pid 42' });
    expect(simPairs(['--seed', '7', '--verbose', '--crc', 'crc32-mpeg2'])).toEqual(['seed=7', 'verbose', 'crc=crc32-mpeg2']);
  });
});
