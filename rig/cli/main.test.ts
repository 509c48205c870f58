import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

// The CLI is spawned as a process, from the compiled dist/ that `npm run setup` builds.
describe('rig command', () => {
  test('--help lists usage and exit codes', () => {
    const r = spawnSync(process.execPath, ['bin/rig.js', '--help'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: rig <command>');
    expect(r.stdout).toContain('Exit codes');
  });

  test('an unknown command is a usage error (64)', () => {
    const r = spawnSync(process.execPath, ['bin/rig.js', 'no-such-command'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("unknown command 'no-such-command'");
  });

  test('--version prints the package version', () => {
    const r = spawnSync(process.execPath, ['bin/rig.js', '--version'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
