import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { processAlive, scratchPrefix, sweepScratch } from './scratch.ts';
import { tempDirs } from './testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

/** The pid of a process that has exited (and been reaped): nobody owns it for now. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

describe('scratch directories', () => {
  test('are named after the process that makes them', () => {
    expect(path.basename(scratchPrefix('openocd', '/x'))).toBe(`sota-rig-${process.pid}-openocd-`);
  });

  test("the sweep removes a dead process's directories with what they hold, and leaves live processes' and other names alone", () => {
    const parent = tmp.make('scratch-sweep-');
    const dead = deadPid();
    expect(processAlive(dead)).toBe(false);
    const mine = path.join(parent, `sota-rig-${process.pid}-openocd-a`);
    const init = path.join(parent, 'sota-rig-1-virtual-b');
    const gone = path.join(parent, `sota-rig-${dead}-openocd-c`);
    const other = path.join(parent, `sota-rig-locks`);
    for (const d of [mine, init, gone, other]) mkdirSync(d);
    writeFileSync(path.join(gone, '1-readback.bin'), Buffer.alloc(1024));
    expect(sweepScratch(parent)).toEqual([gone]);
    expect(existsSync(gone)).toBe(false);
    expect(readdirSync(parent).sort()).toEqual([path.basename(init), path.basename(mine), 'sota-rig-locks'].sort());
  });

  test('a lock directory of a dead process is swept by its own pattern; a missing parent sweeps nothing', () => {
    const locks = tmp.make('scratch-locks-');
    const dead = deadPid();
    mkdirSync(path.join(locks, `process-${dead}`));
    writeFileSync(path.join(locks, `process-${dead}`, 'virtual.lock'), '');
    mkdirSync(path.join(locks, `process-${process.pid}`));
    expect(sweepScratch(locks, /^process-(\d+)$/)).toEqual([path.join(locks, `process-${dead}`)]);
    expect(readdirSync(locks)).toEqual([`process-${process.pid}`]);
    expect(sweepScratch(path.join(locks, 'nowhere'))).toEqual([]);
  });
});
