import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { declaredPlanSchema } from '../config/schema.ts';
import { loadManifest } from '../images/manifest.ts';
import { checkDeclaredPlan } from './commands/doctor.ts';

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
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-doctor-'));
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
