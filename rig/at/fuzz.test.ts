// The fast, seeded part of the fuzz campaign (`npm run fuzz` runs a million inputs and measures the heap):
// hostile input never makes the framer or the decoder throw, and garbage costs a port a bounded transcript.
import { describe, expect, test } from 'vitest';
import { fuzzFramerAndDecoder, garbageThroughPorts } from './testing/fuzz.ts';
import { DEFAULT_TRANSCRIPT_MAX_BYTES } from './transcript.ts';

describe('fuzzing the AT read path (seeded)', () => {
  test('20 000 hostile inputs cut into reads of any size: nothing thrown, every line decoded to a typed event', () => {
    const stats = fuzzFramerAndDecoder({ count: 20_000, seed: 16 });
    expect(stats.untyped).toEqual([]);
    expect(stats.typed).toBe(0);
    expect(stats.inputs).toBe(20_000);
    // The campaign reached what it aims at: lines, blocks, overflows, oversize headers, skipped bytes, malformed events.
    for (const kind of ['line', 'block', 'overflow', 'oversize-block', 'discarded', 'misframed-block']) expect(stats.frames[kind] ?? 0, kind).toBeGreaterThan(0);
    for (const kind of ['malformed', 'urc', 'reboot', 'ota-plan']) expect(stats.events[kind] ?? 0, kind).toBeGreaterThan(0);
  });

  test('ports fed kilobyte lines of garbage throw nothing and keep their transcript within its budget', () => {
    const r = garbageThroughPorts({ ports: 2, lines: 600, seed: 3 });
    expect(r.thrown).toBe(0);
    expect(r.dropped).toBeGreaterThan(0);
    expect(r.heldEntries).toBeGreaterThan(50);
    expect(r.heldBytes).toBeLessThanOrEqual(DEFAULT_TRANSCRIPT_MAX_BYTES);
  });
});
