// The boot-record decoders on byte strings built from their formats (docs/virtual-mcu.md §4; MCUboot's
// image trailer), one row per state a verdict cares about.
import { describe, expect, it } from 'vitest';
import type { McuLayout } from '../config/schema.ts';
import { crc32 } from '../images/crc.ts';
import { MCUBOOT_MAGIC, bootRecordDecoder, mcubootDecoder, readBootRecord, vmcu1Decoder } from './boot-record.ts';
import { vmcuLayout as layout } from './testing/layout.ts';


const erased = (n = 0x800) => new Uint8Array(n).fill(0xff);

/** A VBR1 copy as §4 lays it out, with an optional swap log. */
function vbr(seq: number, state: number, opts: { units?: number; crc?: number; length?: number; log?: [number, number][]; breakCrc?: boolean } = {}): Uint8Array {
  const b = erased();
  const v = new DataView(b.buffer);
  b.set(Buffer.from('VBR1'), 0);
  v.setUint32(4, seq, true);
  v.setUint32(8, state, true);
  v.setUint32(0x0c, opts.units ?? 0, true);
  v.setUint32(0x10, opts.crc ?? 0, true);
  v.setUint32(0x14, opts.length ?? 0, true);
  v.setUint32(0x18, 0xffffffff, true);
  v.setUint32(0x1c, crc32(b.subarray(0, 0x1c)) ^ (opts.breakCrc ? 1 : 0), true);
  (opts.log ?? []).forEach(([unit, step], i) => {
    const at = 0x20 + 8 * i;
    v.setUint16(at, unit, true);
    b[at + 2] = step;
    b[at + 3] = step ^ 0xff;
    v.setUint32(at + 4, crc32(b.subarray(at, at + 4)), true);
  });
  return b;
}

describe('vmcu-1', () => {
  it.each<[string, Uint8Array, Uint8Array, string, RegExp]>([
    ['an erased record area', erased(), erased(), 'confirmed', /^no valid copy: confirmed by default$/],
    ['one confirmed copy', vbr(1, 1), erased(), 'confirmed', /^seq 1 confirmed from copy 0$/],
    ['the higher sequence wins, whichever copy holds it', vbr(3, 1), vbr(4, 2, { units: 13, crc: 0x1234abcd, length: 25344 }), 'pending', /^seq 4 pending \(13 units, image crc 0x1234abcd, 25344 bytes\) from copy 1$/],
    ['a swap cut short, with its log', vbr(5, 3, { units: 13, length: 25344, log: [[0, 1], [0, 2], [0, 3], [1, 1]] }), vbr(4, 2, { units: 13 }), 'swapping', /^seq 5 swapping .* swap log 4 entries, last unit 2\/13 step 1 from copy 0$/],
    ['a newer copy with a bad CRC (torn while written) leaves the older in force', vbr(6, 4, { units: 13 }), vbr(7, 1, { breakCrc: true }), 'trial', /^seq 6 trial .* from copy 0; copy 1 neither valid nor erased \(torn\)$/],
    ['reverting', vbr(8, 5, { units: 13 }), vbr(7, 4), 'reverting', /^seq 8 reverting/],
    ['a state no one defined', vbr(9, 42), erased(), 'unknown', /^seq 9 state 42 from copy 0$/],
  ])('%s', (_name, a, b, phase, summary) => {
    const r = vmcu1Decoder.decode(layout, [a, b]);
    expect(r.phase).toBe(phase);
    expect(r.summary).toMatch(summary);
  });

  it('a torn log entry ends the log: the step it names was not done', () => {
    const b = vbr(5, 3, { units: 13, log: [[0, 1], [0, 2]] });
    b[0x20 + 8 + 3] = b[0x20 + 8 + 3]! ^ 0x10; // the second entry's complement no longer matches
    expect(vmcu1Decoder.decode(layout, [b, erased()]).fields.logEntries).toBe(1);
  });

  it('reads only the head and the swap log of each copy (a 16 KiB sector costs seconds over SWD)', () => {
    // 64 swap units of 2 KiB in a 128 KiB slot: 32 + 64 × 3 × 8 bytes.
    expect(vmcu1Decoder.regions(layout)).toEqual([
      { address: 0x0800_4000, size: 1568 },
      { address: 0x0800_4800, size: 1568 },
    ]);
    const f4: McuLayout = { ...layout, record: [{ address: 0x0800_4000, size: 0x4000 }, { address: 0x0800_8000, size: 0x4000 }], swapUnit: 0x20000 };
    expect(vmcu1Decoder.regions(f4)).toEqual([
      { address: 0x0800_4000, size: 0x20 + 24 },
      { address: 0x0800_8000, size: 0x20 + 24 },
    ]);
  });
});

/** The last 48 bytes of a slot: swap size, swap info, copy_done, image_ok (8-byte units), magic. */
function trailer(f: { magic?: 'good' | 'bad'; imageOk?: number; copyDone?: number; swapInfo?: number; swapSize?: number }): Uint8Array {
  const t = erased(48);
  if (f.swapSize !== undefined) new DataView(t.buffer).setUint32(0, f.swapSize, true);
  if (f.swapInfo !== undefined) t[8] = f.swapInfo;
  if (f.copyDone !== undefined) t[16] = f.copyDone;
  if (f.imageOk !== undefined) t[24] = f.imageOk;
  if (f.magic === 'good') t.set(MCUBOOT_MAGIC, 32);
  if (f.magic === 'bad') t.set(MCUBOOT_MAGIC.map((x) => x ^ 1), 32);
  return t;
}

describe('mcuboot', () => {
  it.each<[string, Uint8Array, Uint8Array, string, RegExp]>([
    ['nothing written anywhere: slot A just boots', trailer({}), trailer({}), 'confirmed', /^confirmed: primary magic unset/],
    ['an upgrade requested for a test boot', trailer({}), trailer({ magic: 'good' }), 'pending', /^pending \(test\): .*secondary magic good, image_ok unset/],
    ['an upgrade requested for good', trailer({}), trailer({ magic: 'good', imageOk: 0x01 }), 'pending', /^pending \(permanent\)/],
    ['swapped, in test, not confirmed: the next reset reverts', trailer({ magic: 'good', copyDone: 0x01, swapInfo: 0x02, swapSize: 25344 }), trailer({}), 'trial', /^trial: primary magic good, image_ok unset, copy_done set, swap test size 25344/],
    ['swapped and confirmed by the image', trailer({ magic: 'good', copyDone: 0x01, imageOk: 0x01, swapInfo: 0x02 }), trailer({}), 'confirmed', /^confirmed/],
    ['a swap cut short (copy_done not yet written)', trailer({ magic: 'good', swapInfo: 0x02, swapSize: 25344 }), trailer({}), 'swapping', /^swapping/],
    ['a revert cut short', trailer({ magic: 'good', swapInfo: 0x04 }), trailer({}), 'reverting', /^reverting/],
    ['a damaged primary magic', trailer({ magic: 'bad', imageOk: 0x07 }), trailer({}), 'unknown', /^unknown: primary magic bad, image_ok bad/],
  ])('%s', (_name, a, b, phase, summary) => {
    const r = mcubootDecoder.decode(layout, [a, b]);
    expect(r.phase).toBe(phase);
    expect(r.summary).toMatch(summary);
  });

  it('reads the trailer at the end of each slot', () => {
    expect(mcubootDecoder.regions(layout)).toEqual([
      { address: 0x0802_0000 + 0x20000 - 48, size: 48 },
      { address: 0x0804_0000 + 0x20000 - 48, size: 48 },
    ]);
  });
});

describe('choosing and reading', () => {
  it('none decodes nothing; the others read their regions through the probe function given', async () => {
    expect(bootRecordDecoder('none')).toBeUndefined();
    expect(await readBootRecord('none', layout, () => Promise.reject(new Error('never read')))).toBeUndefined();
    const reads: [number, number][] = [];
    const r = await readBootRecord('vmcu-1', layout, (address, size) => {
      reads.push([address, size]);
      return Promise.resolve(address === 0x0800_4000 ? vbr(2, 4, { units: 13 }).subarray(0, size) : erased(size));
    });
    expect(reads).toEqual([
      [0x0800_4000, 1568],
      [0x0800_4800, 1568],
    ]);
    expect(r?.phase).toBe('trial');
  });
});
