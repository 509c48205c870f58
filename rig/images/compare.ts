// Where two images differ, for the read-back verdict: "equal" is not enough when they are not — a report
// must show whether one page failed to program (one aligned range), the whole write was skipped, or a
// few bits flipped.

export interface DiffRange {
  /** Offset from the start of the images (add `baseAddress` for a flash address). */
  offset: number;
  length: number;
}

export interface ImageComparison {
  equal: boolean;
  expectedSize: number;
  seenSize: number;
  /** First differing offset, or null when equal. A length difference counts from the shorter end. */
  firstDifference: number | null;
  /** Differing bytes, with the bytes one image has beyond the other's end counted as differing. */
  differingBytes: number;
  /** Number of maximal runs of differing bytes. */
  rangeCount: number;
  /** The first `maxRanges` runs. */
  ranges: DiffRange[];
  baseAddress: number;
}

export interface CompareOptions {
  /** How many ranges to keep (all are counted). Default 8. */
  maxRanges?: number;
  /** Flash address of offset 0, used only by describeComparison. Default 0. */
  baseAddress?: number;
}

export function compareImages(expected: Uint8Array, seen: Uint8Array, opts: CompareOptions = {}): ImageComparison {
  const maxRanges = opts.maxRanges ?? 8;
  const common = Math.min(expected.length, seen.length);
  const longest = Math.max(expected.length, seen.length);
  const ranges: DiffRange[] = [];
  let differing = 0;
  let rangeCount = 0;
  let first: number | null = null;
  let runStart = -1;
  const close = (end: number) => {
    if (runStart < 0) return;
    rangeCount++;
    if (ranges.length < maxRanges) ranges.push({ offset: runStart, length: end - runStart });
    runStart = -1;
  };
  for (let i = 0; i < common; i++) {
    if (expected[i] !== seen[i]) {
      differing++;
      if (first === null) first = i;
      if (runStart < 0) runStart = i;
    } else {
      close(i);
    }
  }
  if (longest > common) {
    if (runStart < 0) runStart = common;
    if (first === null) first = common;
    differing += longest - common;
  }
  close(longest);
  return {
    equal: differing === 0,
    expectedSize: expected.length,
    seenSize: seen.length,
    firstDifference: first,
    differingBytes: differing,
    rangeCount,
    ranges,
    baseAddress: opts.baseAddress ?? 0,
  };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** One line for a report: "equal (25088 bytes)" or "differ: 3 bytes in 2 ranges, first at 0x08001000 …". */
export function describeComparison(c: ImageComparison): string {
  if (c.equal) return `equal (${c.expectedSize} bytes)`;
  const sizes = c.expectedSize === c.seenSize ? '' : `; sizes differ: expected ${c.expectedSize}, seen ${c.seenSize}`;
  const shown = c.ranges.map((r) => `${hex(c.baseAddress + r.offset)}+${r.length}`).join(', ');
  const more = c.rangeCount > c.ranges.length ? `, … ${c.rangeCount - c.ranges.length} more` : '';
  return `differ: ${c.differingBytes} bytes in ${c.rangeCount} range${c.rangeCount === 1 ? '' : 's'}, first at ${hex(c.baseAddress + (c.firstDifference ?? 0))} (${shown}${more})${sizes}`;
}
