import { describe, expect, it } from 'vitest';
import { PassiveFramer } from './passive.ts';
import type { TapFrame } from './passive.ts';
import { fragment, seededRandom } from './testing/peer.ts';

function frames(dir: 'mcu' | 'module', chunks: (Buffer | string)[], setup?: (f: PassiveFramer) => void): TapFrame[] {
  const out: TapFrame[] = [];
  const f = new PassiveFramer(dir, (x) => out.push(x));
  setup?.(f);
  chunks.forEach((c, i) => f.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c, 1000 + i));
  return out;
}

const kinds = (fs: TapFrame[]) => fs.map((f) => [f.kind, f.text]);

// A block whose bytes contain everything a line framer would stumble on.
const data = Buffer.concat([Buffer.from('\r\nOK\r\n+QIOTEVT: 7,10705\r\n\0\xff', 'latin1'), Buffer.alloc(29, 0x41)]);
const moduleSide = Buffer.concat([
  Buffer.from('AT+QIOTOTARD=0,56\r\r\n+QIOTOTARD: 0,56\r\n', 'latin1'),
  data,
  Buffer.from('\r\n\r\nOK\r\n\r\n+QIOTEVT: 7,10703,"STM32",56,0,56\r\nAT+QIOTSTATE?\r\r\n+QIOTSTATE: 8\r\n\r\nOK\r\n', 'latin1'),
]);

describe('PassiveFramer, module → MCU', () => {
  it('tells echoes, counted blocks, finals, URCs and answers apart, whatever the block holds', () => {
    const out = frames('module', [moduleSide]);
    expect(kinds(out)).toEqual([
      ['echo', 'AT+QIOTOTARD=0,56'],
      ['block', '+QIOTOTARD: 0,56'],
      ['final', 'OK'],
      ['urc', '+QIOTEVT: 7,10703,"STM32",56,0,56'],
      ['echo', 'AT+QIOTSTATE?'],
      ['answer', '+QIOTSTATE: 8'],
      ['final', 'OK'],
    ]);
    expect(out[1]!.data).toEqual(data);
    expect(out[1]!.block).toEqual({ start: 0, length: 56 });
  });

  it('frames the same whichever way the bytes are cut into chunks, stamping each frame with its last chunk', () => {
    const whole = kinds(frames('module', [moduleSide]));
    for (const seed of [1, 2, 3, 42]) {
      const pieces = fragment(moduleSide, seededRandom(seed), 9);
      const out = frames('module', pieces);
      expect(kinds(out)).toEqual(whole);
      expect(out[1]!.data).toEqual(data);
      // Times are the chunk indices + 1000: never decreasing, and the last OK came with the chunk holding its CR.
      expect(out.map((f) => f.t)).toEqual([...out.map((f) => f.t)].sort((a, b) => a - b));
      let end = 0;
      const withCr = pieces.findIndex((p) => (end += p.length) > moduleSide.length - 2);
      expect(out.at(-1)!.t).toBe(1000 + withCr);
    }
  });

  it('starting in the middle of a block: the tail is noise, the next lines are in step', () => {
    const start = moduleSide.indexOf('\r\n+QIOTOTARD') + 30;
    const out = frames('module', [moduleSide.subarray(start)]);
    const firstGood = out.findIndex((f) => f.kind === 'final');
    expect(out.slice(0, firstGood).every((f) => f.kind === 'noise')).toBe(true);
    // A tail holding `+QIOTEVT: 7,10705` between terminators cannot be told from a real URC: it is kept as one.
    expect(kinds(out.slice(firstGood))).toEqual([
      ['final', 'OK'],
      ['urc', '+QIOTEVT: 7,10703,"STM32",56,0,56'],
      ['echo', 'AT+QIOTSTATE?'],
      ['answer', '+QIOTSTATE: 8'],
      ['final', 'OK'],
    ]);
  });

  it('a partial first line is noise; garbage between lines is noise and costs no line after it', () => {
    const out = frames('module', ['TSTATE: 8\r\n\r\nOK\r\n', Buffer.from([0xff, 0x00, 0xfe, 0x0d, 0x0a]), '\r\nRDY\r\n']);
    expect(kinds(out)).toEqual([
      ['noise', 'TSTATE: 8 (partial line)'],
      ['final', 'OK'],
      ['noise', '...'],
      ['urc', 'RDY'],
    ]);
  });

  it('a line that could not have begun mid-way is kept even as the first', () => {
    expect(kinds(frames('module', ['+QIOTEVT: 7,10704\r\n']))).toEqual([['urc', '+QIOTEVT: 7,10704']]);
  });

  it('a block cut short (the module lost power) gives its bytes back as lines when abandoned: the RDY is not lost', () => {
    const out: TapFrame[] = [];
    const f = new PassiveFramer('module', (x) => out.push(x));
    f.push(Buffer.from('\r\n+QIOTOTARD: 1024,1024\r\nabcdefgh\r\nRDY\r\n', 'latin1'), 5);
    expect(f.inBlock).toBe(true);
    expect(f.blockRemaining).toBe(1024 - 15);
    f.abandonBlock(9);
    expect(f.inBlock).toBe(false);
    expect(kinds(out)).toEqual([
      ['noise', '+QIOTOTARD: 1024,1024 (only 15 of its bytes came)'],
      ['noise', 'abcdefgh (partial line)'],
      ['urc', 'RDY'],
    ]);
    expect(out.every((x) => x.t === 9)).toBe(true);
  });

  it('a header cut short by a power loss (`…,10` of `…,1024`) counts bytes that are not a block: not followed by CR LF, they are framed again', () => {
    // The module dies while sending the header, boots (RDY) and echoes the MCU's retried command.
    const out = frames('module', ['\r\nOK\r\n\r\n+QIOTOTARD: 2048,10', '\r\nRDY\r\nAT+QIOTOTARD=2048,1024\r\r\nERROR\r\n']);
    expect(kinds(out)).toEqual([
      ['final', 'OK'],
      ['noise', '+QIOTOTARD: 2048,10 (not followed by CR LF after its 10 bytes: not a block)'],
      ['urc', 'RDY'],
      ['echo', 'AT+QIOTOTARD=2048,1024'],
      ['final', 'ERROR'],
    ]);
  });

  it('+CPIN: READY answers AT+CPIN? while it is in flight, and is a URC otherwise', () => {
    expect(kinds(frames('module', ['\r\nRDY\r\n\r\n+CPIN: READY\r\n'])).at(-1)).toEqual(['urc', '+CPIN: READY']);
    const echoOff = frames('module', ['\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n'], (f) => f.commandSent('AT+CPIN?'));
    expect(kinds(echoOff).slice(1)).toEqual([
      ['answer', '+CPIN: READY'],
      ['final', 'OK'],
    ]);
    const echoed = frames('module', ['\r\nOK\r\nAT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n']);
    expect(kinds(echoed).slice(1)).toEqual([
      ['echo', 'AT+CPIN?'],
      ['answer', '+CPIN: READY'],
      ['final', 'OK'],
    ]);
  });

  it('an overlong line is noise and the next line is framed', () => {
    const out = frames('module', ['\r\nOK\r\n', 'x'.repeat(5000), '\r\nRDY\r\n']);
    expect(out.map((f) => f.kind)).toEqual(['final', 'noise', 'urc']);
  });
});

describe('PassiveFramer, MCU → module', () => {
  it('commands end at CR (or CR LF); counted data never opens on this side', () => {
    const out = frames('mcu', ['AT\rATE0\rAT+QURCCFG="urcport","uart1"\r\nAT+QIOTOTARD=0,1024\r', '+QIOTOTARD: 0,4\r\nAT+QIOTUPDATE=3\r']);
    expect(kinds(out)).toEqual([
      ['command', 'AT'],
      ['command', 'ATE0'],
      ['command', 'AT+QURCCFG="urcport","uart1"'],
      ['command', 'AT+QIOTOTARD=0,1024'],
      ['noise', '+QIOTOTARD: 0,4'],
      ['command', 'AT+QIOTUPDATE=3'],
    ]);
  });

  it('a tap that starts mid-command drops the tail as noise', () => {
    expect(kinds(frames('mcu', ['OTARD=0,1024\rAT+QIOTUPDATE=2\r']))).toEqual([
      ['noise', 'OTARD=0,1024 (partial line)'],
      ['command', 'AT+QIOTUPDATE=2'],
    ]);
  });
});
