// `rig image` as a user runs it (node bin/rig.js from dist/, built by npm test's pretest).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { mcubootImage } from '../images/testing/mcuboot.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-image-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rig(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/rig.js', ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '', RIG_MANIFEST: '', RIG_NO_STALE_CHECK: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`rig ${args.join(' ')} did not finish: ${stdout} ${stderr}`))), 60_000);
    child.once('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
  });
}

const body = (seed: number): Buffer => {
  const b = Buffer.alloc(8000);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed * (i >> 9)) & 0xff;
  return b;
};

describe('rig image', () => {
  test('add: an objcopy .bin named by --version, then one named by its MCUboot header; list; identify', async () => {
    const manifest = path.join(tmp, 'releases', 'manifest.json');
    const plain = path.join(tmp, 'app-1.bin');
    writeFileSync(plain, body(1));
    const first = await rig(['image', 'add', plain, '--component', 'STM32', '--version', '1_0_0', '--manifest', manifest]);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^added STM32 1_0_0 \(given\): 8000 bytes, sha256 [0-9a-f]{64}\n {2}created .*manifest.json; the component's versions are named by none\n/);
    expect(first.status).toBe(0);

    const second = path.join(tmp, 'app-2.bin');
    writeFileSync(second, body(2));
    const r = await rig(['image', 'add', second, '--version', '1_1_0', '--json'], { RIG_MANIFEST: manifest });
    expect(JSON.parse(r.stdout)).toMatchObject({ created: false, version: '1_1_0', versionFrom: 'given', packages: ['full_1_1_0', 'delta_1_0_0_to_1_1_0'] });

    const list = await rig(['image', 'list', '--manifest', manifest, '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({ component: 'STM32', locator: 'none', images: [{ version: '1_0_0' }, { version: '1_1_0' }] });
    const id = await rig(['image', 'identify', second, '--manifest', manifest]);
    expect(id.stdout).toMatch(/app-2\.bin: release STM32 1_1_0 \(8000 bytes, sha256 [0-9a-f]{12}…\) of .*manifest\.json\n/);

    // A second component's releases, named by MCUboot headers; the manifest keeps the locator.
    const mcu = path.join(tmp, 'mcu', 'manifest.json');
    const signed = path.join(tmp, 'signed-1.3.0.bin');
    writeFileSync(signed, mcubootImage({ body: body(3), version: { major: 1, minor: 3, revision: 0, build: 9 } }));
    const m = await rig(['image', 'add', signed, '--component', 'MCU-B', '--manifest', mcu, '--locator', 'mcuboot:format={major}_{minor}_{revision}']);
    expect(m.stdout).toContain('added MCU-B 1_3_0 (found by MCUboot header at 0x0)');
    expect(JSON.parse(readFileSync(mcu, 'utf8')).locator).toEqual({ kind: 'mcuboot', offset: '0x0', format: '{major}_{minor}_{revision}' });
    const again = await rig(['image', 'add', signed, '--manifest', mcu, '--version', '1_3_0']);
    expect(again.stdout).toContain('is already in');
    expect(again.status).toBe(0);
  });

  test('refusals: no manifest named (the fixtures are generated), no version anywhere, a version the header contradicts, a bad locator', async () => {
    const file = path.join(tmp, 'x.bin');
    writeFileSync(file, body(4));
    const noManifest = await rig(['image', 'add', file, '--component', 'STM32', '--version', '1']);
    expect(noManifest.status).toBe(64);
    expect(noManifest.stderr).toContain('rig image add: which manifest?');

    const manifest = path.join(tmp, 'refuse', 'manifest.json');
    const noVersion = await rig(['image', 'add', file, '--component', 'STM32', '--manifest', manifest]);
    expect(noVersion.status).toBe(64);
    expect(noVersion.stderr).toContain('which version is x.bin?');

    const signed = path.join(tmp, 'signed.bin');
    writeFileSync(signed, mcubootImage({ body: body(5), version: { major: 2, minor: 0, revision: 0, build: 0 } }));
    const contradicted = await rig(['image', 'add', signed, '--component', 'STM32', '--version', '2.1.0', '--manifest', manifest]);
    expect(contradicted.status).toBe(1);
    expect(contradicted.stderr).toMatch(/firmware error: signed\.bin names another version than the one given\n {2}\(expected version 2\.1\.0; seen 2\.0\.0 \(MCUboot header at 0x0/);

    const badLocator = await rig(['image', 'add', signed, '--locator', 'mcuboo', '--manifest', manifest]);
    expect(badLocator.status).toBe(64);
    expect(badLocator.stderr).toContain('unknown kind "mcuboo"');
  });
});
