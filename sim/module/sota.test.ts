// Conformance of the virtual module's SOTA behaviour (docs/protocol.md §4, §5), over the real pty
// with plain byte strings. Each test runs its own sim process.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { addPackage, awaitReady, expectOk, powerCycle, register, seededBytes, simsPerTest, type SimHandle } from '../harness.ts';
import { crc32 } from '../cloud/hash.ts';

const sim = simsPerTest(afterEach, []);

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** Reads [start, start+length) in `step`-byte blocks; returns the data and the exact bytes seen. */
async function readPiece(s: SimHandle, start: number, length: number, step = 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = start; off < start + length; off += step) {
    const from = s.mark();
    await s.send(`AT+QIOTOTARD=${off},${step}\r`);
    const n = Math.min(step, start + length - off);
    const { end } = await s.waitFor(`\r\n+QIOTOTARD: ${off},${n}\r\n`, 5000, from);
    await s.waitFor('\r\n\r\nOK\r\n', 5000, end + n);
    expect(s.rx.subarray(end + n, end + n + 8).toString('latin1')).toBe('\r\n\r\nOK\r\n');
    parts.push(Buffer.from(s.rx.subarray(end, end + n)));
  }
  return Buffer.concat(parts);
}

/** Plan for one component, delivered on request; returns the package. */
async function planFor(s: SimHandle, data: Buffer, extra: Record<string, unknown> = {}, version = '2_0_0') {
  const pkg = await addPackage(s, { component: 'STM32', version, data });
  await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }], pushActively: false, ...extra });
  return pkg;
}

/** From a registered module: request, confirm, wait for 10703; returns the offset after 10703. */
async function toDownloadOk(s: SimHandle, size: number): Promise<number> {
  let from = s.mark();
  await expectOk(s, 'AT+QIOTOTAREQ');
  await s.waitFor('+QIOTEVT: 7,10700,', 5000, from);
  from = s.mark();
  await expectOk(s, 'AT+QIOTUPDATE=1');
  return (await s.waitFor(new RegExp(`\\+QIOTEVT: 7,10703,"STM32",${size},0,\\d+\\r\\n`), 10_000, from)).end;
}

describe('§5 SOTA dialogue', () => {
  test('byte for byte, echo on, from RDY to 10705', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05', '--bootstrap-auth', 'off']);
    const data = seededBytes(27954, 5);
    const pkg = await planFor(s, data, { minBattery: 30, minSignal: -113 });
    expect(pkg).toMatchObject({ size: 27954, md5: md5(data), crc32: crc32(data), crc: crc32(data) });
    // The first boot's RDY must be in before the power cycle, so that the RDY awaited below is the new one.
    await awaitReady(s);
    const start = s.mark();
    await powerCycle(s);
    const expected: Buffer[] = [Buffer.from('\r\nRDY\r\n')];
    const step = async (line: string, answer: string, ...urcs: string[]): Promise<void> => {
      const from = s.mark();
      await s.send(`${line}\r`);
      const tail = urcs.length > 0 ? urcs.map((u) => `\r\n${u}\r\n`).join('') : answer;
      await s.waitFor(tail, 5000, from);
      expected.push(Buffer.from(`${line}\r${answer}${urcs.map((u) => `\r\n${u}\r\n`).join('')}`, 'latin1'));
    };
    await step('AT+QIOTCFG="productinfo","p1test","secret1"', '\r\nOK\r\n');
    await step('AT+QIOTREG=1', '\r\nOK\r\n', '+QIOTEVT: 2,10200', '+QIOTEVT: 3,10200');
    await step('AT+QIOTMCUVER="STM32","1_0_0"', '\r\nOK\r\n');
    await step('AT+QIOTOTAREQ=1', '\r\nOK\r\n', '+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954');
    await step(
      'AT+QIOTUPDATE=1',
      '\r\nOK\r\n',
      `+QIOTEVT: 7,10701,"STM32",27954,"${md5(data)}",${crc32(data)},"${pkg.sha256}"`,
      '+QIOTEVT: 7,10703,"STM32",27954,0,27954',
    );
    const got: Buffer[] = [];
    for (let off = 0; off < 27954; off += 1024) {
      const n = Math.min(1024, 27954 - off);
      const from = s.mark();
      await s.send(`AT+QIOTOTARD=${off},1024\r`);
      const { end } = await s.waitFor(`+QIOTOTARD: ${off},${n}\r\n`, 5000, from);
      await s.waitFor('\r\n\r\nOK\r\n', 5000, end + n);
      got.push(Buffer.from(s.rx.subarray(end, end + n)));
      expected.push(Buffer.from(`AT+QIOTOTARD=${off},1024\r\r\n+QIOTOTARD: ${off},${n}\r\n`), data.subarray(off, off + n), Buffer.from('\r\n\r\nOK\r\n'));
    }
    expect(md5(Buffer.concat(got))).toBe(md5(data));
    await step('AT+QIOTUPDATE=3', '\r\nOK\r\n', '+QIOTEVT: 7,10704');
    await step('AT+QIOTMCUVER="STM32","2_0_0"', '\r\nOK\r\n', '+QIOTEVT: 7,10705');
    const seen = s.rx.subarray(s.rx.indexOf('\r\nRDY\r\n', start));
    expect(seen.toString('latin1')).toBe(Buffer.concat(expected).toString('latin1'));
    const devices = await s.api<{ status: Record<string, { name: string }>; plans: Record<string, { phase: string }> }[]>('GET', '/devices');
    expect(devices[0]!.status.STM32!.name).toBe('UPDATESUCCESS');
    expect(Object.values(devices[0]!.plans)[0]!.phase).toBe('succeeded');
  });

  test('bare AT+QIOTOTAREQ (= info 0) gives a 10701 without sha256; bootstrap auth (1,10200) only on the first connection', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    const first = s.mark();
    await register(s);
    expect(s.since(first)).toContain('+QIOTEVT: 1,10200');
    const data = seededBytes(3000, 9);
    const pkg = await planFor(s, data);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTOTAREQ');
    await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,3000\r\n', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor(`\r\n+QIOTEVT: 7,10701,"STM32",3000,"${pkg.md5}",${pkg.crc}\r\n`, 5000, from);
    // Registration again (after a power cycle) does not repeat the bootstrap authentication.
    await powerCycle(s);
    from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    await s.waitFor('+QIOTEVT: 3,10200', 5000, from);
    expect(s.since(from)).not.toContain('1,10200');
  });
});

describe('pieces and MCUVER settlement', () => {
  test('a file larger than the free space arrives in pieces; =2 and =3 obey the piece rules', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05', '--module-free-space', '10000']);
    await register(s);
    const data = seededBytes(27954, 11);
    await planFor(s, data);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTOTAREQ=0');
    await s.waitFor('7,10700,"STM32","","2_0_0",0,0,27954', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",27954,0,10000\r\n', 5000, from);
    expect(s.since(from)).toContain('+QIOTEVT: 7,10701,"STM32",27954,');
    const pieces = [await readPiece(s, 0, 10000)];
    // Outside the piece, and =3 before the last piece: refused.
    expect(await s.command('AT+QIOTOTARD=10000,1024')).toMatch(/\r\nERROR\r\n$/);
    expect(await s.command('AT+QIOTUPDATE=3')).toMatch(/\r\nERROR\r\n$/);
    for (const [start, len] of [
      [10000, 10000],
      [20000, 7954],
    ] as const) {
      from = s.mark();
      await expectOk(s, 'AT+QIOTUPDATE=2');
      await s.waitFor(`\r\n+QIOTEVT: 7,10702\r\n\r\n+QIOTEVT: 7,10703,"STM32",27954,${start},${len}\r\n`, 5000, from);
      expect(s.since(from)).not.toContain('10701');
      pieces.push(await readPiece(s, start, len));
    }
    expect(await s.command('AT+QIOTUPDATE=2')).toMatch(/\r\nERROR\r\n$/);
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('+QIOTEVT: 7,10704', 5000, from);
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_0"');
    await s.waitFor('+QIOTEVT: 7,10705', 5000, from);
  });

  test('MCUVER settles an OTA in flight: the old version fails it, the target succeeds it without =3', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    await register(s, { STM32: '1_0_0', BLE: '7' });
    const data = seededBytes(5000, 2);
    await planFor(s, data);
    await toDownloadOk(s, 5000);
    // Another component's version does not touch the OTA.
    let from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="BLE","8"');
    await readPiece(s, 0, 1024);
    expect(s.since(from)).not.toMatch(/1070[56]/);
    // Re-announcing the old version (a boot-time init) fails the OTA on the spot (§4.3 gotcha).
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","1_0_0"');
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 5000, from);
    expect(await s.command('AT+QIOTOTARD=0,1024')).toMatch(/\r\nERROR\r\n$/);
    // Retry Times 0: the failed plan is not delivered again; a new plan is, and the target settles it.
    await planFor(s, data, {}, '3_0_0');
    await toDownloadOk(s, 5000);
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","3_0_0"');
    await s.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 5000, from);
    const v = await s.command('AT+QIOTMCUVER?');
    expect(v).toContain('+QIOTMCUVER: "STM32","3_0_0"\r\n+QIOTMCUVER: "BLE","8"\r\n\r\nOK\r\n');
  });

  test('MCUVER with a version other than the target in UPDATING → 10706', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    await register(s);
    await planFor(s, seededBytes(900, 3));
    await toDownloadOk(s, 900);
    await readPiece(s, 0, 900);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('+QIOTEVT: 7,10704', 5000, from);
    // =3 again while UPDATING is accepted (§2.6) and re-emits 10704.
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('+QIOTEVT: 7,10704', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_1"');
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 5000, from);
    expect(s.since(from)).not.toContain('10705');
  });

  test('quirks the protocol allows (admin faults): =3 then 10706 without 10704; 10704 late; 10705 late; a disk space other than the size', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.01']);
    await register(s);
    await s.api('POST', '/faults', { kind: 'plan-space', extra: 100 });
    await planFor(s, seededBytes(900, 4));
    let from = s.mark();
    await expectOk(s, 'AT+QIOTOTAREQ');
    await s.waitFor('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,1000\r\n', 5000, from);
    await s.api('POST', '/faults', { kind: 'plan-space', extra: 0 });
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor(/\+QIOTEVT: 7,10703,"STM32",900,0,900\r\n/, 10_000, from);
    await readPiece(s, 0, 900);
    await s.api('POST', '/faults', { kind: 'update-quirk', then: 'fail' });
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    await s.waitFor('\r\n+QIOTEVT: 7,10706\r\n', 5000, from);
    expect(s.since(from)).not.toContain('10704');

    // Again, with 10704 two module-minutes late (1.2 s here) and 10705 one late.
    await planFor(s, seededBytes(900, 5), {}, '2_0_1');
    await toDownloadOk(s, 900);
    await readPiece(s, 0, 900);
    await s.api('POST', '/faults', { kind: 'update-quirk', then: 'delay', ms: 120_000 });
    await s.api('POST', '/faults', { kind: 'result-delay', ms: 60_000 });
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=3');
    const t0 = performance.now();
    await s.waitFor('\r\n+QIOTEVT: 7,10704\r\n', 10_000, from);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1000);
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_1"');
    const t1 = performance.now();
    await s.waitFor('\r\n+QIOTEVT: 7,10705\r\n', 10_000, from);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(500);
  });

  test('multi-component plan: one 10700 each, 10707 on confirm, components in plan order', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    await register(s, { STM32: '1_0_0', AUX: 'a1' });
    const a = await addPackage(s, { component: 'STM32', version: '2_0_0', data: seededBytes(1500, 1) });
    const b = await addPackage(s, { component: 'AUX', version: 'a2', data: seededBytes(700, 2) });
    await s.api('POST', '/plans', {
      components: [
        { component: 'AUX', packageId: b.id },
        { component: 'STM32', packageId: a.id },
      ],
      pushActively: false,
    });
    let from = s.mark();
    await expectOk(s, 'AT+QIOTOTAREQ');
    await s.waitFor('\r\n+QIOTEVT: 7,10700,"AUX","","a2",0,0,700\r\n\r\n+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,1500\r\n', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor('\r\n+QIOTEVT: 7,10707,0\r\n', 5000, from);
    await s.waitFor('+QIOTEVT: 7,10703,"AUX",700,0,700\r\n', 5000, from);
    expect(s.since(from)).toContain(`+QIOTEVT: 7,10701,"AUX",700,"${b.md5}"`);
    await readPiece(s, 0, 700);
    await expectOk(s, 'AT+QIOTUPDATE=3');
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="AUX","a2"');
    await s.waitFor('+QIOTEVT: 7,10705', 5000, from);
    // The next component starts with 10701 again: the start flag was reset by 10705.
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",1500,0,1500\r\n', 5000, from);
    expect(s.since(from)).toContain(`+QIOTEVT: 7,10701,"STM32",1500,"${a.md5}"`);
    await readPiece(s, 0, 1500);
    await expectOk(s, 'AT+QIOTUPDATE=3');
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_0"');
    await s.waitFor('+QIOTEVT: 7,10705', 5000, from);
  });
});

describe('paced UART', () => {
  test('at 115200 baud the dialogue and the binary reads arrive intact', async () => {
    const s = await sim(['--baud', '115200', '--time-scale', '0.05']);
    expect(s.info.module.baud).toBe(115200);
    await register(s);
    expect(await s.command('AT+IPR?')).toContain('+IPR: 115200\r\n');
    const data = seededBytes(6000, 77);
    await planFor(s, data);
    await toDownloadOk(s, 6000);
    expect((await readPiece(s, 0, 6000, 1024)).equals(data)).toBe(true);
  });
});

describe('uncertain readings are options', () => {
  test('CME wrong-state answer, short trailer, 512-byte reads with oversize ERROR, MPEG-2 CRC, +QIND before 10705', async () => {
    const s = await sim([
      '--baud', '0', '--time-scale', '0.05',
      '--wrong-state-answer', '+CME ERROR: 3', '--read-trailer', '\\r\\nOK\\r\\n', '--max-read-length', '512',
      '--oversize-read', 'error', '--crc', 'crc32-mpeg2', '--qind-fota-end', 'before',
    ]);
    await register(s);
    expect(await s.command('AT+QIOTUPDATE=3')).toBe('AT+QIOTUPDATE=3\r\r\n+CME ERROR: 3\r\n');
    expect(await s.command('AT+QIOTOTARD=?')).toContain('+QIOTOTARD: <start>,(1-512)\r\n');
    const data = seededBytes(700, 21);
    const pkg = await planFor(s, data);
    expect(pkg.crc).not.toBe(pkg.crc32);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTOTAREQ');
    await s.waitFor('10700', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor(`+QIOTEVT: 7,10701,"STM32",700,"${pkg.md5}",${pkg.crc}\r\n`, 5000, from);
    await s.waitFor('+QIOTEVT: 7,10703,"STM32",700,0,700\r\n', 5000, from);
    expect(await s.command('AT+QIOTOTARD=0,1024')).toMatch(/\r\nERROR\r\n$/);
    from = s.mark();
    await s.send('AT+QIOTOTARD=512,512\r');
    const { end } = await s.waitFor('+QIOTOTARD: 512,188\r\n', 5000, from);
    await s.waitFor('\r\nOK\r\n', 5000, end + 188);
    expect(s.rx.subarray(end, end + 188).equals(data.subarray(512))).toBe(true);
    expect(s.rx.subarray(end + 188).toString('latin1')).toBe('\r\nOK\r\n');
    await expectOk(s, 'AT+QIOTUPDATE=3');
    from = s.mark();
    await expectOk(s, 'AT+QIOTMCUVER="STM32","2_0_0"');
    await s.waitFor('\r\n+QIND: "FOTA","END",0\r\n\r\n+QIOTEVT: 7,10705\r\n', 5000, from);
  });
});

describe('sticky and port settings', () => {
  test('AT+QIOTOTAREQ=1 is sticky: after a power cycle a pushed plan still gets the sha256 in 10701', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    await register(s);
    await expectOk(s, 'AT+QIOTOTAREQ=1');
    await powerCycle(s);
    let from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    await s.waitFor('+QIOTEVT: 3,10200', 5000, from);
    const data = seededBytes(400, 8);
    const pkg = await addPackage(s, { component: 'STM32', version: '2_0_0', data });
    from = s.mark();
    await s.api('POST', '/plans', { components: [{ component: 'STM32', packageId: pkg.id }] });
    await s.waitFor('+QIOTEVT: 7,10700,', 5000, from);
    from = s.mark();
    await expectOk(s, 'AT+QIOTUPDATE=1');
    await s.waitFor(`+QIOTEVT: 7,10701,"STM32",400,"${pkg.md5}",${pkg.crc},"${pkg.sha256}"\r\n`, 5000, from);
  });

  test('urcport "uart1" (honoured by default): no +QIOTEVT on the USB AT port; bytes dropped from the rig are lost before the parser', async () => {
    const s = await sim(['--baud', '0', '--time-scale', '0.05']);
    await awaitReady(s);
    await expectOk(s, 'AT+QURCCFG="urcport","uart1"');
    await expectOk(s, 'AT+QIOTCFG="productinfo","p1test","secret1"');
    let from = s.mark();
    await expectOk(s, 'AT+QIOTREG=1');
    // Connected without a URC on this port: QIOTSTATE is the only witness.
    await s.api('GET', '/module/wait?qiotState=8&timeoutMs=5000');
    expect(await s.command('AT+QIOTSTATE?')).toContain('+QIOTSTATE: 8\r\n');
    expect(s.since(from)).not.toContain('+QIOTEVT');
    await expectOk(s, 'AT+QURCCFG="urcport","all"');
    from = s.mark();
    await expectOk(s, 'AT+QIOTREG=0');
    await s.waitFor('+QIOTEVT: 6,10200\r\n', 5000, from);
    await expectOk(s, 'ATE0');
    await s.api('POST', '/faults', { kind: 'drop-uart-bytes', count: 1, direction: 'from-rig', skip: 2 });
    // "ATXI\r" loses its third byte and arrives as "ATI\r".
    from = s.mark();
    await s.send('ATXI\r');
    await s.waitFor('\r\nOK\r\n', 5000, from);
    expect(s.since(from)).toContain('\r\nQuectel\r\n');
  });
});
