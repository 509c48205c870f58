import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { OpenOcdSession } from './openocd.ts';
import { catchEnvelope, parseCatchResult, parseTclList, tclWord } from './tcl.ts';

describe('Tcl lists', () => {
  test('splits bare, braced, quoted and backslash-quoted elements', () => {
    expect(parseTclList('0x20001000 0x8000101  0x0')).toEqual(['0x20001000', '0x8000101', '0x0']);
    expect(parseTclList('0 {wrote 4 bytes\nto {file}}')).toEqual(['0', 'wrote 4 bytes\nto {file}']);
    expect(parseTclList('-4 a\\ b\\n\\{c')).toEqual(['-4', 'a b\n{c']);
    expect(parseTclList('1 "x \\"y\\" \\t z"')).toEqual(['1', 'x "y" \t z']);
    expect(parseTclList('{} {}')).toEqual(['', '']);
    expect(parseTclList('\\x41\\u00e9\\101')).toEqual(['AéA']);
    expect(parseTclList('   ')).toEqual([]);
  });

  test('refuses malformed lists instead of guessing', () => {
    expect(() => parseTclList('0 {open')).toThrow(SyntaxError);
    expect(() => parseTclList('0 "open')).toThrow(SyntaxError);
    expect(() => parseTclList('{a}b')).toThrow(SyntaxError);
  });

  test('the catch envelope: code and text, nothing else', () => {
    expect(parseCatchResult('0 {}')).toEqual({ code: 0, text: '' });
    expect(parseCatchResult('-107 {Failed to read memory at 0x20000000}')).toEqual({ code: -107, text: 'Failed to read memory at 0x20000000' });
    expect(() => parseCatchResult('wrote 4 bytes')).toThrow(SyntaxError);
    expect(() => parseCatchResult('')).toThrow(SyntaxError);
    expect(catchEnvelope('reset halt')).toBe('set r [catch {reset halt} e]; list $r $e');
  });

  test('tclWord refuses control characters', () => {
    expect(tclWord('/tmp/openocd-x/1-read.bin')).toBe('/tmp/openocd-x/1-read.bin');
    expect(() => tclWord('a\nb')).toThrow(RangeError);
  });
});

// The quoting is only right if the real Jim interpreter in OpenOCD agrees: round-trip awkward strings.
describe('quoting against the real OpenOCD interpreter', () => {
  let s: OpenOcdSession;
  beforeAll(async () => {
    s = await OpenOcdSession.start({ station: 'tcl-test', args: ['-c', 'adapter driver dummy'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  const awkward = ['plain', '', 'with space', '{unbalanced', 'close}', '$notavar [notacmd] ;', 'back\\slash', 'quote"s', 'é ü 日本', '{}', '\\'];
  test.each(awkward)('tclWord(%j) evaluates to itself', async (str) => {
    expect(await s.call(`set x ${tclWord(str)}`, { timeoutMs: 5000 })).toBe(str);
  });

  test('results with newlines, braces and quotes come back exactly', async () => {
    for (const str of ['a\nb', '{\n}', 'x}{y', '"', 'tab\there', 'trail\\']) {
      const script = `format %s ${JSON.stringify(str).replace(/[[\]$]/g, '\\$&')}`;
      expect(await s.call(script, { timeoutMs: 5000 })).toBe(str);
    }
  });

  test('a command with unbalanced braces or control characters still runs inside the envelope', async () => {
    expect(await s.call('string length "{{{"', { timeoutMs: 5000 })).toBe('3');
    expect(await s.call('string length "}"', { timeoutMs: 5000 })).toBe('1');
    expect(await s.call('set y 1\nset y 2', { timeoutMs: 5000 })).toBe('2');
  });
});
