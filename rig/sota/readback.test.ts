import { describe, expect, test } from 'vitest';
import { Image } from '../images/image.ts';
import { loadManifest } from '../images/manifest.ts';
import { mcubootImage } from '../images/testing/mcuboot.ts';
import { describeReadback, judgeReadback } from './readback.ts';

const fx = await loadManifest();
const v1 = fx.image('1_0_0');
const v2 = fx.image('2_0_0');
const slot = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(0x8000).fill(0xff);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const ctx = { address: 0x0800_0000, current: v1, target: { version: '2_0_0', size: v2.size, sha256: v2.sha256 }, targetImage: v2, known: fx.images.values() };

describe('judging a read-back by its bytes', () => {
  test('the target in flash: matches, named by its bytes, compared equal', () => {
    const r = judgeReadback(slot(v2.bytes), { ...ctx, programmed: true });
    expect(r).toMatchObject({ matchesTarget: true, matchesCurrent: false, identified: { component: 'STM32', version: '2_0_0' }, firstDifference: null, comparison: 'equal (25344 bytes)' });
    expect(describeReadback(r, v1, '2_0_0')).toContain('holds: STM32 2_0_0 (25344 bytes');
  });

  test('a torn write: neither image; the first differing address against the target; the header names what it claims', () => {
    const torn = v2.bytes.slice();
    torn.fill(0xff, 0x4000, 0x4800);
    const r = judgeReadback(slot(torn), { ...ctx, programmed: true });
    expect(r).toMatchObject({ matchesTarget: false, matchesCurrent: false, identified: undefined, firstDifference: 0x0800_4000 });
    expect(r.identity).toMatch(/no known image .*rig header at 0x200 names STM32 2_0_0, damaged/);
  });

  test('a target the flow did not rebuild is still recognised by its hash; real images need no header', () => {
    const a = new Image(new Uint8Array(4000).fill(1), { component: 'MCU', version: 'a' });
    const b = new Image(mcubootImage({ body: new Uint8Array(3000).fill(2), version: { major: 1, minor: 0, revision: 0, build: 0 } }), { component: 'MCU', version: 'b' });
    const r = judgeReadback(slot(b.bytes), { address: 0, current: a, target: { version: 'b', size: b.size, sha256: b.sha256 }, programmed: false, locator: { kind: 'none' } });
    expect(r).toMatchObject({ matchesTarget: true, identified: { component: 'MCU', version: 'b' } });
    expect(r.identity).toBe(`MCU b (${b.size} bytes, sha256 ${b.sha256.slice(0, 12)}…)`);
    const old = judgeReadback(slot(a.bytes), { address: 0, current: a, target: { version: 'b', size: b.size, sha256: b.sha256 }, programmed: false, locator: { kind: 'none' } });
    expect(old).toMatchObject({ matchesCurrent: true, identified: { version: 'a' }, comparison: 'equal (4000 bytes)' });
  });
});
