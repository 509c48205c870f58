// Multi-piece: a package larger than the module's free space arrives in pieces; the MCU reads each piece,
// asks for the next with AT+QIOTUPDATE=2 (protocol §5), and the whole file rebuilds the new image.
import { describe, expect } from 'vitest';
import { expectOutcome } from './support/evidence.ts';
import { sotaSuite } from './fixtures.ts';

// The virtual module keeps 10 KiB free for a download: the 25 KiB package comes in three pieces.
const FREE_SPACE = 10 * 1024;
const { test, budget, retry, suite } = await sotaSuite({ feature: 'Multi-piece', sim: { moduleFreeSpace: FREE_SPACE } });

describe('multi-piece', () => {
  test('a package larger than the module free space', { timeout: budget.upgrade, retry }, async ({ sota, station, images }) => {
    const v1 = images.image('1_0_0');
    const pkg = images.package('full_2_0_0');
    await sota.baseline(v1);
    const run = await sota.upgrade({ plan: sota.spec(pkg), current: v1 });
    expectOutcome(run, 'upgraded');
    const pieces = run.events.filter((e) => e.code === 10703).map((e) => e.raw);
    expect(
      pieces.length,
      `${station.name}: the module took ${pkg.size} bytes in one piece (${pieces.join(', ')}); a multi-piece run needs a package larger than the module's free space`,
    ).toBeGreaterThan(1);
    const nextPiece = run.transcript.filter((l) => l.dir === 'TX' && l.text === 'AT+QIOTUPDATE=2').length;
    expect(nextPiece).toBe(pieces.length - 1);
    // Where the suite set the free space, the pieces are exactly free-space sized.
    if (suite.entry.kind === 'virtual') expect(pieces).toHaveLength(Math.ceil(pkg.size / FREE_SPACE));
    await sota.readback(images.image('2_0_0'));
  });
});
