import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { FirmwareError, InfrastructureError } from '../errors.ts';
import { applyDelta, checkVcdiffHeader, encodeDelta } from './delta.ts';
import { Image } from './image.ts';
import { loadManifest, type FirmwareSet } from './manifest.ts';

let fx: FirmwareSet;
beforeAll(async () => {
  fx = await loadManifest();
});

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, nothing was thrown');
}

describe('VCDIFF delta codec', () => {
  test('the fixture delta rebuilds 2_0_0 from 1_0_0 byte for byte, and is much smaller than the image', () => {
    const delta = fx.package('delta_1_0_0_to_2_0_0');
    const v1 = fx.image('1_0_0');
    const v2 = fx.image('2_0_0');
    const out = applyDelta(delta.bytes, v1.bytes, { source: v1.ref(), target: v2.ref() });
    expect(Buffer.compare(out, v2.bytes)).toBe(0);
    expect(delta.size * 5).toBeLessThan(v2.size);
    const rebuilt = delta.apply(v1);
    expect(rebuilt.equals(v2)).toBe(true);
    expect(rebuilt.version).toBe('2_0_0');
    expect(Image.fromBytes(rebuilt.bytes).version).toBe('2_0_0');
  });

  test('the delta is refused against the wrong source (1_1_0), naming both hashes', () => {
    const delta = fx.package('delta_1_0_0_to_2_0_0');
    const wrong = fx.image('1_1_0');
    const err = caught(() => delta.apply(wrong));
    expect(err).toBeInstanceOf(FirmwareError);
    const fe = err as FirmwareError;
    expect(fe.summary).toBe('delta refused: it applies to 1_0_0 and the current image is another one');
    expect(fe.expected).toBe(`source 1_0_0 of ${fx.image('1_0_0').size} bytes, sha256 ${fx.image('1_0_0').sha256}`);
    expect(fe.seen).toBe(`${wrong.size} bytes, sha256 ${wrong.sha256}`);
    expect(caught(() => delta.apply())).toBeInstanceOf(FirmwareError);
  });

  test('a damaged delta never yields an image: either the decoder or the target hash refuses it', () => {
    const delta = fx.package('delta_1_0_0_to_2_0_0');
    const v1 = fx.image('1_0_0');
    const expectation = { source: v1.ref(), target: fx.image('2_0_0').ref() };
    const flipped = delta.bytes.slice();
    flipped[flipped.length - 100]! ^= 0x55;
    for (const bad of [delta.bytes.subarray(0, delta.size - 200), flipped]) {
      expect(caught(() => applyDelta(bad, v1.bytes, expectation))).toBeInstanceOf(FirmwareError);
    }
  });

  test('a package rebuilds from the bytes downloaded, not its own: a download that differs is refused, whichever kind', () => {
    const delta = fx.package('delta_1_0_0_to_2_0_0');
    const v1 = fx.image('1_0_0');
    const damaged = delta.bytes.slice();
    damaged[damaged.length - 100]! ^= 0x55;
    // The package's own bytes rebuild the target; the damaged download given to it must not.
    expect(delta.apply(v1).equals(fx.image('2_0_0'))).toBe(true);
    expect(caught(() => delta.apply(v1, damaged))).toBeInstanceOf(FirmwareError);
    expect(caught(() => delta.apply(v1, delta.bytes.subarray(0, delta.size - 1)))).toBeInstanceOf(FirmwareError);
    const full = fx.package('full_2_0_0');
    // eslint-disable-next-line prefer-spread -- Package.apply(current, downloaded), not Function.prototype.apply
    expect(caught(() => full.apply(undefined, fx.package('corrupt_full_2_0_0').bytes))).toBeInstanceOf(FirmwareError);
  });

  test('a full package is checked against its target before it counts as that image', () => {
    const full = fx.package('full_2_0_0');
    expect(full.apply().equals(fx.image('2_0_0'))).toBe(true);
    const err = caught(() => fx.package('corrupt_full_2_0_0').apply()) as FirmwareError;
    expect(err).toBeInstanceOf(FirmwareError);
    expect(err.expected).toBe(`${fx.image('2_0_0').size} bytes, sha256 ${fx.image('2_0_0').sha256}`);
  });

  test('encodeDelta makes a delta the decoder applies byte-exactly (1_1_0 → 2_0_0)', async () => {
    const src = fx.image('1_1_0');
    const tgt = fx.image('2_0_0');
    const delta = await encodeDelta(src.bytes, tgt.bytes);
    checkVcdiffHeader(delta);
    expect(Buffer.compare(applyDelta(delta, src.bytes, { source: src.ref(), target: tgt.ref() }), tgt.bytes)).toBe(0);
  });

  test('a delta made with xdelta3 defaults is refused with the flags that fix it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sota-delta-test-'));
    try {
      const v1 = fx.image('1_0_0');
      const v2 = fx.image('2_0_0');
      await writeFile(path.join(dir, 'a'), v1.bytes);
      await writeFile(path.join(dir, 'b'), v2.bytes);
      await promisify(execFile)('xdelta3', ['-e', '-f', '-s', path.join(dir, 'a'), path.join(dir, 'b'), path.join(dir, 'd')]);
      const delta = new Uint8Array(await readFile(path.join(dir, 'd')));
      const err = caught(() => applyDelta(delta, v1.bytes, { source: v1.ref(), target: v2.ref() })) as FirmwareError;
      expect(err).toBeInstanceOf(FirmwareError);
      expect(err.expected).toBe('Hdr_Indicator 0 (encode with xdelta3 -S none -A -n)');
      expect(err.seen).toMatch(/^Hdr_Indicator 0x0[1-7]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a file that is not VCDIFF is named as such', () => {
    const err = caught(() => checkVcdiffHeader(fx.image('1_0_0').bytes)) as FirmwareError;
    expect(err.summary).toBe('delta package is not VCDIFF');
    expect(err.seen).toBe('00500020');
  });

  test('a missing xdelta3 is an infrastructure error, not a firmware one', async () => {
    const err = await encodeDelta(new Uint8Array(10), new Uint8Array(10), { xdelta3: '/nonexistent/xdelta3' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).expected).toContain('Debian package xdelta3');
  });
});
