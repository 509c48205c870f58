// What the onoff (sysfs) driver needs from the kernel, read from a tree laid out as the kernel lays out
// /sys/class/gpio, /sys/module and its config (no root, no namespace: paths are given).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { gpioKernelChecks, kernelGpioSysfs } from './gpio-kernel.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-gpio-kernel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tree(name: string, o: { export?: boolean; chips?: { name: string; label: string; base: number; ngpio: number }[]; config?: string; gz?: boolean; persist?: string }) {
  const root = path.join(tmp, name);
  const sysfs = path.join(root, 'sys/class/gpio');
  mkdirSync(sysfs, { recursive: true });
  if (o.export) writeFileSync(path.join(sysfs, 'export'), '');
  for (const c of o.chips ?? []) {
    mkdirSync(path.join(sysfs, c.name));
    writeFileSync(path.join(sysfs, c.name, 'label'), `${c.label}\n`);
    writeFileSync(path.join(sysfs, c.name, 'base'), `${c.base}\n`);
    writeFileSync(path.join(sysfs, c.name, 'ngpio'), `${c.ngpio}\n`);
  }
  const configFile = path.join(root, o.gz ? 'config.gz' : 'config');
  if (o.config !== undefined) writeFileSync(configFile, o.gz ? gzipSync(o.config) : o.config);
  const sysModule = path.join(root, 'sys/module');
  if (o.persist !== undefined) {
    mkdirSync(path.join(sysModule, 'pinctrl_rp1/parameters'), { recursive: true });
    writeFileSync(path.join(sysModule, 'pinctrl_rp1/parameters/persist_gpio_outputs'), `${o.persist}\n`);
  }
  return { sysfs, kernelConfig: [configFile], sysModule, cmdline: path.join(root, 'cmdline') };
}

describe('what the sysfs GPIO driver needs from the kernel', () => {
  test('a Raspberry Pi 5 on a 6.6+ kernel: sysfs present, dynamic chip bases named, strict_gpiod said', () => {
    const paths = tree('pi5', { export: true, chips: [{ name: 'gpiochip571', label: 'pinctrl-rp1', base: 571, ngpio: 54 }], config: 'CONFIG_GPIOLIB=y\nCONFIG_GPIO_SYSFS=y\n', gz: true, persist: 'N' });
    const checks = gpioKernelChecks(paths);
    expect(checks.map((c) => [c.check, c.status])).toEqual([
      ['GPIO sysfs (CONFIG_GPIO_SYSFS)', 'ok'],
      ['GPIO sysfs writable', 'ok'],
      ['GPIO chips', 'ok'],
      ['GPIO released outputs', 'ok'],
    ]);
    expect(checks[0]!.detail).toContain('CONFIG_GPIO_SYSFS=y in');
    expect(checks[2]!.detail).toBe('pinctrl-rp1 (gpiochip571, base 571, 54 lines); dynamic bases: name lines by chip label and offset, as the config does');
    expect(checks[3]!.detail).toMatch(/^strict_gpiod: a released output returns to an input .*persist_gpio_outputs = N/);
  });

  test('a kernel built without CONFIG_GPIO_SYSFS: one failure saying so and what to do instead', () => {
    const paths = tree('nosysfs', { config: 'CONFIG_GPIOLIB=y\n# CONFIG_GPIO_SYSFS is not set\nCONFIG_GPIO_CDEV=y\n' });
    const checks = gpioKernelChecks(paths);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/built without CONFIG_GPIO_SYSFS .*: no .*\/export$/) });
    expect(checks[0]!.fix).toContain('kind: firmata');
  });

  test('sysfs without chips warns; no kernel config readable is not held against it', () => {
    const checks = gpioKernelChecks(tree('nochips', { export: true }));
    expect(checks.find((c) => c.check === 'GPIO chips')).toMatchObject({ status: 'warn' });
    expect(checks[0]!.detail).not.toContain('CONFIG_GPIO_SYSFS=');
    expect(kernelGpioSysfs([path.join(tmp, 'missing')])).toEqual({ value: undefined, from: undefined });
  });
});
