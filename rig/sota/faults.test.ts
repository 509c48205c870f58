import { describe, expect, test } from 'vitest';
import { formatFault, parseFault } from './faults.ts';
import { ConfigError } from '../errors.ts';

describe('fault syntax', () => {
  test.each([
    ['event=10702#2:power-cycle-module', { trigger: { kind: 'event', code: 10702, occurrence: 2 }, action: { kind: 'power-cycle', part: 'module', offMs: 500 } }],
    ['event=10703:network-cut=20000', { trigger: { kind: 'event', code: 10703, occurrence: 1 }, action: { kind: 'network-cut', ms: 20000 } }],
    ['offset=8192:close-port', { trigger: { kind: 'offset', bytes: 8192 }, action: { kind: 'close-port' } }],
    ['after-update3:reset-module=250', { trigger: { kind: 'after-update3' }, action: { kind: 'reset', part: 'module', ms: 250 } }],
    ['programming:power-cycle-target=50', { trigger: { kind: 'programming' }, action: { kind: 'power-cycle', part: 'target', offMs: 50 } }],
    ['before-version-report:reset-target', { trigger: { kind: 'before-version-report' }, action: { kind: 'reset', part: 'target', ms: 100 } }],
    ['delay=1500:power-cycle-module=0', { trigger: { kind: 'delay', ms: 1500 }, action: { kind: 'power-cycle', part: 'module', offMs: 0 } }],
  ])('%s', (text, expected) => {
    const fault = parseFault(text);
    expect(fault).toEqual(expected);
    expect(parseFault(formatFault(fault))).toEqual(fault);
  });

  test.each([
    ['power-cycle-module', /expected <trigger>:<action>/],
    ['event=abc:close-port', /expected an event code as a whole number; seen 'abc'/],
    ['event=10702#0:close-port', /expected an occurrence ≥ 1; seen 0/],
    ['sometime:close-port', /expected a trigger: .*seen 'sometime'/],
    ['offset=10:explode', /expected an action: .*seen 'explode'/],
    ['programming=3:close-port', /expected 'programming' without a value/],
    ['offset=10:close-port=5', /expected 'close-port' without a value/],
  ])('%s is refused with what was expected and seen', (text, message) => {
    let caught: unknown;
    try {
      parseFault(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).toContain(`invalid fault '${text}'`);
  });
});

describe('dut triggers: console patterns and time offsets', () => {
  test.each([
    ['console=\\[boot\\] swap unit 3/13 step 2:power-cycle-target=200', { trigger: { kind: 'console', pattern: '\\[boot\\] swap unit 3/13 step 2' }, action: { kind: 'power-cycle', part: 'target', offMs: 200 } }],
    ['after-update3+350ms:power-cycle-target', { trigger: { kind: 'after-update3', afterMs: 350 }, action: { kind: 'power-cycle', part: 'target', offMs: 500 } }],
    ['event=10703#2+40ms:reset-target=50', { trigger: { kind: 'event', code: 10703, occurrence: 2, afterMs: 40 }, action: { kind: 'reset', part: 'target', ms: 50 } }],
    // A pattern may hold colons and '=': the action is after the last colon.
    ['console=state=trial: x+20ms:network-cut=1000', { trigger: { kind: 'console', pattern: 'state=trial: x', afterMs: 20 }, action: { kind: 'network-cut', ms: 1000 } }],
    ['offset=8192+0ms:close-port', { trigger: { kind: 'offset', bytes: 8192 }, action: { kind: 'close-port' } }],
  ])('%s', (text, expected) => {
    const fault = parseFault(text);
    expect(fault).toEqual(expected);
    expect(parseFault(formatFault(fault))).toEqual(fault);
  });

  test.each([
    ['console=:power-cycle-target', /expected console=<regular expression>; seen no pattern/],
    ['console=(unclosed:power-cycle-target', /expected console=<a JavaScript regular expression>; seen Invalid regular expression/],
    ['after-update3+fast:power-cycle-target', /expected 'after-update3' without a value|expected a trigger/],
  ])('%s is refused', (text, message) => {
    expect(() => parseFault(text)).toThrow(message);
  });
});
