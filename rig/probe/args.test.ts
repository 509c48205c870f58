import { describe, expect, test } from 'vitest';

import { ConfigError } from '../errors.ts';
import { buildProbeArgs } from './args.ts';

describe('buildProbeArgs', () => {
  test('ST-Link bench: interface, serial, then the target cfg', () => {
    const s = buildProbeArgs({ interface: { kind: 'stlink', serial: '066DFF555051897267233656' }, target: 'stm32f4x' });
    expect(s.args).toEqual(['-f', 'interface/stlink.cfg', '-c', 'adapter serial 066DFF555051897267233656', '-f', 'target/stm32f4x.cfg']);
    expect(s).toMatchObject({ targetName: 'stm32f4x.cpu', flashBank: 0, flashBase: 0x08000000, flashSizeRegister: 0x1fff7a22 });
  });

  test('CMSIS-DAP selects a transport; speed and extra commands follow the cfg', () => {
    const s = buildProbeArgs({ interface: { kind: 'cmsis-dap', serial: 'ABC123' }, target: 'stm32f1x', speedKHz: 4000, extra: ['reset_config srst_only'] });
    expect(s.args).toEqual([
      '-f', 'interface/cmsis-dap.cfg', '-c', 'adapter serial ABC123', '-c', 'transport select swd',
      '-f', 'target/stm32f1x.cfg', '-c', 'adapter speed 4000', '-c', 'reset_config srst_only',
    ]);
    expect(s.targetName).toBe('stm32f1x.cpu');
    expect(s.flashSizeRegister).toBe(0x1ffff7e0);
  });

  test('remote_bitbang: socket, work area before the cfg, no clock, F4 speed events silenced one per call', () => {
    const s = buildProbeArgs({ interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 40123 }, target: 'stm32f4x', workAreaSize: 0, speedKHz: 1000 });
    expect(s.args).toEqual([
      '-c', 'adapter driver remote_bitbang', '-c', 'remote_bitbang host 127.0.0.1', '-c', 'remote_bitbang port 40123',
      '-c', 'set WORKAREASIZE 0', '-f', 'target/stm32f4x.cfg',
      '-c', 'stm32f4x.cpu configure -event reset-start {}', '-c', 'stm32f4x.cpu configure -event reset-init {}',
    ]);
    const f1 = buildProbeArgs({ interface: { kind: 'remote_bitbang', host: 'localhost', port: 1 }, target: 'stm32f1x' });
    expect(f1.args.filter((a) => a.includes('-event'))).toEqual([]);
  });

  test('buspirate: its serial port, JTAG unless told, no clock, F4 speed events silenced', () => {
    const s = buildProbeArgs({ interface: { kind: 'buspirate', port: '/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KA0EN-if00-port0' }, target: 'stm32f4x', speedKHz: 1000 });
    expect(s.args).toEqual([
      '-c', 'adapter driver buspirate', '-c', 'buspirate port /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KA0EN-if00-port0', '-c', 'transport select jtag',
      '-f', 'target/stm32f4x.cfg',
      '-c', 'stm32f4x.cpu configure -event reset-start {}', '-c', 'stm32f4x.cpu configure -event reset-init {}',
    ]);
    expect(buildProbeArgs({ interface: { kind: 'buspirate', port: '/dev/ttyUSB0', transport: 'swd' }, target: 'stm32f1x' }).args).toContain('transport select swd');
  });

  test('bad entries are ConfigErrors that say what was wrong', () => {
    const bad = [
      { interface: { kind: 'remote_bitbang', host: '127.0.0.1', port: 0 }, target: 'stm32f4x' },
      { interface: { kind: 'remote_bitbang', host: 'a b', port: 1 }, target: 'stm32f4x' },
      { interface: { kind: 'stlink', serial: 'has space' }, target: 'stm32f4x' },
      { interface: { kind: 'buspirate', port: 'ttyUSB0' }, target: 'stm32f4x' },
      { interface: { kind: 'buspirate', port: '/dev/tty USB0' }, target: 'stm32f4x' },
      { interface: { kind: 'jlink' }, target: 'stm32f4x' },
      { interface: { kind: 'stlink' }, target: 'stm32h7x' },
      { interface: { kind: 'stlink' }, target: 'stm32f4x', workAreaSize: -1 },
    ];
    for (const cfg of bad) expect(() => buildProbeArgs(cfg as never), JSON.stringify(cfg)).toThrow(ConfigError);
  });
});
