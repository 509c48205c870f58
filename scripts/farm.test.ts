// The farm scripts as a user runs them (npm run nightly / qualify → tsx scripts/….mjs), spawned as processes.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-farm-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function script(name: string, args: string[], timeoutMs = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `scripts/${name}.mjs`, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', RIG_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${name} ${args.join(' ')} did not finish: ${stdout} ${stderr}`))), timeoutMs);
    child.once('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
  });
}

describe('nightly', () => {
  test('an unknown station is a usage error (64) naming the stations there are, before any result is touched', async () => {
    const r = await script('nightly', ['--stations', 'virtual,bench-nosuch']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('no station bench-nosuch');
    expect(r.stderr).toContain('have: virtual');
  });

  test('a timeout that is not a duration is a usage error', async () => {
    const r = await script('nightly', ['--timeout', 'soon']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('--timeout: expected a duration like 90m, seen soon');
  });
});

describe('qualify', () => {
  test('a previous version the manifest does not have is a usage error naming those it has', async () => {
    const r = await script('qualify', ['--previous', '9_9_9']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('no image 9_9_9');
    expect(r.stderr).toContain('1_0_0, 1_1_0, 2_0_0');
  });

  test('an --image that is not a whole image is refused before any station is opened', async () => {
    const file = path.join(tmp, 'not-an-image.bin');
    writeFileSync(file, Buffer.alloc(4096, 0xff));
    const r = await script('qualify', ['--image', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('is not a whole image');
  });

  test('a broken copy of the new image is refused and the old version stays: one case, passed, with its record', { timeout: 120_000 }, async () => {
    const r = await script('qualify', ['--previous', '1_1_0', '--cases', 'corrupt', '--json'], 110_000);
    const out = JSON.parse(r.stdout) as { ok: boolean; image: string; results: { case: string; outcome: string; pass: boolean; record: string }[]; records: string };
    try {
      expect(out.image).toBe('2_0_0');
      expect(out.results).toHaveLength(1);
      expect(out.results[0]).toMatchObject({ case: 'broken image 1_1_0 → 2_0_0 refused', outcome: 'failed-intact', pass: true });
      const record = JSON.parse(readFileSync(path.join(root, out.results[0]!.record), 'utf8')) as { verdict: { outcome: string; reason: string }; readback: { matchesCurrent: boolean } };
      expect(record.verdict).toMatchObject({ outcome: 'failed-intact', reason: 'download-rejected' });
      expect(record.readback.matchesCurrent).toBe(true);
      expect(existsSync(path.join(out.records, 'summary.json'))).toBe(true);
      expect(out.ok).toBe(true);
      expect(r.status).toBe(0);
    } finally {
      rmSync(out.records, { recursive: true, force: true });
    }
  });
});
