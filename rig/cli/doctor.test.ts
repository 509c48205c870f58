import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { declaredPlanSchema } from '../config/schema.ts';
import { loadManifest } from '../images/manifest.ts';
import { gpioReleaseBehaviour } from '../power/gpio-release.ts';
import { checkDeclaredPlan, gpioReleaseChecks } from './commands/doctor.ts';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

const firmware = await loadManifest();
const plan = (p: unknown) => declaredPlanSchema.parse(p);

describe('rig doctor: declared plans', () => {
  test('a manifest package by name or by sha256, with the versions it delivers, passes', () => {
    const delta = firmware.package('delta_1_0_0_to_2_0_0');
    expect(checkDeclaredPlan(plan({ name: 'd', package: delta.name, sourceVersion: '1_0_0', targetVersion: '2_0_0' }), firmware, undefined).ok).toBe(true);
    expect(checkDeclaredPlan(plan({ name: 'd', package: { file: 'x.bin', sha256: delta.sha256 }, sourceVersion: '1_0_0', targetVersion: '2_0_0' }), firmware, undefined).ok).toBe(true);
  });

  test('versions that are not what the package delivers fail, saying both', () => {
    const r = checkDeclaredPlan(plan({ name: 'd', package: 'delta_1_0_0_to_2_0_0', targetVersion: '2_0_0' }), firmware, undefined);
    expect(r).toMatchObject({ ok: false, detail: 'plan "d": package delta_1_0_0_to_2_0_0 is 1_0_0 → 2_0_0, the plan says full → 2_0_0' });
  });

  test('a file next to the config (qualify --write-packages) passes when its sha256 is the declared one, and fails when not', () => {
    const dir = tmp.make('rig-doctor-');
    const bytes = Buffer.from('a package built by qualify');
    writeFileSync(path.join(dir, 'new.bin'), bytes);
    const sha = '4d2a4a4b1f1c0d2f3e1b7bb1d6b2e9c2a0f0b2c8e0f6b7f8f0d2f0a1b2c3d4e5';
    const wrong = checkDeclaredPlan(plan({ name: 'n', package: { file: 'new.bin', sha256: sha }, targetVersion: '3_0_0' }), firmware, dir);
    expect(wrong).toMatchObject({ ok: false });
    expect(wrong.detail).toContain(`the plan says ${sha}`);
    const real = (wrong.detail.match(/has sha256 ([0-9a-f]{64})/) ?? [])[1]!;
    expect(checkDeclaredPlan(plan({ name: 'n', package: { file: 'new.bin', sha256: real }, targetVersion: '3_0_0' }), firmware, dir).ok).toBe(true);
  });

  test('a package name the manifest does not have fails, naming those it has', () => {
    const r = checkDeclaredPlan(plan({ name: 'x', package: 'full_9_9_9', targetVersion: '9_9_9' }), firmware, undefined);
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining('no package full_9_9_9') });
    expect(!r.ok && r.fix).toContain('full_2_0_0');
  });
});

describe('rig doctor: gpio lines released on close', () => {
  const config = parseConfig({
    stations: {
      'bench-g': {
        module: { port: '/dev/serial/by-id/usb-Quectel_x-if02-port0' },
        probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
        layout: { slotAddress: 0x0800_0000, slotSize: 1024 },
        power: {
          lines: {
            vbat: { kind: 'gpio', chip: 'pinctrl-rp1', line: 17, safe: 'on', unexportOnClose: true },
            nrst: { kind: 'gpio', chip: 'pinctrl-rp1', line: 27, safe: 'off' },
          },
        },
      },
    },
  });
  const entry = config.stations['bench-g'];
  if (entry?.kind !== 'hardware') throw new Error('bench-g is a hardware station');
  /** A /sys/module tree whose pinctrl_rp1 has persist_gpio_outputs = `value`, and an empty kernel command line. */
  const kernel = (value: string) => {
    const dir = tmp.make('rig-doctor-kernel-');
    mkdirSync(path.join(dir, 'module', 'pinctrl_rp1', 'parameters'), { recursive: true });
    writeFileSync(path.join(dir, 'module', 'pinctrl_rp1', 'parameters', 'persist_gpio_outputs'), `${value}\n`);
    writeFileSync(path.join(dir, 'cmdline'), 'console=tty1\n');
    return gpioReleaseBehaviour({ sysModule: path.join(dir, 'module'), cmdline: path.join(dir, 'cmdline') });
  };

  test('on a strict-gpiod kernel the line with unexportOnClose gets a warn row quoting the evidence; the other line none', () => {
    const strict = kernel('N');
    const rows = gpioReleaseChecks('bench-g', entry.power.lines, strict);
    expect(rows).toEqual([
      expect.objectContaining({ station: 'bench-g', check: 'line vbat after close', status: 'warn', fix: expect.stringContaining('stations.bench-g.power.lines.vbat') }),
    ]);
    expect(rows[0]!.detail).toContain(strict.evidence[0]);
    expect(rows[0]!.detail).toMatch(/persist_gpio_outputs = N/);
  });

  test('a kernel that keeps released outputs driven gives no row', () => {
    expect(gpioReleaseChecks('bench-g', entry.power.lines, kernel('Y'))).toEqual([]);
  });
});
