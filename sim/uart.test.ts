// The UART pacer on fake time: bytes arrive when their stop bit would end, never earlier, and late timers
// are caught up from the byte budget instead of drifting.
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { PacedLink } from './uart.ts';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

function collect(baud: number): { link: PacedLink; got: () => Buffer } {
  const chunks: Buffer[] = [];
  // Fake time does not move while polling with setImmediate, so these tests use timers only (spinMs 0); the
  // polled tail runs in real time in the paced pty test of sim/module/sota.test.ts.
  const link = new PacedLink(baud, (c) => void chunks.push(Buffer.from(c)), { spinMs: 0 });
  return { link, got: () => Buffer.concat(chunks) };
}

test('115200 baud: 11.52 bytes per ms, delivered in order, none early', () => {
  const { link, got } = collect(115200);
  const data = Buffer.from(Array.from({ length: 2000 }, (_, i) => i & 0xff));
  link.push(data.subarray(0, 700));
  link.push(data.subarray(700));
  for (let ms = 1; ms <= 200; ms++) {
    vi.advanceTimersByTime(1);
    expect(got().length).toBeLessThanOrEqual(Math.floor(ms * 11.52));
  }
  // 2000 bytes need 173.6 ms of line time.
  expect(got().equals(data)).toBe(true);
});

test('no drift over a long transfer: half the line time gives exactly half the bytes, the rest on time', () => {
  const { link, got } = collect(9600);
  link.push(Buffer.alloc(960, 1));
  vi.advanceTimersByTime(500);
  expect(got().length).toBe(480);
  vi.advanceTimersByTime(499);
  expect(got().length).toBeLessThan(960);
  vi.advanceTimersByTime(2);
  expect(got().length).toBe(960);
});

test('a new burst after an idle line starts from now; a burst right after another queues behind it', () => {
  const { link, got } = collect(96000); // 9.6 bytes per ms
  link.push(Buffer.alloc(96, 1));
  vi.advanceTimersByTime(10);
  expect(got().length).toBe(96);
  vi.advanceTimersByTime(1000);
  link.push(Buffer.alloc(96, 2));
  vi.advanceTimersByTime(9);
  expect(got().length).toBeLessThan(192);
  vi.advanceTimersByTime(2);
  expect(got().length).toBe(192);
});

test("an echo overlaps the bytes it echoes: on an idle line it may have begun as the first of them arrived, never before the line was free", () => {
  const { link, got } = collect(96000); // 9.6 bytes per ms
  vi.advanceTimersByTime(1000);
  // 24 bytes (a command) arrived over the last 2.4 ms: all but the last one's echo are due at once.
  link.pushEcho(Buffer.alloc(24, 1));
  vi.advanceTimersByTime(0);
  expect(got().length).toBe(23);
  vi.advanceTimersByTime(1);
  expect(got().length).toBe(24);
  // Behind a burst still on the line, an echo waits for it like any byte.
  link.push(Buffer.alloc(96, 2));
  link.pushEcho(Buffer.alloc(24, 3));
  vi.advanceTimersByTime(9);
  expect(got().length).toBeLessThan(24 + 96);
  vi.advanceTimersByTime(2);
  expect(got().length).toBe(24 + 96);
  vi.advanceTimersByTime(1);
  expect(got().length).toBeLessThan(24 + 96 + 24);
  vi.advanceTimersByTime(1);
  expect(got().length).toBe(24 + 96 + 24);
  // Right after that burst, a new echo cannot reach back into the time the line was busy.
  link.pushEcho(Buffer.alloc(24, 4));
  vi.advanceTimersByTime(0);
  expect(got().length).toBeLessThan(24 + 96 + 24 + 24);
});

test('clear() drops what is not yet on the wire (power loss); baud 0 passes bytes at once', () => {
  const { link, got } = collect(9600);
  link.push(Buffer.alloc(100, 1));
  vi.advanceTimersByTime(10);
  const sent = got().length;
  link.clear();
  vi.advanceTimersByTime(1000);
  expect(got().length).toBe(sent);
  const raw = collect(0);
  raw.link.push(Buffer.from('abc'));
  expect(raw.got().toString()).toBe('abc');
});
