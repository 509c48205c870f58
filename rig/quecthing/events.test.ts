import { describe, expect, it } from 'vitest';
import { isEvent, parseModuleEvent, parseQiotEvent } from './events.ts';
import { fieldValues, quote, splitFields } from './fields.ts';

describe('splitFields', () => {
  it('keeps commas inside quotes, strips quotes, and tells strings from numbers', () => {
    expect(fieldValues('"STM32,rev B","",30,-113,"1,2"')).toEqual(['STM32,rev B', '', 30, -113, '1,2']);
    expect(fieldValues('"007",007')).toEqual(['007', 7]);
    expect(splitFields('')).toEqual([]);
    expect(splitFields('a,')).toEqual([
      { text: 'a', quoted: false },
      { text: '', quoted: false },
    ]);
    expect(fieldValues('"unterminated,x')).toEqual(['unterminated,x']);
  });

  it('refuses to quote what AT cannot carry', () => {
    expect(quote('2_0_0')).toBe('"2_0_0"');
    expect(() => quote('a"b')).toThrow(RangeError);
  });
});

describe('parseQiotEvent', () => {
  it('decodes the seed 10700 plan', () => {
    expect(parseQiotEvent('+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954')).toEqual({
      kind: 'ota-plan',
      raw: '+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954',
      type: 7,
      code: 10700,
      component: 'STM32',
      source: '',
      target: '2_0_0',
      minBattery: 30,
      minSignal: -113,
      size: 27954,
    });
  });

  it('decodes 10701 with and without the SHA-256, keeping the CRC as an unsigned number', () => {
    const line =
      '+QIOTEVT: 7,10701,"STM32",27954,"95cbdeb4faeda4322ad9b65eb731ed2b",4022793929,"2bb534d576fb307f049a149787afab2382ebb8605467acfc2c05a2e67677e094"';
    expect(parseQiotEvent(line)).toMatchObject({
      kind: 'ota-download-start',
      component: 'STM32',
      size: 27954,
      md5: '95cbdeb4faeda4322ad9b65eb731ed2b',
      crc: 0xefc6f6c9,
      sha256: '2bb534d576fb307f049a149787afab2382ebb8605467acfc2c05a2e67677e094',
    });
    const without = parseQiotEvent('+QIOTEVT: 7,10701,"STM32",27954,"95cbdeb4faeda4322ad9b65eb731ed2b",4022793929');
    expect(without).toMatchObject({ kind: 'ota-download-start', crc: 4022793929 });
    expect(without).not.toHaveProperty('sha256');
  });

  it('decodes 10703 and the bare OTA codes', () => {
    expect(parseQiotEvent('+QIOTEVT: 7,10703,"STM32",27954,0,27954')).toMatchObject({
      kind: 'ota-piece-ready',
      component: 'STM32',
      size: 27954,
      start: 0,
      length: 27954,
    });
    expect(parseQiotEvent('+QIOTEVT: 7,10702')).toEqual({ kind: 'ota-downloading', raw: '+QIOTEVT: 7,10702', type: 7, code: 10702 });
    expect(parseQiotEvent('+QIOTEVT: 7,10704')?.kind).toBe('ota-updating');
    expect(parseQiotEvent('+QIOTEVT: 7,10705')?.kind).toBe('ota-success');
    expect(parseQiotEvent('+QIOTEVT: 7,10706')?.kind).toBe('ota-failed');
  });

  it('decodes a component name containing a comma', () => {
    expect(parseQiotEvent('+QIOTEVT: 7,10703,"MCU,A",100,0,100')).toMatchObject({ component: 'MCU,A', size: 100 });
  });

  it('keeps the FOTA forms without payload, 10707 raw, and unknown codes and types', () => {
    expect(parseQiotEvent('+QIOTEVT: 7,10701')?.kind).toBe('ota-module-download-start');
    expect(parseQiotEvent('+QIOTEVT: 7,10703')?.kind).toBe('ota-module-piece-ready');
    expect(parseQiotEvent('+QIOTEVT: 7,10707,0')).toMatchObject({ kind: 'ota-operation-notice', payload: '0' });
    expect(parseQiotEvent('+QIOTEVT: 7,10707')).toMatchObject({ kind: 'ota-operation-notice', payload: '' });
    expect(parseQiotEvent('+QIOTEVT: 7,10708,"x"')).toMatchObject({ kind: 'ota-other', code: 10708, fields: ['x'] });
    expect(parseQiotEvent('+QIOTEVT: 42,1,2')).toMatchObject({ kind: 'unknown', type: 42, code: 1, fields: [2] });
  });

  it('names the other event types and their meanings', () => {
    expect(parseQiotEvent('+QIOTEVT: 2,10200')).toMatchObject({ kind: 'connect', meaning: 'connected', fields: [] });
    expect(parseQiotEvent('+QIOTEVT: 3,10200')).toMatchObject({ kind: 'subscribe', meaning: 'subscribe OK' });
    expect(parseQiotEvent('+QIOTEVT: 1,10423')).toMatchObject({ kind: 'auth', meaning: 'product info not found (bad PK)' });
    expect(parseQiotEvent('+QIOTEVT: 4,10200,17')).toMatchObject({ kind: 'send', fields: [17] });
    expect(parseQiotEvent('+QIOTEVT: 2,19999')).toMatchObject({ kind: 'connect', meaning: undefined });
    expect(parseQiotEvent('+QIOTEVT: 5,10200,6', Buffer.from('123456'))).toMatchObject({ kind: 'receive', fields: [6], data: Buffer.from('123456') });
  });

  it('keeps malformed payloads with the reason, never throws', () => {
    expect(parseQiotEvent('+QIOTEVT: 7,10700,"STM32",27954')).toMatchObject({ kind: 'malformed', type: 7, code: 10700 });
    expect(parseQiotEvent('+QIOTEVT: 7,10703,STM32,1,0,1')).toMatchObject({ kind: 'malformed', problem: expect.stringContaining('10703') });
    expect(parseQiotEvent('+QIOTEVT: 7,10702,1')).toMatchObject({ kind: 'malformed' });
    expect(parseQiotEvent('+QIOTEVT: garbage')).toMatchObject({ kind: 'malformed', type: undefined });
    expect(parseQiotEvent('+QIOTEVT:7,10705')?.kind).toBe('ota-success');
    expect(parseQiotEvent('+QIND: "FOTA","END",0')).toBeUndefined();
  });
});

describe('parseModuleEvent', () => {
  it('turns RDY into a reboot and other URCs into plain urc events', () => {
    expect(parseModuleEvent('RDY')).toEqual({ kind: 'reboot', raw: 'RDY' });
    expect(parseModuleEvent('+QIND: "FOTA","END",0')).toEqual({ kind: 'urc', raw: '+QIND: "FOTA","END",0' });
    const e = parseModuleEvent('+QIOTEVT: 7,10705');
    expect(isEvent('ota-success', 'ota-failed')(e)).toBe(true);
    expect(isEvent('ota-plan')(e)).toBe(false);
  });
});
