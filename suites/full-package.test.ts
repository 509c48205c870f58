// Full package: the whole new image is delivered, checked, programmed, read back and reported.
import { describe, expect } from 'vitest';
import { expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

const { test, budget, retry } = await sotaSuite({ feature: 'Full package' });

describe('full package', () => {
  test('v1_0_0 → v2_0_0', { timeout: budget.upgrade, retry }, async ({ sota, images }) => {
    const v1 = images.image('1_0_0');
    const v2 = images.image('2_0_0');
    const pkg = images.package('full_2_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v1 });
    expectOutcome(run, 'upgraded');
    // The module's dialogue as the SOTA example has it: plan, URL, one piece, updating, success.
    const codes = run.events.filter((e) => e.code !== undefined && e.code >= 10700).map((e) => e.code);
    expect(codes[0]).toBe(10700);
    expect(codes).toContain(10701);
    expect(codes.filter((c) => c === 10703)).toHaveLength(1);
    expect(codes.slice(-2)).toEqual([10704, 10705]);
    expect(run.download?.verified).toBe(true);
    expect(run.read.bytes).toBe(pkg.size);
    await sota.readback(v2);
  });
});
