import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadManifest } from '../rig/images/manifest.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'fixtures');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const script = path.join(root, 'scripts', 'make-fixtures.ts');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'sota-make-fixtures-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(tsx, [script, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

describe('scripts/make-fixtures.ts', () => {
  test('regenerates the committed fixtures byte for byte', async () => {
    const out = path.join(scratch, 'again');
    const r = await run('--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = await listFiles(out);
    expect(files).toEqual([
      'images/STM32_1_0_0.bin', 'images/STM32_1_1_0.bin', 'images/STM32_2_0_0.bin', 'manifest.json',
      'mcu/BOOT_vbl-1.0-unsafe.bin', 'mcu/BOOT_vbl-1.0.bin',
      'mcu/STM32_1_0_0-ignores-10706.bin', 'mcu/STM32_1_0_0-no-restart.bin', 'mcu/STM32_1_0_0-skip-md5.bin',
      'mcu/STM32_1_0_0-wrong-offset.bin', 'mcu/STM32_1_0_0.bin', 'mcu/STM32_1_0_0_to_2_0_0.vcdiff', 'mcu/STM32_1_1_0.bin',
      'mcu/STM32_2_0_0-crash-at-boot.bin', 'mcu/STM32_2_0_0-never-confirms.bin', 'mcu/STM32_2_0_0-wrong-version.bin',
      'mcu/STM32_2_0_0.bin', 'mcu/manifest.json',
      'packages/STM32_1_0_0_to_2_0_0.vcdiff', 'packages/STM32_2_0_0_corrupt.bin',
    ]);
    for (const f of files) {
      const fresh = await readFile(path.join(out, f));
      const committed = await readFile(path.join(fixtures, f));
      expect(Buffer.compare(fresh, committed), `${f} differs from the committed fixture`).toBe(0);
    }
  });

  test('honours --size, --load-address and --seed, and its output loads and checks', async () => {
    const out = path.join(scratch, 'small');
    const r = await run('--out', out, '--size', '8192', '--load-address', '0x08004000', '--seed', 'other');
    expect(r.code).toBe(0);
    const set = await loadManifest(path.join(out, 'manifest.json'));
    expect(set.loadAddress).toBe(0x08004000);
    expect(set.image('1_0_0').size).toBe(8192);
    expect(set.image('2_0_0').size).toBe(8192 + 768);
    expect(set.image('2_0_0').header().loadAddress).toBe(0x08004000);
    expect(set.image('1_0_0').sha256).not.toBe((await loadManifest()).image('1_0_0').sha256);
    const delta = set.package('delta_1_0_0_to_2_0_0');
    expect(delta.apply(set.image('1_0_0')).equals(set.image('2_0_0'))).toBe(true);
    expect(set.package('corrupt_full_2_0_0').verify().ok).toBe(false);
  });

  test('refuses a size the flash cannot take, in one line, exit status 1', async () => {
    const r = await run('--out', path.join(scratch, 'bad'), '--size', '4100');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('make-fixtures: --size must be a multiple of 8 of at least 4096 bytes (flash programs in double words); got 4100');
  });
});
