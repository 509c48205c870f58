import { describe, expect, test } from 'vitest';
import { ProtocolError } from '../errors.ts';
import { DownloadAssembly } from './pieces.ts';

const ann = (start: number, length: number, size = 10_000, component = 'STM32') => ({
  component,
  size,
  start,
  length,
  raw: `+QIOTEVT: 7,10703,"${component}",${size},${start},${length}`,
});

/** Reads the current piece block by block from `source`, as the flow does with AT+QIOTOTARD. */
function readAll(dl: DownloadAssembly, source: Uint8Array, blockSize: number): number[] {
  const offsets: number[] = [];
  for (let len = dl.nextBlock(blockSize); len > 0; len = dl.nextBlock(blockSize)) {
    const at = dl.readOffset;
    offsets.push(at);
    dl.store(at, source.subarray(at, at + len));
  }
  return offsets;
}

const source = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + 3) & 0xff);

describe('piece accounting', () => {
  test('one piece read in 1024-byte blocks, the last one short', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    dl.accept(ann(0, 10_000));
    const offsets = readAll(dl, source, 1024);
    expect(offsets).toHaveLength(10);
    expect(offsets.at(-1)).toBe(9216);
    expect(dl.pieceDone).toBe(true);
    expect(dl.complete).toBe(true);
    expect(Buffer.compare(dl.file, source)).toBe(0);
  });

  test('three pieces, each read from its own start to its own end', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    const seen: number[][] = [];
    for (const [start, length] of [
      [0, 4096],
      [4096, 4096],
      [8192, 1808],
    ] as const) {
      dl.accept(ann(start, length));
      seen.push(readAll(dl, source, 1024));
      if (!dl.complete) dl.next();
    }
    expect(seen).toEqual([
      [0, 1024, 2048, 3072],
      [4096, 5120, 6144, 7168],
      [8192, 9216],
    ]);
    expect(dl.complete).toBe(true);
    expect(Buffer.compare(dl.file, source)).toBe(0);
  });

  test('a piece that does not continue the file is refused, naming what was expected', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    dl.accept(ann(0, 4096));
    readAll(dl, source, 1024);
    dl.next();
    let caught: unknown;
    try {
      dl.accept(ann(5000, 1000));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).expected).toBe('"STM32",10000,0 or 4096,<length ≥ 1, ending by 10000>');
    expect((caught as ProtocolError).seen).toBe('+QIOTEVT: 7,10703,"STM32",10000,5000,1000');
  });

  test.each([
    ['another component', ann(0, 100, 10_000, 'GD32')],
    ['another file size', ann(0, 100, 9_999)],
    ['an empty piece', ann(0, 0)],
    ['a piece past the end of the file', ann(9_000, 1_001)],
  ])('%s is refused', (_what, a) => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    expect(() => dl.accept(a)).toThrow(ProtocolError);
  });

  test('a restart from byte 0 (module reboot, §4.4) throws away what was read', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    dl.accept(ann(0, 4096));
    readAll(dl, source, 1024);
    dl.next();
    dl.accept(ann(4096, 4096));
    dl.store(4096, source.subarray(4096, 5120));
    dl.restart();
    expect(dl.piece).toBeUndefined();
    expect(() => dl.accept(ann(4096, 4096))).toThrow(/0,<length/);
    dl.accept(ann(0, 4096));
    readAll(dl, source, 1024);
    expect(dl.complete).toBe(false);
    dl.next();
    dl.accept(ann(4096, 5904));
    readAll(dl, source, 1000);
    expect(dl.complete).toBe(true);
    expect(Buffer.compare(dl.file, source)).toBe(0);
  });

  test('a module that restarts at 0 on its own (10703 with start 0 mid-file) starts the file over', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    dl.accept(ann(0, 4096));
    readAll(dl, source, 1024);
    dl.next();
    dl.accept(ann(0, 10_000));
    expect(dl.complete).toBe(false);
    readAll(dl, source, 4096);
    expect(dl.complete).toBe(true);
  });

  test('a block must continue the piece: no gap, no overlap, nothing past its end', () => {
    const dl = new DownloadAssembly('bench-2', 'STM32', 10_000);
    expect(() => dl.store(0, source.subarray(0, 10))).toThrow(/no piece announced/);
    dl.accept(ann(0, 2048));
    dl.store(0, source.subarray(0, 1024));
    expect(() => dl.store(1500, source.subarray(1500, 1600))).toThrow(/bytes from 1024 up to 2048/);
    expect(() => dl.store(1024, source.subarray(1024, 2049))).toThrow(/1025 bytes at 1024/);
    expect(() => dl.store(1024, new Uint8Array(0))).toThrow(/0 bytes at 1024/);
    expect(dl.nextBlock(4096)).toBe(1024);
    expect(() => dl.next()).toThrow(/not read to its end/);
  });
});
