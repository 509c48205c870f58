// The benchmark's arithmetic: the figures `npm run bench` reports are only as right as these formulas.
import { describe, expect, it } from 'vitest';
import {
  blockWireBytes,
  cpuMsPerMiB,
  meets,
  median,
  otaReadCommand,
  payloadShare,
  quantile,
  protocolMinimumMs,
  ratio,
  readPhaseBlocks,
  summarize,
  wireTotals,
} from './wire.ts';

describe('one block on the wire', () => {
  it('counts the command, the header, the data and the trailer exactly as the module sends them', () => {
    // Issue 9's example: "AT+QIOTOTARD=27648,1024\r" is 24 bytes out.
    expect(otaReadCommand(27648, 1024)).toBe('AT+QIOTOTARD=27648,1024\r');
    const w = blockWireBytes({ start: 27648, requested: 1024, returned: 1024 }, { echo: false });
    const back = Buffer.concat([Buffer.from('\r\n+QIOTOTARD: 27648,1024\r\n'), Buffer.alloc(1024), Buffer.from('\r\n\r\nOK\r\n')]);
    expect(w).toEqual({ out: 24, back: back.length });
    expect(w.back).toBe(26 + 1024 + 8);
  });

  it('adds the echo of the command to what comes back when the module echoes', () => {
    const plain = blockWireBytes({ start: 0, requested: 1024, returned: 1024 }, { echo: false });
    const echoed = blockWireBytes({ start: 0, requested: 1024, returned: 1024 }, { echo: true });
    expect(echoed.out).toBe(plain.out);
    expect(echoed.back - plain.back).toBe('AT+QIOTOTARD=0,1024\r'.length);
  });

  it('uses the count that came back in the header, and the trailer the module was configured with', () => {
    const w = blockWireBytes({ start: 27648, requested: 1024, returned: 306 }, { echo: false, trailer: '\r\nOK\r\n' });
    expect(w.back).toBe('\r\n+QIOTOTARD: 27648,306\r\n'.length + 306 + 6);
  });

  it('refuses impossible blocks', () => {
    expect(() => blockWireBytes({ start: 0, requested: 10, returned: 11 }, { echo: false })).toThrow(RangeError);
    expect(() => blockWireBytes({ start: -1, requested: 10, returned: 10 }, { echo: false })).toThrow(RangeError);
    expect(() => blockWireBytes({ start: 0.5, requested: 10, returned: 10 }, { echo: false })).toThrow(RangeError);
  });
});

describe('a read phase', () => {
  it('splits a piece into block-size requests with a short last one', () => {
    const blocks = readPhaseBlocks(0, 2500, 1024);
    expect(blocks).toEqual([
      { start: 0, requested: 1024, returned: 1024 },
      { start: 1024, requested: 1024, returned: 1024 },
      { start: 2048, requested: 452, returned: 452 },
    ]);
    expect(readPhaseBlocks(100, 100, 1024)).toEqual([]);
    expect(() => readPhaseBlocks(0, 10, 0)).toThrow(RangeError);
    expect(() => readPhaseBlocks(10, 0, 1024)).toThrow(RangeError);
  });

  it('totals a 256 KiB piece and reaches the ~0.95 payload share issue 9 quotes', () => {
    const t = wireTotals(readPhaseBlocks(0, 256 * 1024, 1024), { echo: false });
    expect(t.blocks).toBe(256);
    expect(t.dataBytes).toBe(262144);
    // Offsets grow from 1 to 6 digits: sum the exact command lengths instead of assuming 24.
    let out = 0;
    for (let s = 0; s < 262144; s += 1024) out += `AT+QIOTOTARD=${s},1024\r`.length;
    expect(t.out).toBe(out);
    expect(t.back).toBe(256 * (1024 + 8) + [...Array(256).keys()].reduce((n, i) => n + `\r\n+QIOTOTARD: ${i * 1024},1024\r\n`.length, 0));
    expect(t.total).toBe(t.out + t.back);
    expect(payloadShare(t)).toBeGreaterThan(0.94);
    expect(payloadShare(t)).toBeLessThan(0.96);
    // With echo the commands cross twice.
    const echoed = wireTotals(readPhaseBlocks(0, 256 * 1024, 1024), { echo: true });
    expect(echoed.total).toBe(t.total + out);
    // …but the echo crosses while the command does: only each block's last echoed byte adds line time.
    expect(t.lineBytes).toBe(t.total);
    expect(echoed.lineBytes).toBe(t.total + t.blocks);
  });

  it('converts bytes to line time at 10 bits a byte', () => {
    // 115200 baud moves 11 520 bytes a second.
    expect(protocolMinimumMs(11520, 115200)).toBe(1000);
    expect(protocolMinimumMs(92160, 921600)).toBe(1000);
    expect(protocolMinimumMs(1080, 115200)).toBeCloseTo(93.75, 10);
    expect(() => protocolMinimumMs(100, 0)).toThrow(RangeError);
  });

  it('gives CPU per MiB from process.cpuUsage microseconds', () => {
    expect(cpuMsPerMiB(250_000, 256 * 1024)).toBe(1000);
    expect(cpuMsPerMiB(0, 1)).toBe(0);
    expect(() => cpuMsPerMiB(1000, 0)).toThrow(RangeError);
  });
});

describe('statistics', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
    expect(() => median([1, Number.NaN])).toThrow(RangeError);
  });

  it('takes quantiles by nearest rank', () => {
    const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0.9)).toBe(9);
    expect(quantile(xs, 1)).toBe(10);
    expect(quantile(xs, 0)).toBe(1);
    expect(() => quantile([], 0.5)).toThrow(RangeError);
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
  });

  it('divides only by a positive measurement', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(() => ratio(1, 0)).toThrow(RangeError);
    expect(() => ratio(-1, 2)).toThrow(RangeError);
  });

  it('summarizes runs without reordering them', () => {
    expect(summarize([1.23456, 1.1, 1.3], 2)).toEqual({ median: 1.23, min: 1.1, max: 1.3, runs: [1.23, 1.1, 1.3] });
  });

  it('judges a target in the direction it is stated', () => {
    expect(meets(1.03, { op: '<=', value: 1.03 })).toBe(true);
    expect(meets(1.031, { op: '<=', value: 1.03 })).toBe(false);
    expect(meets(4.9, { op: '>=', value: 5 })).toBe(false);
    expect(meets(5, { op: '>=', value: 5 })).toBe(true);
  });
});
