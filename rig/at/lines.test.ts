import { describe, expect, it } from 'vitest';
import { DEFAULT_URC_PREFIXES, matchesPrefix, parseFinalResult } from './lines.ts';

describe('parseFinalResult', () => {
  it('knows OK, ERROR, +CME ERROR and +CMS ERROR, numeric or verbose', () => {
    expect(parseFinalResult('OK')).toEqual({ result: 'OK' });
    expect(parseFinalResult('ERROR')).toEqual({ result: 'ERROR' });
    expect(parseFinalResult('+CME ERROR: 10')).toEqual({ result: '+CME ERROR', code: 10, text: '10' });
    expect(parseFinalResult('+CMS ERROR: 500')).toEqual({ result: '+CMS ERROR', code: 500, text: '500' });
    expect(parseFinalResult('+CME ERROR: SIM not inserted')).toEqual({ result: '+CME ERROR', code: undefined, text: 'SIM not inserted' });
  });

  it('does not take look-alikes for a final result', () => {
    for (const l of ['OK ', 'OKAY', 'NO CARRIER ERROR', '+QIOTEVT: 7,10706', 'ERRORS', 'AT+QIOTOTARD=0,1024']) expect(parseFinalResult(l)).toBeUndefined();
  });
});

describe('URC prefixes', () => {
  it('cover the QuecThing events and the boot and SIM URCs', () => {
    expect(matchesPrefix('+QIOTEVT: 7,10702', DEFAULT_URC_PREFIXES)).toBe('+QIOTEVT:');
    expect(matchesPrefix('+QIND: "FOTA","END",0', DEFAULT_URC_PREFIXES)).toBe('+QIND:');
    expect(matchesPrefix('RDY', DEFAULT_URC_PREFIXES)).toBe('RDY');
    expect(matchesPrefix('POWERED DOWN', DEFAULT_URC_PREFIXES)).toBe('POWERED DOWN');
    expect(matchesPrefix('+CPIN: READY', DEFAULT_URC_PREFIXES)).toBe('+CPIN:');
    expect(matchesPrefix('+QIOTMCUVER: "A","1"', DEFAULT_URC_PREFIXES)).toBeUndefined();
  });
});
