// cycle() and pulse() against a scripted line: what they throw when switching off, the wait, or switching
// back on fails.
import { describe, expect, test } from 'vitest';
import { AbortedError, InfrastructureError } from '../errors.ts';
import { cycle, LineLeftOffError, pulse, type PowerLine } from './line.ts';

/** A line whose n-th set() fails with `failures[n]` when one is given. */
function scriptedLine(failures: Array<Error | undefined>): PowerLine & { calls: boolean[]; at: number[] } {
  const calls: boolean[] = [];
  const at: number[] = [];
  return {
    name: 'bench-9/module-vbat',
    calls,
    at,
    async set(on) {
      calls.push(on);
      at.push(performance.now());
      const err = failures[calls.length - 1];
      if (err) throw err;
    },
    async get() {
      return calls.at(-1) ?? true;
    },
    async close() {},
  };
}

const offFailed = (): InfrastructureError =>
  new InfrastructureError('module-vbat: could not switch off pinctrl-rp1 line 17 = GPIO 588', { station: 'bench-9', seen: 'EIO: i/o error' });
const onFailed = (): InfrastructureError =>
  new InfrastructureError('module-vbat: could not switch on pinctrl-rp1 line 17 = GPIO 588', { station: 'bench-9', seen: 'ENODEV: no such device' });

test('the line is off for at least the time asked, by performance.now()', async () => {
  const line = scriptedLine([]);
  await cycle(line, 25);
  await pulse(line, 7);
  expect(line.calls).toEqual([false, true, false, true]);
  expect(line.at[1]! - line.at[0]!).toBeGreaterThanOrEqual(25);
  expect(line.at[3]! - line.at[2]!).toBeGreaterThanOrEqual(7);
});

describe('cycle and pulse when a write fails', () => {
  test('switching off and back on both fail: the first failure is the error, the restore failure is attached and named', async () => {
    const first = offFailed();
    const restore = onFailed();
    const line = scriptedLine([first, restore]);
    const err = await cycle(line, 10).catch((e: unknown) => e);
    expect(line.calls).toEqual([false, true]);
    expect(err).toBeInstanceOf(LineLeftOffError);
    expect(err).toBeInstanceOf(InfrastructureError);
    const left = err as LineLeftOffError;
    expect(left.cause).toBe(first);
    expect(left.restoreError).toBe(restore);
    expect(left.station).toBe('bench-9');
    expect(left.message).toContain('bench-9: module-vbat: power cycle failed, and switching the line back on failed too: it may be left off');
    expect(left.message).toContain('EIO: i/o error');
    expect(left.message).toContain('switching back on: bench-9: module-vbat: could not switch on');
    expect(left.message).toContain('ENODEV');
  });

  test('only switching off fails: that error, unchanged, after the line was switched back on', async () => {
    const first = offFailed();
    const line = scriptedLine([first]);
    await expect(pulse(line, 10)).rejects.toBe(first);
    expect(line.calls).toEqual([false, true]);
  });

  test('only switching back on fails: that error', async () => {
    const restore = onFailed();
    const line = scriptedLine([undefined, restore]);
    await expect(cycle(line, 1)).rejects.toBe(restore);
  });

  test('aborted, and switching back on fails: the abort is the cause, the restore failure is named', async () => {
    const restore = onFailed();
    const line = scriptedLine([undefined, restore]);
    const ac = new AbortController();
    const cycling = cycle(line, 60_000, { signal: ac.signal });
    ac.abort(new Error('test timed out'));
    const err = (await cycling.catch((e: unknown) => e)) as LineLeftOffError;
    expect(err).toBeInstanceOf(LineLeftOffError);
    expect(err.cause).toBeInstanceOf(AbortedError);
    expect((err.cause as Error).message).toMatch(/bench-9\/module-vbat: power cycle aborted after \d+ ms of 60000 ms/);
    expect(err.message).toContain('test timed out');
    expect(err.message).toContain('ENODEV');
    expect(err.restoreError).toBe(restore);
  });
});
