import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Transcript, formatEntry, formatTranscript, maskSecrets } from './transcript.ts';
import type { TranscriptEntry } from './transcript.ts';

describe('maskSecrets', () => {
  it('masks the ProductSecret in the set command, its echo and the query answer, keeping the product key', () => {
    expect(maskSecrets('AT+QIOTCFG="productinfo","p11xyz","Zk9UdDBTQmRSbHhC"')).toBe('AT+QIOTCFG="productinfo","p11xyz","********"');
    expect(maskSecrets('+QIOTCFG: "productinfo","p11xyz","Zk9UdDBTQmRSbHhC","1.0"')).toBe('+QIOTCFG: "productinfo","p11xyz","********","1.0"');
    expect(maskSecrets('AT+QIOTCFG="productinfo","p11xyz",Zk9U')).toBe('AT+QIOTCFG="productinfo","p11xyz","********"');
  });

  it('leaves every other line alone', () => {
    for (const l of ['AT+QIOTCFG="server",1,"mqtt://iot-south.acceleronix.io:1883"', 'AT+QIOTCFG="productinfo"', '+QIOTEVT: 7,10702']) {
      expect(maskSecrets(l)).toBe(l);
    }
  });
});

describe('Transcript', () => {
  it('records TX/RX lines with monotonic timestamps, binary as length and SHA-256, and emits each entry', () => {
    const seen: TranscriptEntry[] = [];
    const t = new Transcript((e) => seen.push(e));
    const data = Buffer.from([0, 1, 2, 0x0d, 0x0a]);
    t.tx('AT+QIOTOTARD=0,5');
    t.rx('+QIOTOTARD: 0,5');
    t.rxBinary(data);
    t.rx('OK');
    const sha = createHash('sha256').update(data).digest('hex');
    expect(seen).toEqual(t.all());
    expect(seen.map((e) => `[${e.dir}]${e.text}`)).toEqual(['[TX]AT+QIOTOTARD=0,5', '[RX]+QIOTOTARD: 0,5', `[RX]<5 bytes sha256=${sha}>`, '[RX]OK']);
    expect(seen[2]!.binary).toEqual({ length: 5, sha256: sha });
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.t).toBeGreaterThanOrEqual(seen[i - 1]!.t);
      // One clock: the epoch stamp is the monotonic one shifted by a constant.
      expect(seen[i]!.at - seen[i]!.t).toBeCloseTo(seen[0]!.at - seen[0]!.t, 3);
    }
    expect(formatEntry(seen[0]!)).toMatch(/^ +\d+\.\d{3} \[TX\]AT\+QIOTOTARD=0,5$/);
    expect(formatTranscript(seen).split('\n').map((l) => l.replace(/^ +\d+\.\d{3} /, ''))).toEqual([
      '[TX]AT+QIOTOTARD=0,5',
      '[RX]+QIOTOTARD: 0,5',
      `[RX]<5 bytes sha256=${sha}>`,
      '[RX]OK',
      '',
    ]);
    expect(t.lastReceived(2)).toEqual([`<5 bytes sha256=${sha}>`, 'OK']);
  });

  it('never holds the secret, even in emitted entries', () => {
    const seen: TranscriptEntry[] = [];
    const t = new Transcript((e) => seen.push(e));
    t.tx('AT+QIOTCFG="productinfo","pk","s3cr3t"');
    t.rx('AT+QIOTCFG="productinfo","pk","s3cr3t"');
    expect(JSON.stringify([seen, t.all()])).not.toContain('s3cr3t');
  });

  it('keeps memory bounded on long runs', () => {
    let emitted = 0;
    const t = new Transcript(() => emitted++, 100);
    for (let i = 0; i < 1000; i++) t.rx(`+QIOTEVT: 7,10702 #${i}`);
    expect(emitted).toBe(1000);
    expect(t.all().length).toBeLessThanOrEqual(125);
    expect(t.all().at(-1)!.text).toBe('+QIOTEVT: 7,10702 #999');
  });
});
