// Reading whether released GPIO outputs fall back to inputs, from sysfs module parameters and the kernel
// command line laid out as a Raspberry Pi kernel lays them out.
import { afterAll, describe, expect, test } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gpioReleaseBehaviour } from './gpio-release.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'rig-gpio-release-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A fake /sys/module and /proc/cmdline: params as "driver.param" → file content. */
function kernel(params: Record<string, string>, cmdline = 'console=tty1 root=PARTUUID=0a-02 rootwait'): { sysModule: string; cmdline: string } {
  const dir = path.join(root, String(n++));
  const sysModule = path.join(dir, 'sys-module');
  mkdirSync(sysModule, { recursive: true });
  for (const [key, value] of Object.entries(params)) {
    const [driver, param] = key.split('.') as [string, string];
    mkdirSync(path.join(sysModule, driver, 'parameters'), { recursive: true });
    writeFileSync(path.join(sysModule, driver, 'parameters', param), `${value}\n`);
  }
  writeFileSync(path.join(dir, 'cmdline'), `${cmdline}\n`);
  return { sysModule, cmdline: path.join(dir, 'cmdline') };
}

describe('gpioReleaseBehaviour', () => {
  test('a Pi kernel as shipped keeps released outputs driven', () => {
    const k = kernel({ 'pinctrl_rp1.persist_gpio_outputs': 'Y' });
    expect(gpioReleaseBehaviour(k)).toEqual({ strictGpiod: false, evidence: [`${k.sysModule}/pinctrl_rp1/parameters/persist_gpio_outputs = Y`] });
  });

  test('dtparam=strict_gpiod, or an upstream kernel (default N), returns them to inputs', () => {
    const k = kernel({ 'pinctrl_bcm2835.persist_gpio_outputs': 'N' }, 'console=tty1 pinctrl_bcm2835.persist_gpio_outputs=n');
    expect(gpioReleaseBehaviour(k).strictGpiod).toBe(true);
  });

  test('the parameter as the driver has it wins over the command line', () => {
    const k = kernel({ 'pinctrl_bcm2835.persist_gpio_outputs': 'Y' }, 'pinctrl_bcm2835.persist_gpio_outputs=n');
    expect(gpioReleaseBehaviour(k).strictGpiod).toBe(false);
  });

  test('one strict driver is enough to call the kernel strict', () => {
    const k = kernel({ 'pinctrl_bcm2835.persist_gpio_outputs': 'Y', 'pinctrl_rp1.persist_gpio_outputs': 'N' });
    expect(gpioReleaseBehaviour(k).strictGpiod).toBe(true);
  });

  test('the older strict_gpiod parameter (Y = strict) is understood', () => {
    expect(gpioReleaseBehaviour(kernel({ 'pinctrl_rp1.strict_gpiod': 'Y' })).strictGpiod).toBe(true);
    expect(gpioReleaseBehaviour(kernel({ 'pinctrl_rp1.strict_gpiod': 'N' })).strictGpiod).toBe(false);
  });

  test('without a parameter in sysfs, the command line decides; the last repetition counts; - and _ alike', () => {
    expect(gpioReleaseBehaviour(kernel({}, 'quiet pinctrl-bcm2835.persist-gpio-outputs=0')).strictGpiod).toBe(true);
    expect(gpioReleaseBehaviour(kernel({}, 'pinctrl_rp1.strict_gpiod')).strictGpiod).toBe(true); // a bare bool is true
    const k = kernel({}, 'pinctrl_bcm2835.persist_gpio_outputs=n quiet pinctrl_bcm2835.persist_gpio_outputs=y');
    expect(gpioReleaseBehaviour(k)).toEqual({ strictGpiod: false, evidence: [`${k.cmdline}: pinctrl_bcm2835.persist_gpio_outputs=y`] });
  });

  test('a kernel that says nothing (another pinctrl driver, no Pi) is unknown, not a guess', () => {
    expect(gpioReleaseBehaviour(kernel({ 'gpiolib.something': '1' }))).toEqual({ strictGpiod: undefined, evidence: [] });
    expect(gpioReleaseBehaviour({ sysModule: path.join(root, 'none'), cmdline: path.join(root, 'none', 'cmdline') }).strictGpiod).toBeUndefined();
  });
});
