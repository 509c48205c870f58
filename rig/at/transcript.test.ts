import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BoundedLog, Secrets, Transcript, entryBytes, formatEntry, formatTranscript, maskSecrets } from './transcript.ts';
import type { TranscriptEntry } from './transcript.ts';

describe('maskSecrets', () => {
  it('masks the ProductSecret in the set command, its echo and the query answer, keeping the product key', () => {
    expect(maskSecrets('AT+QIOTCFG="productinfo","p11xyz","Zk9UdDBTQmRSbHhC"')).toBe('AT+QIOTCFG="productinfo","p11xyz","********"');
    expect(maskSecrets('+QIOTCFG: "productinfo","p11xyz","Zk9UdDBTQmRSbHhC","1.0"')).toBe('+QIOTCFG: "productinfo","p11xyz","********","1.0"');
    expect(maskSecrets('AT+QIOTCFG="productinfo","p11xyz",Zk9U')).toBe('AT+QIOTCFG="productinfo","p11xyz","********"');
  });

  it('masks the DeviceSecret in the dk_ds set command, its echo and the query answer, keeping the device key', () => {
    expect(maskSecrets('AT+QIOTCFG="dk_ds","dk1","DEVSECRET"')).toBe('AT+QIOTCFG="dk_ds","dk1","********"');
    expect(maskSecrets('+QIOTCFG: "dk_ds","dk1","DEVSECRET"')).toBe('+QIOTCFG: "dk_ds","dk1","********"');
  });

  it('leaves every other line alone', () => {
    for (const l of [
      'AT+QIOTCFG="server",1,"mqtt://iot-south.acceleronix.io:1883"',
      'AT+QIOTCFG="productinfo"',
      'AT+QIOTCFG="dk_ds"',
      'AT+QIOTCFG="dk_ds","dk1"',
      '+QIOTCFG: "dk_ds",<dk>,<ds>',
      '+QIOTEVT: 7,10702',
    ]) {
      expect(maskSecrets(l)).toBe(l);
    }
  });
});

describe('Secrets', () => {
  it('masks a registered value wherever it appears, whatever the line around it looks like', () => {
    const secrets = new Secrets(['Zk9UdDBT', '']);
    // A quote lost from the echo: the pattern no longer recognises the line, the value still is masked.
    expect(maskSecrets('AT+QIOTCFG="productinfo,"p11xyz","Zk9UdDBT"')).toContain('Zk9UdDBT');
    expect(secrets.mask('AT+QIOTCFG="productinfo,"p11xyz","Zk9UdDBT"')).toBe('AT+QIOTCFG="productinfo,"p11xyz","********"');
    expect(secrets.mask('noise Zk9UdDBTZk9UdDBT')).toBe('noise ****************');
    expect(secrets.mask('+QIOTEVT: 7,10702')).toBe('+QIOTEVT: 7,10702');
  });

  it('learns the secret of a well-formed command, so a garbled echo or answer of it is masked too', () => {
    const secrets = new Secrets();
    secrets.learn('AT+QIOTCFG="dk_ds","dk1","DEVSECRET"');
    secrets.learn('AT+QIOTCFG="productinfo","pk",Unquoted9');
    expect(secrets.mask('AT+QIOTCFG="dk_ds,"dk1","DEVSECRET"')).toBe('AT+QIOTCFG="dk_ds,"dk1","********"');
    expect(secrets.mask('+QIOTCFG: "dk_ds","dk1,"DEVSECRET"')).not.toContain('DEVSECRET');
    expect(secrets.mask('xUnquoted9')).toBe('x********');
  });

  it('masks a secret that contains another one whole', () => {
    const secrets = new Secrets(['abc', 'abcdefgh']);
    expect(secrets.mask('<abcdefgh>')).toBe('<********>');
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

  it('never holds a registered secret, even in garbled lines and notes, in entries, events or the export', () => {
    const seen: TranscriptEntry[] = [];
    const t = new Transcript((e) => seen.push(e), 100, new Secrets(['s3cr3tPS']));
    t.secrets.add('DEVSECRET');
    t.tx('AT+QIOTCFG="productinfo","pk","s3cr3tPS"');
    t.rx('AT+QIOTCFG="productinfo,"pk","s3cr3tPS"');
    t.tx('AT+QIOTCFG="dk_ds","dk1","DEVSECRET"');
    t.rx('AT+QIOTCFG="dk_ds","dk1,"DEVSECRET"');
    t.rx('+QIOTCFG: "dk_ds,"dk1","DEVSECRET"');
    t.note('a note quoting s3cr3tPS');
    expect(seen.map((e) => e.text)).toEqual([
      'AT+QIOTCFG="productinfo","pk","********"',
      'AT+QIOTCFG="productinfo,"pk","********"',
      'AT+QIOTCFG="dk_ds","dk1","********"',
      'AT+QIOTCFG="dk_ds","dk1,"********"',
      '+QIOTCFG: "dk_ds,"dk1","********"',
      'a note quoting ********',
    ]);
    expect(JSON.stringify([seen, t.all(), formatTranscript(t.all()), t.lastReceived()])).not.toMatch(/s3cr3tPS|DEVSECRET/);
  });

  it('keeps memory bounded by bytes: kilobyte lines of garbage cost a fixed budget, and it says what it dropped', () => {
    let emitted = 0;
    const budget = 64 * 1024;
    const t = new Transcript(() => emitted++, 10_000, new Secrets(), budget);
    const garbage = '\ufffd'.repeat(4096);
    t.tx('AT+QIOTOTAREQ=1');
    for (let i = 0; i < 1000; i++) t.rx(`${garbage}${i}`);
    expect(emitted).toBe(1001);
    const held = t.all();
    expect(held.reduce((n, e) => n + entryBytes(e), 0)).toBeLessThanOrEqual(budget);
    expect(held.at(-1)!.text.endsWith('999')).toBe(true);
    expect(t.dropped).toMatchObject({ entries: 1001 - held.length });
    expect(t.dropped!.from).toBeLessThanOrEqual(t.dropped!.to);
    expect(held[0]!.t).toBeGreaterThanOrEqual(t.dropped!.to);
    expect(t.dropped!.bytes).toBeGreaterThan(1000 * 8192 - budget);
    const text = formatTranscript(held, t.dropped);
    expect(text.split('\n')[0]).toMatch(new RegExp(`^\\[--\\]… ${1001 - held.length} earlier entries \\(about \\d+ KiB, [\\d.]+–[\\d.]+ s\\) dropped`));
    // An error quotes a garbage line cut short, not its four kilobytes.
    expect(t.lastReceived(1)[0]!.length).toBeLessThanOrEqual(201);
  });

  it('a bounded log with room drops nothing and says so', () => {
    const log = new BoundedLog<{ t: number; text: string }>(1024);
    log.push({ t: 1, text: 'OK' });
    expect(log.dropped).toBeUndefined();
    expect(log.all()).toEqual([{ t: 1, text: 'OK' }]);
    expect(formatTranscript([])).toBe('');
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
