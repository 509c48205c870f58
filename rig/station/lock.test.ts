import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { lockStation, type StationLock } from './lock.ts';
import { InfrastructureError } from '../errors.ts';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

const held: StationLock[] = [];
afterEach(async () => {
  for (const l of held.splice(0)) await l.release();
});

describe('station lock', () => {
  test('a second taker is refused with the holder named, and can take it after release', async () => {
    const dir = tmp.make('lock-');
    const first = await lockStation('bench-2', { dir });
    held.push(first);
    const err = await lockStation('bench-2', { dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain('bench-2: station is in use by pid ' + process.pid);
    await first.release();
    held.pop();
    const again = await lockStation('bench-2', { dir });
    held.push(again);
    expect(again.station).toBe('bench-2');
  });

  test('different stations do not block each other', async () => {
    const dir = tmp.make('lock-');
    held.push(await lockStation('a', { dir }), await lockStation('b', { dir }));
    expect(held.map((l) => l.station)).toEqual(['a', 'b']);
  });

  test('the lock is released when the holding process is killed with SIGKILL', async () => {
    const dir = tmp.make('lock-');
    const script = `import { lockStation } from ${JSON.stringify(path.resolve('rig/station/lock.ts'))};
      await lockStation('bench-9', { dir: ${JSON.stringify(dir)} }); console.log('held'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`holder exited early with ${c}`)));
    });
    await expect(lockStation('bench-9', { dir })).rejects.toThrow(/in use by pid/);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    // The kernel drops the flock once the holder's pipe closes; the next taker may race the `cat` exit.
    let lock: StationLock | undefined;
    for (let attempt = 0; attempt < 50 && !lock; attempt++) {
      lock = await lockStation('bench-9', { dir }).catch(() => undefined);
      if (!lock) await new Promise((r) => setTimeout(r, 20));
    }
    expect(lock?.station).toBe('bench-9');
    if (lock) held.push(lock);
  });
});
