import { beforeAll, describe, expect, test } from 'vitest';
import { compareImages, describeComparison } from './compare.ts';
import { loadManifest, type FirmwareSet } from './manifest.ts';

let fx: FirmwareSet;
beforeAll(async () => {
  fx = await loadManifest();
});

describe('compareImages', () => {
  test('an image equals itself', () => {
    const v1 = fx.image('1_0_0').bytes;
    const c = compareImages(v1, v1.slice());
    expect(c).toMatchObject({ equal: true, firstDifference: null, differingBytes: 0, rangeCount: 0, ranges: [] });
    expect(describeComparison(c)).toBe('equal (24576 bytes)');
  });

  test('scattered flips are reported as separate ranges with flash addresses', () => {
    const expected = fx.image('1_0_0').bytes;
    const seen = expected.slice();
    seen[0x1000]! ^= 1;
    seen[0x1001]! ^= 1;
    seen[0x3000]! ^= 0xff;
    const c = compareImages(expected, seen, { baseAddress: 0x08000000 });
    expect(c).toMatchObject({ equal: false, firstDifference: 0x1000, differingBytes: 3, rangeCount: 2 });
    expect(c.ranges).toEqual([{ offset: 0x1000, length: 2 }, { offset: 0x3000, length: 1 }]);
    expect(describeComparison(c)).toBe('differ: 3 bytes in 2 ranges, first at 0x08001000 (0x08001000+2, 0x08003000+1)');
  });

  test('an unprogrammed page shows as one aligned range of the page size', () => {
    const expected = fx.image('2_0_0').bytes;
    const seen = expected.slice();
    seen.fill(0xff, 0x2000, 0x2400);
    const c = compareImages(expected, seen);
    // Bytes that happen to be 0xff in the image do not differ, so count against the image itself.
    const ff = expected.subarray(0x2000, 0x2400).filter((b) => b === 0xff).length;
    expect(c.differingBytes).toBe(0x400 - ff);
    expect(c.firstDifference).toBeGreaterThanOrEqual(0x2000);
    expect(c.ranges.every((r) => r.offset >= 0x2000 && r.offset + r.length <= 0x2400)).toBe(true);
  });

  test('a short read-back counts the missing tail as differing', () => {
    const expected = fx.image('2_0_0').bytes;
    const c = compareImages(expected, expected.subarray(0, 20_000));
    expect(c).toMatchObject({ equal: false, firstDifference: 20_000, differingBytes: expected.length - 20_000, rangeCount: 1 });
    expect(c.ranges).toEqual([{ offset: 20_000, length: expected.length - 20_000 }]);
    expect(describeComparison(c)).toContain(`sizes differ: expected ${expected.length}, seen 20000`);
  });

  test('v1 against v2 differs from the first shifted byte on, with ranges capped but all counted', () => {
    const c = compareImages(fx.image('2_0_0').bytes, fx.image('1_0_0').bytes, { maxRanges: 3 });
    expect(c.equal).toBe(false);
    // The header (0x200..0x240) holds a different version, so the first difference is in it.
    expect(c.firstDifference).toBeGreaterThanOrEqual(0x200);
    expect(c.firstDifference).toBeLessThan(0x240);
    expect(c.ranges).toHaveLength(3);
    expect(c.rangeCount).toBeGreaterThan(3);
    expect(describeComparison(c)).toMatch(new RegExp(`… ${c.rangeCount - 3} more\\)`));
  });
});
