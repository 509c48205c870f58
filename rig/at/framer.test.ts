import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AtFramer, quecthingBinaryLength } from './framer.ts';
import type { Frame, FramerOptions } from './framer.ts';
import { fragment, seededRandom } from './testing/peer.ts';

function frames(input: Buffer | string, opts: FramerOptions & { seed?: number; whole?: boolean } = {}): Frame[] {
  const out: Frame[] = [];
  const framer = new AtFramer((f) => out.push(f), opts);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  if (opts.whole) framer.push(bytes);
  else for (const piece of fragment(bytes, seededRandom(opts.seed ?? 7))) framer.push(piece);
  return out;
}

const firmware = Buffer.concat([Buffer.from('\r\nOK\r\n\0\0+QIOTEVT: 7,10706\r\nERROR\r\n'), Buffer.alloc(64, 0x0a), Buffer.from([0xff, 0xfe, 0x00, 0x0d])]);

describe('AtFramer', () => {
  it('splits lines at CR, LF or CRLF and drops empty lines', () => {
    expect(frames('AT+QIOTREG=1\r\r\nOK\r\n\r\n+QIOTEVT: 2,10200\n\r\nX\r')).toEqual([
      { kind: 'line', text: 'AT+QIOTREG=1' },
      { kind: 'line', text: 'OK' },
      { kind: 'line', text: '+QIOTEVT: 2,10200' },
      { kind: 'line', text: 'X' },
    ]);
  });

  it('reads exactly the announced bytes after +QIOTOTARD, even \\r\\nOK\\r\\n and NUL, in any fragmentation', () => {
    const wire = Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: 1024,${firmware.length}\r\n`), firmware, Buffer.from('\r\n\r\nOK\r\n')]);
    for (let seed = 1; seed <= 50; seed++) {
      expect(frames(wire, { seed })).toEqual([
        { kind: 'block', header: `+QIOTOTARD: 1024,${firmware.length}`, data: firmware },
        { kind: 'line', text: 'OK' },
      ]);
    }
  });

  it('with sha256, names each block by the hash of its bytes, computed as they arrive in any fragmentation (an empty block too; a URC payload too)', () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const payload = Buffer.from('abc\r\nRDY\r\n');
    const wire = Buffer.concat([
      Buffer.from(`\r\n+QIOTOTARD: 0,${firmware.length}\r\n`),
      firmware,
      Buffer.from(`\r\n\r\nOK\r\n+QIOTOTARD: 9,0\r\n\r\nOK\r\n+QIOTEVT: 5,10200,${payload.length}\r\n`),
      payload,
    ]);
    for (let seed = 1; seed <= 20; seed++) {
      expect(frames(wire, { seed, sha256: true })).toEqual([
        { kind: 'block', header: `+QIOTOTARD: 0,${firmware.length}`, data: firmware, sha256: sha(firmware) },
        { kind: 'line', text: 'OK' },
        { kind: 'block', header: '+QIOTOTARD: 9,0', data: Buffer.alloc(0), sha256: sha(Buffer.alloc(0)) },
        { kind: 'line', text: 'OK' },
        { kind: 'block', header: `+QIOTEVT: 5,10200,${payload.length}`, data: payload, sha256: sha(payload) },
      ]);
    }
    // Without the option, blocks carry no hash.
    expect(frames(wire, { whole: true })[0]).not.toHaveProperty('sha256');
  });

  it('takes the LF of the header terminator even when it arrives in a later chunk', () => {
    const out: Frame[] = [];
    const framer = new AtFramer((f) => out.push(f));
    framer.push(Buffer.from('+QIOTOTARD: 0,3\r'));
    framer.push(Buffer.from('\n'));
    framer.push(Buffer.from('\nA\r\r\nOK\r\n'));
    expect(out).toEqual([
      { kind: 'block', header: '+QIOTOTARD: 0,3', data: Buffer.from('\nA\r') },
      { kind: 'line', text: 'OK' },
    ]);
  });

  it('reads the raw payload of an unbuffered +QIOTEVT: 5,10200,<len>', () => {
    expect(frames('\r\n+QIOTEVT: 5,10200,6\r\n123456\r\n+QIOTEVT: 7,10702\r\n', { whole: true })).toEqual([
      { kind: 'block', header: '+QIOTEVT: 5,10200,6', data: Buffer.from('123456') },
      { kind: 'line', text: '+QIOTEVT: 7,10702' },
    ]);
  });

  it('treats a zero-length block as complete at once', () => {
    expect(frames('+QIOTOTARD: 5,0\r\n\r\nOK\r\n')).toEqual([
      { kind: 'block', header: '+QIOTOTARD: 5,0', data: Buffer.alloc(0) },
      { kind: 'line', text: 'OK' },
    ]);
  });

  it('drops an overlong line, reports it once, and recovers at the next terminator', () => {
    const long = 'A'.repeat(300);
    for (const whole of [true, false]) {
      const out = frames(`${long}\r\nOK\r\nB${long}C\r\n+QIOTEVT: 7,10702\r\n`, { maxLineLength: 100, whole });
      expect(out.map((f) => f.kind)).toEqual(['overflow', 'line', 'overflow', 'line']);
      expect(out[0]).toMatchObject({ kind: 'overflow', limit: 100, head: expect.stringMatching(/^A+$/) });
      expect(out[1]).toEqual({ kind: 'line', text: 'OK' });
      expect(out[3]).toEqual({ kind: 'line', text: '+QIOTEVT: 7,10702' });
    }
  });

  it('accepts a line of exactly the limit', () => {
    expect(frames(`${'x'.repeat(100)}\r\n`, { maxLineLength: 100 })).toEqual([{ kind: 'line', text: 'x'.repeat(100) }]);
  });

  it('survives noise and invalid UTF-8 without growing: bounded by the line limit', () => {
    const random = seededRandom(42);
    const noise = Buffer.alloc(200_000);
    for (let i = 0; i < noise.length; i++) noise[i] = random() < 0.001 ? 0x0a : 0x80 + Math.floor(random() * 0x7f);
    const out = frames(Buffer.concat([noise, Buffer.from('\r\nRDY\r\n')]), { maxLineLength: 256 });
    expect(out.at(-1)).toEqual({ kind: 'line', text: 'RDY' });
    for (const f of out) {
      if (f.kind === 'line') expect(Buffer.byteLength(f.text)).toBeLessThanOrEqual(256 * 3);
      else expect(f.kind).toBe('overflow');
    }
  });

  it('skips the bytes a header announces above the limit, never reading them as lines (a RDY inside is no reboot)', () => {
    const data = Buffer.concat([Buffer.from('\r\nRDY\r\n+QIOTEVT: 7,10706\r\nOK\r\n'), Buffer.alloc(5000 - 33, 0x41)]);
    for (const seed of [1, 2, 3]) {
      const out = frames(Buffer.concat([Buffer.from('+QIOTOTARD: 0,5000\r\n'), data, Buffer.from('\r\n\r\nOK\r\n')]), { maxBinaryLength: 4096, seed });
      expect(out).toEqual([
        { kind: 'oversize-block', header: '+QIOTOTARD: 0,5000', length: 5000, limit: 4096 },
        { kind: 'discarded', header: '+QIOTOTARD: 0,5000', reason: 'oversize', length: 5000, announced: 5000, ended: 'complete' },
        { kind: 'line', text: 'OK' },
      ]);
    }
  });

  it("takes a read's block only when CR or LF follows it; otherwise it is misframed and its bytes are dropped", () => {
    const ok = frames(Buffer.concat([Buffer.from('+QIOTOTARD: 0,8\r\n'), firmware.subarray(0, 8), Buffer.from('\r\n\r\nOK\r\n')]));
    expect(ok).toEqual([{ kind: 'block', header: '+QIOTOTARD: 0,8', data: firmware.subarray(0, 8) }, { kind: 'line', text: 'OK' }]);
    // A module that ends its lines with LF alone.
    expect(frames('+QIOTOTARD: 0,3\nabc\n\nOK\n', { whole: true })).toEqual([{ kind: 'block', header: '+QIOTOTARD: 0,3', data: Buffer.from('abc') }, { kind: 'line', text: 'OK' }]);
    // Eight bytes announced, ten sent: the last two are not the terminator.
    const spliced = frames('+QIOTOTARD: 0,8\r\nABCDEFGHIJ\r\n\r\nOK\r\n', { whole: true });
    expect(spliced).toEqual([
      { kind: 'misframed-block', header: '+QIOTOTARD: 0,8', length: 8, next: 'IJ....OK..', data: Buffer.from('ABCDEFGH') },
      { kind: 'line', text: 'IJ' },
      { kind: 'line', text: 'OK' },
    ]);
    // A URC payload is delivered at once: the next line may come at any time.
    const out: Frame[] = [];
    new AtFramer((f) => out.push(f)).push(Buffer.from('+QIOTEVT: 5,10200,6\r\n123456'));
    expect(out).toEqual([{ kind: 'block', header: '+QIOTEVT: 5,10200,6', data: Buffer.from('123456') }]);
  });

  it('skips the late rest of a block given up on, whatever it looks like, and says how much came', () => {
    const out: Frame[] = [];
    const framer = new AtFramer((f) => out.push(f));
    framer.push(Buffer.from('+QIOTOTARD: 0,300\r\n'));
    framer.push(Buffer.alloc(100, 0x42));
    expect(framer.discardRestOfBlock()).toBe(true);
    expect(framer.skipping).toBe(true);
    const rest = Buffer.concat([Buffer.from('\r\nOK\r\n+QIOTOTARD: 0,100\r\n'), Buffer.alloc(200 - 29, 0x43), Buffer.from('\r\n\r\nOK\r\n')]);
    for (const piece of fragment(rest, seededRandom(5))) framer.push(piece);
    expect(out).toEqual([
      { kind: 'discarded', header: '+QIOTOTARD: 0,300', reason: 'late', length: 200, announced: 200, ended: 'complete' },
      { kind: 'line', text: 'OK' },
    ]);
    expect(framer.discardRestOfBlock()).toBe(false);
  });

  it("ends a late rest at the module's boot banner (it restarted: the rest never comes), even split across reads", () => {
    for (const split of [1, 2, 3, 4, 5, 6]) {
      const out: Frame[] = [];
      const framer = new AtFramer((f) => out.push(f));
      framer.push(Buffer.from('+QIOTOTARD: 0,1024\r\nxyz'));
      framer.discardRestOfBlock();
      const boot = Buffer.from('\x00\xff\r\nRDY\r\n\r\n+QIOTEVT: 1,10067\r\n', 'latin1');
      framer.push(boot.subarray(0, split));
      framer.push(boot.subarray(split));
      expect({ split, out }).toEqual({
        split,
        out: [
          { kind: 'discarded', header: '+QIOTOTARD: 0,1024', reason: 'late', length: 4, announced: 1021, ended: 'banner' },
          { kind: 'line', text: 'RDY' },
          { kind: 'line', text: '+QIOTEVT: 1,10067' },
        ],
      });
    }
  });

  it('a RDY further into late data is data: the skipping goes on to the last announced byte', () => {
    const out: Frame[] = [];
    const framer = new AtFramer((f) => out.push(f));
    framer.push(Buffer.from('+QIOTOTARD: 0,100\r\n'));
    framer.discardRestOfBlock();
    framer.push(Buffer.concat([Buffer.alloc(40, 0x41), Buffer.from('\r\nRDY\r\n'), Buffer.alloc(53, 0x41), Buffer.from('\r\n\r\nOK\r\n')]));
    expect(out).toEqual([
      { kind: 'discarded', header: '+QIOTOTARD: 0,100', reason: 'late', length: 100, announced: 100, ended: 'complete' },
      { kind: 'line', text: 'OK' },
    ]);
  });

  it('stops skipping when told (the bytes are not coming), and frames lines again', () => {
    const out: Frame[] = [];
    const framer = new AtFramer((f) => out.push(f), { maxBinaryLength: 16 });
    framer.push(Buffer.from('+QIOTOTARD: 0,999999\r\nabc\r\nOK\r\n'));
    expect(framer.endDiscard()).toBe(true);
    expect(framer.endDiscard()).toBe(false);
    framer.push(Buffer.from('\r\n+CSQ: 20,99\r\n'));
    expect(out).toEqual([
      { kind: 'oversize-block', header: '+QIOTOTARD: 0,999999', length: 999999, limit: 16 },
      { kind: 'discarded', header: '+QIOTOTARD: 0,999999', reason: 'oversize', length: 9, announced: 999999, ended: 'stopped' },
      { kind: 'line', text: '+CSQ: 20,99' },
    ]);
  });

  it('forgets a partial block on reset', () => {
    const out: Frame[] = [];
    const framer = new AtFramer((f) => out.push(f));
    framer.push(Buffer.from('+QIOTOTARD: 0,100\r\nabc'));
    expect(framer.inBlock).toBe(true);
    framer.reset();
    framer.push(Buffer.from('\r\nOK\r\n'));
    expect(out).toEqual([{ kind: 'line', text: 'OK' }]);
  });
});

describe('quecthingBinaryLength', () => {
  it('recognises the headers that announce raw bytes and nothing else', () => {
    expect(quecthingBinaryLength('+QIOTOTARD: 27648,306')).toBe(306);
    expect(quecthingBinaryLength('+QIOTEVT: 5,10200,6')).toBe(6);
    expect(quecthingBinaryLength('+QIOTEVT: 5,10210,12')).toBe(12);
    expect(quecthingBinaryLength('+QIOTEVT: 5,10211,1,2')).toBeUndefined();
    expect(quecthingBinaryLength('+QIOTEVT: 7,10703,"STM32",27954,0,27954')).toBeUndefined();
    expect(quecthingBinaryLength('+QIOTOTARD: (0-1024)')).toBeUndefined();
    expect(quecthingBinaryLength('OK')).toBeUndefined();
  });
});
