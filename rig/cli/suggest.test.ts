import { describe, expect, test } from 'vitest';
import { closest, editDistance } from './suggest.ts';

describe('did you mean', () => {
  test('edit distance counts a swap of neighbours as one slip', () => {
    expect(editDistance('doctr', 'doctor')).toBe(1);
    expect(editDistance('upgarde', 'upgrade')).toBe(1);
    expect(editDistance('onn', 'on')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  test.each([
    ['doctr', ['doctor', 'at', 'power'], 'doctor'],
    ['--versio', ['--help', '--version'], '--version'],
    ['onn', ['on', 'off', 'cycle'], 'on'],
    ['of', ['on', 'off', 'cycle'], 'off'],
    ['Off', ['on', 'off', 'cycle'], 'off'],
    ['readb', ['readback', 'report', 'repro'], 'readback'],
    ['--pakage', ['--package', '--plan'], '--package'],
    ['module-vbta', ['module-vbat', 'module-reset', 'target-vdd'], 'module-vbat'],
  ])('%s → %s', (word, candidates, expected) => {
    expect(closest(word, candidates)).toBe(expected);
  });

  test('nothing close: no guess', () => {
    expect(closest('frobnicate', ['doctor', 'at', 'power'])).toBeUndefined();
    expect(closest('re', ['report', 'repro'])).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
  });
});
