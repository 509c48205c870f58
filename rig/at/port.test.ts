import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, InfrastructureError, ProtocolError } from '../errors.ts';
import { AtCommandError, AtPortError, AtResponseError, AtTimeoutError } from './errors.ts';
import { AtPort } from './port.ts';
import { entryBytes, formatTranscript } from './transcript.ts';
import type { Answered, AtPortOptions, FramingIssue, Urc } from './port.ts';
import { createMockModule } from './testing/mock.ts';
import type { Script } from './testing/peer.ts';
import { answer } from './testing/peer.ts';

const ports: AtPort[] = [];
afterEach(async () => {
  for (const p of ports.splice(0)) await p.close();
  SerialPortMock.binding.reset();
});

async function setup(script: Script, opts: Partial<AtPortOptions> & { seed?: number } = {}) {
  const { serial, peer } = createMockModule({ script, seed: opts.seed });
  const port = new AtPort({ station: 'bench-2', serial, commandTimeoutMs: 500, ...opts });
  ports.push(port);
  await port.open();
  const urcs: Urc[] = [];
  port.on('urc', (u) => urcs.push(u));
  return { port, peer, urcs };
}

/** A module that echoes (or not) and answers a few commands the way a Quectel module does. */
function module(echo: boolean, extra: Script = () => {}): Script {
  return (cmd, peer) => {
    if (echo) void peer.send(`${cmd}\r`);
    if (cmd === 'AT' || cmd === 'AT+QIOTREG=1') void peer.send(answer('OK'));
    else if (cmd === 'AT+CSQ') void peer.send(answer('+CSQ: 24,99', 'OK'));
    else if (cmd === 'AT+QIOTMCUVER?') void peer.send(answer('+QIOTMCUVER: "MCU1","1.0.0"', '+QIOTMCUVER: "MCU2","2_0_0"', 'OK'));
    else if (cmd === 'ATI') void peer.send(answer('Quectel', 'EC200U', 'Revision: EC200UCNAAR02A11M08', 'OK'));
    else if (cmd === 'AT+QIOTUPDATE=2') void peer.send(answer('ERROR'));
    else if (cmd === 'AT+CPIN?') void peer.send(answer('+CME ERROR: 10'));
    else extra(cmd, peer);
  };
}

describe('AtPort over binding-mock, reads fragmented into 1..7 bytes', () => {
  for (const echo of [false, true]) {
    it(`collects information lines by prefix and drops the echo (echo ${echo ? 'on' : 'off'})`, async () => {
      const { port, peer } = await setup(module(echo), { seed: echo ? 11 : 12 });
      await expect(port.command('AT')).resolves.toEqual({ command: 'AT', lines: [] });
      await expect(port.command('AT+QIOTMCUVER?', { prefix: '+QIOTMCUVER:' })).resolves.toEqual({
        command: 'AT+QIOTMCUVER?',
        lines: ['+QIOTMCUVER: "MCU1","1.0.0"', '+QIOTMCUVER: "MCU2","2_0_0"'],
      });
      await expect(port.command('ATI', { prefix: 'all' })).resolves.toMatchObject({ lines: ['Quectel', 'EC200U', 'Revision: EC200UCNAAR02A11M08'] });
      expect(peer.received).toEqual(['AT', 'AT+QIOTMCUVER?', 'ATI']);
    });
  }

  it('sends one command at a time, in order, each ended by CR', async () => {
    const { port, peer } = await setup(module(true));
    const all = await Promise.all([port.command('AT'), port.command('AT+CSQ', { prefix: '+CSQ:' }), port.command('AT+QIOTREG=1')]);
    expect(all.map((r) => r.lines)).toEqual([[], ['+CSQ: 24,99'], []]);
    expect(peer.received).toEqual(['AT', 'AT+CSQ', 'AT+QIOTREG=1']);
  });

  it('sends a follow-on command in the same turn as the answer before it ends, and withdraws it unsent when its condition says no', async () => {
    const { port, peer } = await setup(module(true));
    const asked: (string | undefined)[] = [];
    let okTurn = false;
    const sentInOkTurn: string[] = [];
    port.on('transcript', (e) => {
      if (e.dir === 'RX' && e.text === 'OK') {
        okTurn = true;
        queueMicrotask(() => (okTurn = false));
      }
      if (e.dir === 'TX' && okTurn) sentInOkTurn.push(e.text);
    });
    const first = port.command('AT+CSQ', { prefix: '+CSQ:' });
    const second = port.commandAfter('AT+QIOTREG=1', (a) => (asked.push(a?.response?.lines[0]), true));
    // Turned down: never written, resolved undefined, and the queue goes on with the next command.
    const third = port.commandAfter('AT+QIOTREG=0', (a) => (asked.push(a?.command), false));
    const fourth = port.command('AT');
    await expect(first).resolves.toMatchObject({ lines: ['+CSQ: 24,99'] });
    await expect(second).resolves.toEqual({ command: 'AT+QIOTREG=1', lines: [] });
    await expect(third).resolves.toBeUndefined();
    await expect(fourth).resolves.toEqual({ command: 'AT', lines: [] });
    expect(asked).toEqual(['+CSQ: 24,99', 'AT+QIOTREG=1']);
    expect(peer.received).toEqual(['AT+CSQ', 'AT+QIOTREG=1', 'AT']);
    // No turn of the event loop (not even a microtask) between an OK and the queued command leaving: what
    // commandAfter buys is being queued before that OK without committing to be sent.
    expect(sentInOkTurn).toEqual(['AT+QIOTREG=1', 'AT']);
  });

  it('a follow-on command decides on the command the port last sent: one aborted while still queued was never sent and does not count', async () => {
    const { port, peer } = await setup(module(true));
    const stop = new AbortController();
    const first = port.command('AT+CSQ', { prefix: '+CSQ:' });
    const dropped = port.command('AT+QIOTREG=1', { signal: stop.signal });
    const follows = port.commandAfter('AT', (a) => a?.command === 'AT+CSQ');
    stop.abort(new Error('not wanted'));
    await expect(dropped).rejects.toBeInstanceOf(AbortedError);
    await first;
    await expect(follows).resolves.toEqual({ command: 'AT', lines: [] });
    expect(peer.received).toEqual(['AT+CSQ', 'AT']);
  });

  it('a follow-on command learns how the command before it failed, and a condition that throws rejects it unsent', async () => {
    const { port, peer } = await setup(module(false));
    let seen: Answered | undefined;
    const failed = port.command('AT+CPIN?');
    const after = port.commandAfter('AT', (a) => ((seen = a), a?.error === undefined));
    const broken = port.commandAfter('AT+CSQ', () => {
      throw new Error('condition broke');
    });
    // A command never sent (the one whose condition broke) is not "the command before".
    const fourth = port.commandAfter('ATI', (a) => a?.command === 'AT+CPIN?', { prefix: 'all' });
    await expect(failed).rejects.toBeInstanceOf(AtCommandError);
    await expect(after).resolves.toBeUndefined();
    await expect(broken).rejects.toThrow('condition broke');
    await expect(fourth).resolves.toMatchObject({ command: 'ATI' });
    expect(seen).toMatchObject({ command: 'AT+CPIN?', error: expect.any(AtCommandError) });
    expect(seen!.response).toBeUndefined();
    expect(peer.received).toEqual(['AT+CPIN?', 'ATI']);
    // The port goes on.
    await expect(port.command('AT')).resolves.toEqual({ command: 'AT', lines: [] });
  });

  it('delivers URCs that arrive in the middle of an answer, and keeps them out of it', async () => {
    const { port, urcs } = await setup((cmd, peer) => {
      if (cmd === 'AT+QIOTMCUVER?')
        void peer.send(`${cmd}\r${answer('+QIOTMCUVER: "A","1"', '+QIOTEVT: 7,10702', '+QIOTMCUVER: "B","2"', '+QIND: "FOTA","END",0', 'OK')}`);
    });
    const r = await port.command('AT+QIOTMCUVER?', { prefix: '+QIOTMCUVER:' });
    expect(r.lines).toEqual(['+QIOTMCUVER: "A","1"', '+QIOTMCUVER: "B","2"']);
    expect(urcs).toEqual([{ line: '+QIOTEVT: 7,10702' }, { line: '+QIND: "FOTA","END",0' }]);
  });

  it('reads a counted binary block containing \\r\\nOK\\r\\n and NUL, with URCs around it', async () => {
    const data = Buffer.concat([Buffer.from('\r\nOK\r\n'), Buffer.alloc(10), Buffer.from('\r\nERROR\r\n+QIOTEVT: 7,10706\r\n'), Buffer.alloc(900, 0xa5)]);
    for (const echo of [false, true]) {
      const { port, urcs } = await setup((cmd, peer) => {
        if (cmd !== 'AT+QIOTOTARD=0,1024') return;
        if (echo) void peer.send(`${cmd}\r`);
        void peer.send(answer('+QIOTEVT: 7,10702'));
        void peer.send(`\r\n+QIOTOTARD: 0,${data.length}\r\n`);
        void peer.send(data);
        void peer.send('\r\n\r\nOK\r\n');
      });
      const r = await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true });
      expect(r.block).toEqual({ header: `+QIOTOTARD: 0,${data.length}`, data });
      expect(urcs).toEqual([{ line: '+QIOTEVT: 7,10702' }]);
      const t = port.transcript().map((e) => `[${e.dir}]${e.text}`);
      expect(t).toContain(`[RX]+QIOTOTARD: 0,${data.length}`);
      expect(t.some((l) => l.startsWith(`[RX]<${data.length} bytes sha256=`))).toBe(true);
    }
  });

  it('hands the payload of +QIOTEVT: 5,10200,<len> to URC subscribers', async () => {
    const { port, peer } = await setup(() => {});
    const got = new Promise<Urc>((resolve) => port.on('urc', resolve));
    await peer.send(answer('+QIOTEVT: 5,10200,8').replace(/\r\n$/, '\r\nOK\r\n\0\0\r\n'));
    expect(await got).toEqual({ line: '+QIOTEVT: 5,10200,8', data: Buffer.from('OK\r\n\0\0\r\n') });
  });

  it('rejects ERROR and +CME ERROR with the command, the result and the station', async () => {
    const { port } = await setup(module(false));
    const e1 = await port.command('AT+QIOTUPDATE=2').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(AtCommandError);
    expect(e1).toBeInstanceOf(ProtocolError);
    expect((e1 as AtCommandError).final).toEqual({ result: 'ERROR' });
    expect((e1 as Error).message).toMatch(/^bench-2: AT\+QIOTUPDATE=2 answered ERROR/);
    const e2 = (await port.command('AT+CPIN?', { prefix: '+CPIN:' }).catch((e: unknown) => e)) as AtCommandError;
    expect(e2.final).toEqual({ result: '+CME ERROR', code: 10, text: '10' });
    await expect(port.command('AT')).resolves.toMatchObject({ lines: [] });
  });

  it('fails a binary command answered OK without data', async () => {
    const { port } = await setup((cmd, peer) => void peer.send(answer('OK')));
    await expect(port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true })).rejects.toBeInstanceOf(AtResponseError);
  });

  it('times out with the expected answer and the last lines, then resynchronises so the late answer never reaches the next command', async () => {
    let late: (() => void) | undefined;
    const { port, peer } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTMCUVER?') late = () => void p.send(`${cmd}\r${answer('+QIOTMCUVER: "STALE","0"', 'OK')}`);
      else if (cmd === 'AT+CSQ') {
        late?.(); // the stale answer arrives just before the probe's own
        void p.send(answer('+CSQ: 24,99', 'OK'));
      } else if (cmd === 'AT+QIOTMCUVER="STM32"') void p.send(answer('+QIOTMCUVER: "STM32","1_0_0"', 'OK'));
    });
    await peer.send(answer('+QIOTEVT: 7,10702'));
    const err = (await port.command('AT+QIOTMCUVER?', { prefix: '+QIOTMCUVER:', timeoutMs: 100 }).catch((e: unknown) => e)) as AtTimeoutError;
    expect(err).toBeInstanceOf(AtTimeoutError);
    expect(err.message).toContain('bench-2: no answer to AT+QIOTMCUVER? within 100 ms');
    expect(err.message).toContain('expected +QIOTMCUVER: … then OK');
    expect(err.lastLines).toEqual(['+QIOTEVT: 7,10702']);
    const unsolicited: string[] = [];
    port.on('unsolicited', (l) => unsolicited.push(l));
    const r = await port.command('AT+QIOTMCUVER="STM32"', { prefix: '+QIOTMCUVER:' });
    expect(r.lines).toEqual(['+QIOTMCUVER: "STM32","1_0_0"']);
    expect(peer.received).toEqual(['AT+QIOTMCUVER?', 'AT+CSQ', 'AT+QIOTMCUVER="STM32"']);
    expect(unsolicited).toContain('+QIOTMCUVER: "STALE","0"');
  });

  it('skips the late rest of a block cut short by a timeout (a RDY or OK inside means nothing) and reports it; the next command gets its own answer', async () => {
    const rest = Buffer.concat([Buffer.alloc(300, 0x41), Buffer.from('\r\nOK\r\n+CSQ\r\n\r\nRDY\r\n'), Buffer.alloc(200, 0x42), Buffer.from('\r\n\r\nOK\r\n')]);
    let lateRest: (() => void) | undefined;
    const { port, peer } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,1024') {
        void p.send(`\r\n+QIOTOTARD: 0,${512 + rest.length - 8}\r\n${'x'.repeat(512)}`);
        lateRest = () => void p.send(rest);
      } else if (cmd === 'AT+CSQ') {
        lateRest?.();
        void p.send(answer('+CSQ: 20,99', 'OK'));
      } else if (cmd === 'AT+QIOTSTATE?') void p.send(answer('+QIOTSTATE: 8', 'OK'));
    });
    const issues: FramingIssue[] = [];
    port.on('framing', (i) => issues.push(i));
    let reboots = 0;
    port.on('reboot', () => reboots++);
    const e = await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true, timeoutMs: 80 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(AtTimeoutError);
    expect((e as Error).message).toContain('expected +QIOTOTARD: <n> then <n> bytes then OK; seen only a binary header and part of its data');
    await expect(port.command('AT+QIOTSTATE?', { prefix: '+QIOTSTATE:' })).resolves.toMatchObject({ lines: ['+QIOTSTATE: 8'] });
    expect(peer.received).toEqual(['AT+QIOTOTARD=0,1024', 'AT+CSQ', 'AT+QIOTSTATE?']);
    const header = `+QIOTOTARD: 0,${512 + rest.length - 8}`;
    expect(issues).toEqual([{ kind: 'discarded', header, reason: 'late', length: rest.length - 8, announced: rest.length - 8, ended: 'complete' }]);
    expect(reboots).toBe(0);
    expect(formatTranscript(port.transcript())).toContain(`${rest.length - 8} late byte(s) of the block announced by ${header} discarded`);
  });

  it("late data of a timed-out read never completes a later read, even from a module that answers the probe first and splices the old block's rest into the next answer", async () => {
    // What a module written independently of sim/ did (issue 16): the rest of block 0 came after the
    // header of the read at 1024. Each read must fail or return exactly its own bytes, never others.
    const A = Buffer.alloc(1024, 0x41);
    const B = Buffer.alloc(1024, 0x42);
    const trailer = '\r\n\r\nOK\r\n';
    let answered1024 = 0;
    const { port } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,1024') void p.send(Buffer.concat([Buffer.from('\r\n+QIOTOTARD: 0,1024\r\n'), A.subarray(0, 500)]));
      else if (cmd === 'AT+CSQ') void p.send(answer('+CSQ: 20,99', 'OK'));
      else if (cmd === 'AT+QIOTOTARD=1024,1024') {
        const spliced = answered1024++ === 0 ? [A.subarray(500), Buffer.from(trailer)] : [];
        void p.send(Buffer.concat([Buffer.from('\r\n+QIOTOTARD: 1024,1024\r\n'), ...spliced, B, Buffer.from(trailer)]));
      }
    });
    const issues: FramingIssue[] = [];
    port.on('framing', (i) => issues.push(i));
    const read = (start: number) => port.command(`AT+QIOTOTARD=${start},1024`, { prefix: '+QIOTOTARD:', binary: true, timeoutMs: 150 });
    await expect(read(0)).rejects.toBeInstanceOf(AtTimeoutError);
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 5 && !outcomes.includes('B'); attempt++) {
      const r = await read(1024).catch((err: Error) => err);
      if (r instanceof Error) outcomes.push(r.name);
      else outcomes.push(r.block?.data.equals(B) ? 'B' : `wrong data: ${r.block?.data.subarray(0, 8).toString('latin1')}…`);
    }
    expect(outcomes.filter((o) => o.startsWith('wrong'))).toEqual([]);
    expect(outcomes.at(-1)).toBe('B');
    expect(answered1024).toBeGreaterThanOrEqual(2);
    expect(issues.map((i) => i.kind)).toContain('discarded');
  });

  it('fails a read whose answer carries two blocks (another answer came in between): neither is returned', async () => {
    const { port } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,4') void p.send('\r\n+QIOTOTARD: 0,4\r\nAAAA\r\n\r\n+QIOTOTARD: 0,4\r\nBBBB\r\n\r\nOK\r\n');
    });
    const e = (await port.command('AT+QIOTOTARD=0,4', { prefix: '+QIOTOTARD:', binary: true }).catch((err: unknown) => err)) as AtResponseError;
    expect(e).toBeInstanceOf(AtResponseError);
    expect(e.message).toContain('one block');
  });

  it('fails a read whose header announces more than the binary limit at once, skipping the announced bytes (a RDY inside is no reboot); the port goes on', async () => {
    const data = Buffer.concat([Buffer.from('\r\nRDY\r\n\r\nOK\r\n'), Buffer.alloc(5000 - 14, 0x79)]);
    const { port } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,1024') void p.send(Buffer.concat([Buffer.from('\r\n+QIOTOTARD: 0,5000\r\n'), data, Buffer.from('\r\n\r\nOK\r\n')]));
      if (cmd === 'AT') void p.send(answer('OK'));
    }, { maxBinaryLength: 4096 });
    const issues: FramingIssue[] = [];
    port.on('framing', (i) => issues.push(i));
    let reboots = 0;
    port.on('reboot', () => reboots++);
    const e = (await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true, timeoutMs: 5000 }).catch((err: unknown) => err)) as AtResponseError;
    expect(e).toBeInstanceOf(AtResponseError);
    expect(e.message).toContain('seen +QIOTOTARD: 0,5000');
    expect(issues).toEqual([
      { kind: 'oversize-block', header: '+QIOTOTARD: 0,5000', length: 5000, limit: 4096 },
      { kind: 'discarded', header: '+QIOTOTARD: 0,5000', reason: 'oversize', length: 5000, announced: 5000, ended: 'complete' },
    ]);
    expect(reboots).toBe(0);
    await expect(port.command('AT')).resolves.toBeTruthy();
  });

  it('a header that lies about its length (more than the limit, few bytes): the read fails, and the port recovers once a probe goes unanswered', async () => {
    const { port } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,1024') void p.send(`\r\n+QIOTOTARD: 0,999999\r\n${'y'.repeat(100)}\r\n\r\nOK\r\n`);
      if (cmd === 'AT+CSQ') void p.send(answer('+CSQ: 20,99', 'OK'));
      if (cmd === 'AT') void p.send(answer('OK'));
    }, { maxBinaryLength: 4096, commandTimeoutMs: 150 });
    const e = (await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true }).catch((err: unknown) => err)) as AtResponseError;
    expect(e).toBeInstanceOf(AtResponseError);
    expect(e.message).toContain('seen +QIOTOTARD: 0,999999');
    // The first probe's answer is skipped with the bytes the header announced; the second is read.
    const first = await port.command('AT').catch((err: unknown) => err);
    expect(first).toBeInstanceOf(AtTimeoutError);
    await expect(port.command('AT')).resolves.toBeTruthy();
  });

  it('a module that restarts in the middle of a block: its RDY ends the skipped rest, and the reboot is reported', async () => {
    const { port } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTOTARD=0,1024') void p.send(`\r\n+QIOTOTARD: 0,1024\r\n${'z'.repeat(300)}`);
      // Powered off mid-block: the probe finds it booting.
      if (cmd === 'AT+CSQ') void p.send(answer('RDY', '+QIND: PB DONE'));
      if (cmd === 'AT') void p.send(answer('OK'));
    });
    const issues: FramingIssue[] = [];
    port.on('framing', (i) => issues.push(i));
    const rebooted = new Promise<void>((resolve) => port.on('reboot', () => resolve()));
    await expect(port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true, timeoutMs: 80 })).rejects.toBeInstanceOf(AtTimeoutError);
    await rebooted;
    expect(issues).toEqual([{ kind: 'discarded', header: '+QIOTOTARD: 0,1024', reason: 'late', length: 2, announced: 724, ended: 'banner' }]);
    await expect(port.command('AT')).resolves.toBeTruthy();
  });

  it('a module that restarts in the middle of a block and prints its RDY where data was counted: at the timeout the read fails as a reboot, reported, without a probe', async () => {
    const { port, peer } = await setup((cmd, p) => {
      // Cut after 300 bytes; back after the boot with its banner and a URC, all inside the 1024 counted.
      if (cmd === 'AT+QIOTOTARD=0,1024') void p.send(`\r\n+QIOTOTARD: 0,1024\r\n${'z'.repeat(300)}\r\nRDY\r\n\r\n+QIND: PB DONE\r\n`);
      if (cmd === 'AT') void p.send(answer('OK'));
    });
    const urcs: string[] = [];
    port.on('urc', (u) => urcs.push(u.line));
    const rebooted = new Promise<void>((resolve) => port.on('reboot', () => resolve()));
    const read = port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true, timeoutMs: 80 });
    await expect(read).rejects.toThrow(/RDY: the module rebooted before answering/);
    await rebooted;
    // The lines after the banner are lines again.
    expect(urcs).toContain('+QIND: PB DONE');
    expect(port.transcript().map((e) => e.text)).toContainEqual(expect.stringMatching(/restarted while sending the block announced by \+QIOTOTARD: 0,1024: 301 byte\(s\) of it came, then its boot banner/));
    await expect(port.command('AT')).resolves.toEqual({ command: 'AT', lines: [] });
    // No resynchronisation probe: the reboot ended the old command.
    expect(peer.received).toEqual(['AT+QIOTOTARD=0,1024', 'AT']);
  });

  it('gets the same answers under many fragmentations (seeds 1..20), echo on and off', async () => {
    const block = Buffer.concat([Buffer.from('\r\nOK\r\n\0'), Buffer.alloc(64, 0x0d)]);
    for (let seed = 1; seed <= 20; seed++) {
      const echo = seed % 2 === 0;
      const { port, urcs } = await setup(
        module(echo, (cmd, p) => {
          if (cmd === 'AT+QIOTOTARD=64,128') void p.send(`${answer('+QIOTEVT: 7,10702')}\r\n+QIOTOTARD: 64,${block.length}\r\n${block.toString('latin1')}\r\n\r\nOK\r\n`);
        }),
        { seed },
      );
      const r = await port.command('AT+QIOTOTARD=64,128', { prefix: '+QIOTOTARD:', binary: true });
      expect(r.block?.data).toEqual(block);
      await expect(port.command('AT+QIOTMCUVER?', { prefix: '+QIOTMCUVER:' })).resolves.toMatchObject({ lines: { length: 2 } });
      expect(urcs).toEqual([{ line: '+QIOTEVT: 7,10702' }]);
      await port.close();
    }
  });

  it('fails queued commands with a clear error when the module stops answering, and recovers later', async () => {
    let alive = false;
    const { port } = await setup((cmd, p) => {
      if (alive) void p.send(cmd === 'AT+CSQ' ? answer('+CSQ: 9,99', 'OK') : answer('OK'));
    }, { resyncTimeoutMs: 100 });
    const first = port.command('AT', { timeoutMs: 100 }).catch((e: unknown) => e);
    const second = port.command('AT+QIOTREG=1').catch((e: unknown) => e);
    const third = port.command('AT+QIOTSTATE?', { prefix: '+QIOTSTATE:' }).catch((e: unknown) => e);
    expect(await first).toBeInstanceOf(AtTimeoutError);
    // Each queued command's error is its own: it names that command, and says it was never sent and why.
    for (const [e, command] of [
      [await second, 'AT+QIOTREG=1'],
      [await third, 'AT+QIOTSTATE?'],
    ] as const) {
      expect(e).toBeInstanceOf(AtTimeoutError);
      expect((e as AtTimeoutError).command).toBe(command);
      expect((e as Error).message).toContain(`bench-2: ${command} not sent: the module answered neither AT nor the resynchronisation probe AT+CSQ within 100 ms`);
      expect((e as Error).message).toContain('seen nothing since AT+CSQ was sent');
    }
    alive = true;
    await expect(port.command('AT')).resolves.toMatchObject({ lines: [] });
  });

  for (const echo of [false, true]) {
    it(`recovers from a lost CR: the probe's bare CR ends the unfinished line, whose answer is discarded (echo ${echo ? 'on' : 'off'})`, async () => {
      const { port, peer } = await setup(
        (cmd, p) => {
          if (echo) void p.send(`${cmd}\r`);
          if (cmd === 'AT') void p.send(answer('OK'));
          else if (cmd === 'AT+CSQ') void p.send(answer('+CSQ: 24,99', 'OK'));
          else if (cmd === 'AT+QIOTSTATE?') void p.send(answer('+QIOTSTATE: 8', 'OK'));
          else void p.send(answer('ERROR'));
        },
        { resyncTimeoutMs: 2000 },
      );
      const unsolicited: string[] = [];
      port.on('unsolicited', (l) => unsolicited.push(l));
      peer.dropFromRig(1, 'AT+QIOTSTATE?'.length);
      const t0 = performance.now();
      const lost = port.command('AT+QIOTSTATE?', { prefix: '+QIOTSTATE:', timeoutMs: 100 }).catch((e: unknown) => e);
      const next = port.command('AT');
      const e = (await lost) as AtTimeoutError;
      expect(e).toBeInstanceOf(AtTimeoutError);
      expect(e.message).toContain('bench-2: no answer to AT+QIOTSTATE? within 100 ms');
      expect(e.message).toContain('seen nothing');
      await expect(next).resolves.toEqual({ command: 'AT', lines: [] });
      // Not a probe timeout: the probe got its own clean answer.
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(peer.received).toEqual(['AT+QIOTSTATE?', 'AT+CSQ', 'AT']);
      expect(unsolicited).toContain('+QIOTSTATE: 8');
      await expect(port.command('AT+QIOTSTATE?', { prefix: '+QIOTSTATE:' })).resolves.toMatchObject({ lines: ['+QIOTSTATE: 8'] });
    });

    it(`takes ERROR to the probe as proof that the module is alive (echo ${echo ? 'on' : 'off'})`, async () => {
      const { port, peer } = await setup(
        (cmd, p) => {
          if (echo) void p.send(`${cmd}\r`);
          if (cmd === 'AT') void p.send(answer('OK'));
          else if (cmd !== 'AT+QIOTREG?') void p.send(answer('ERROR')); // AT+QIOTREG? is never answered
        },
        { resyncTimeoutMs: 150 },
      );
      const first = port.command('AT+QIOTREG?', { timeoutMs: 100 }).catch((e: unknown) => e);
      const next = port.command('AT');
      expect(await first).toBeInstanceOf(AtTimeoutError);
      await expect(next).resolves.toEqual({ command: 'AT', lines: [] });
      expect(peer.received).toEqual(['AT+QIOTREG?', 'AT+CSQ', 'AT']);
      expect(port.transcript().map((t) => t.text)).toContain('resynchronised after AT+QIOTREG?: the module answered ERROR to AT+CSQ');
    });
  }

  it("a late answer of the abandoned command after the probe's echo is not taken for the probe's: the next command gets its own answer", async () => {
    const { port, peer } = await setup(
      (cmd, p) => {
        void p.send(`${cmd}\r`);
        // The abandoned command finishes only now, after the module has echoed the probe.
        if (cmd === 'AT+CSQ') void p.send(`${answer('OK')}${answer('+CSQ: 24,99', 'OK')}`);
        else if (cmd === 'AT+QIOTSTATE?') void p.send(answer('+QIOTSTATE: 8', 'OK'));
      },
      { resyncTimeoutMs: 500 },
    );
    const slow = port.command('AT+QIOTREG=1', { timeoutMs: 100 }).catch((e: unknown) => e);
    const next = port.command('AT+QIOTSTATE?', { prefix: '+QIOTSTATE:' });
    expect(await slow).toBeInstanceOf(AtTimeoutError);
    await expect(next).resolves.toMatchObject({ lines: ['+QIOTSTATE: 8'] });
    expect(peer.received).toEqual(['AT+QIOTREG=1', 'AT+CSQ', 'AT+QIOTSTATE?']);
  });

  it('aborts a queued command and an in-flight one through their AbortSignals', async () => {
    const { port, peer } = await setup((cmd, p) => {
      if (cmd === 'AT+CSQ') void p.send(answer('+CSQ: 1,1', 'OK'));
      if (cmd === 'AT') void p.send(answer('OK'));
    });
    const inflight = new AbortController();
    const queued = new AbortController();
    const a = port.command('AT+QIOTREG?', { signal: inflight.signal, timeoutMs: 10_000 }).catch((e: unknown) => e);
    const b = port.command('AT+QIOTSTATE?', { signal: queued.signal }).catch((e: unknown) => e);
    await peer.receivedCount(1);
    queued.abort(new Error('test over'));
    inflight.abort(new Error('Ctrl-C'));
    expect(await a).toBeInstanceOf(AbortedError);
    expect(((await b) as Error).message).toContain('AT+QIOTSTATE? on');
    await expect(port.command('AT')).resolves.toBeTruthy();
    expect(peer.received).toEqual(['AT+QIOTREG?', 'AT+CSQ', 'AT']);
    await expect(port.command('AT\rAT+CFUN=0')).rejects.toBeInstanceOf(RangeError);
    const pre = AbortSignal.abort(new Error('already'));
    await expect(port.command('AT', { signal: pre })).rejects.toBeInstanceOf(AbortedError);
  });

  it('holds its transcript within a byte budget under kilobyte lines of garbage, and says what it dropped', async () => {
    const { port, peer } = await setup(module(false), { transcriptMaxBytes: 32 * 1024 });
    await port.command('AT');
    for (let i = 0; i < 40; i++) await peer.send(Buffer.concat([Buffer.alloc(4000, 0xfe), Buffer.from(`${i}\r\n`)]));
    await expect(port.command('AT+CSQ', { prefix: '+CSQ:' })).resolves.toMatchObject({ lines: ['+CSQ: 24,99'] });
    const held = port.transcript();
    expect(held.reduce((n, e) => n + entryBytes(e), 0)).toBeLessThanOrEqual(32 * 1024);
    expect(held.at(-1)!.text).toBe('OK');
    expect(port.transcriptDropped?.entries).toBeGreaterThan(30);
  });

  it('reports an overlong line as a framing issue and keeps working', async () => {
    const { port, peer } = await setup(module(false), { maxLineLength: 64 });
    const issues: FramingIssue[] = [];
    port.on('framing', (i) => issues.push(i));
    await port.command('AT');
    await peer.send(`\r\n${'Z'.repeat(1000)}\r\n`);
    await expect(port.command('AT+CSQ', { prefix: '+CSQ:' })).resolves.toMatchObject({ lines: ['+CSQ: 24,99'] });
    expect(issues).toEqual([{ kind: 'overflow', head: 'Z'.repeat(40), limit: 64 }]);
  });

  it('survives power-on noise and reports the reboot', async () => {
    const { port, peer, urcs } = await setup(module(true));
    let reboots = 0;
    const unsolicited: string[] = [];
    port.on('reboot', () => reboots++);
    port.on('unsolicited', (l) => unsolicited.push(l));
    await peer.send(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0xc3, 0x28, 0x0d, 0x0a]));
    await peer.send(answer('RDY', '+CFUN: 1', '+CPIN: READY', '+QUSIM: 1', '+QIND: SMS DONE'));
    await expect(port.command('AT')).resolves.toBeTruthy();
    expect(reboots).toBe(1);
    expect(urcs.map((u) => u.line)).toEqual(['RDY', '+CFUN: 1', '+CPIN: READY', '+QUSIM: 1', '+QIND: SMS DONE']);
    expect(unsolicited).toHaveLength(2);
  });

  it('fails the command in flight at once when the module reboots', async () => {
    const { port, urcs } = await setup((cmd, p) => {
      if (cmd === 'AT+QIOTREG=1') void p.send(`${cmd}\r${answer('RDY')}`);
      if (cmd === 'AT') void p.send(answer('OK'));
    }, { commandTimeoutMs: 60_000 });
    const e = (await port.command('AT+QIOTREG=1').catch((err: unknown) => err)) as AtResponseError;
    expect(e).toBeInstanceOf(AtResponseError);
    expect(e.message).toContain('RDY: the module rebooted before answering');
    expect(urcs).toEqual([{ line: 'RDY' }]);
    await expect(port.command('AT')).resolves.toBeTruthy();
  });

  it('knows whether the module echoes: from the first answer, from ATE0/ATE1, and forgets it at RDY', async () => {
    let echo = true;
    const { port, peer } = await setup((cmd, p) => {
      // ATE0 is echoed itself: the module still echoes while it takes the line.
      if (echo) void p.send(`${cmd}\r`);
      if (cmd === 'ATE0') echo = false;
      if (cmd === 'ATE1') echo = true;
      void p.send(answer('OK'));
    });
    expect(port.echo).toBeUndefined();
    await port.command('AT');
    expect(port.echo).toBe(true);
    await port.command('ATE0');
    expect(port.echo).toBe(false);
    await port.command('AT');
    expect(port.echo).toBe(false);
    // The module restarts with its default (echo on, protocol §6): unknown until it answers again.
    echo = true;
    await peer.send(answer('RDY'));
    await expect.poll(() => port.echo).toBeUndefined();
    await port.command('AT+CSQ');
    expect(port.echo).toBe(true);
    await port.command('ATE0');
    await port.command('ATE1');
    expect(port.echo).toBe(true);
  });

  it('rejects everything pending when the port is closed, and can be reopened', async () => {
    const { port, peer } = await setup(module(false));
    const a = port.command('AT+QIOTSTATE?').catch((e: unknown) => e);
    const b = port.command('AT').catch((e: unknown) => e);
    await peer.receivedCount(1);
    await port.close();
    for (const e of [await a, await b]) {
      expect(e).toBeInstanceOf(AtPortError);
      expect(e).toBeInstanceOf(InfrastructureError);
      expect((e as Error).message).toMatch(/^bench-2: port \/dev\/mock-module-\d+-\d+ closed/);
    }
    await expect(port.command('AT')).rejects.toBeInstanceOf(AtPortError);
    await port.open();
    await expect(port.command('AT')).resolves.toBeTruthy();
  });

  it('accepts a stream that is already opening (autoOpen) or open', async () => {
    SerialPortMock.binding.createPort('/dev/mock-autoopen', { echo: false, record: true });
    const serial = new SerialPortMock({ path: '/dev/mock-autoopen', baudRate: 921600 });
    const port = new AtPort({ station: 'bench-2', serial });
    ports.push(port);
    await port.open();
    expect(port.isOpen).toBe(true);
    await port.open(); // already open: nothing to do
    void port.command('AT').catch(() => {});
    await new Promise((r) => serial.drain(r));
    expect(serial.port!.recording.toString()).toBe('AT\r');
  });

  it('masks the ProductSecret in the transcript and in emitted entries, echo included', async () => {
    const { port } = await setup(module(true, (cmd, p) => void p.send(answer('OK'))));
    const emitted: string[] = [];
    port.on('transcript', (e) => emitted.push(e.text));
    await port.command('AT+QIOTCFG="productinfo","p1234","VerySecret42"');
    expect(emitted).toEqual(['AT+QIOTCFG="productinfo","p1234","********"', 'AT+QIOTCFG="productinfo","p1234","********"', 'OK']);
    expect(JSON.stringify(port.transcript())).not.toContain('VerySecret42');
  });

  it('masks secrets in garbled echoes and answers: productinfo and dk_ds learned as sent, the station\'s given as an option', async () => {
    const { port } = await setup(
      (cmd, p) => {
        // Each echo loses the quote after the key, as after a dropped byte.
        void p.send(`${cmd.replace(/"(productinfo|dk_ds)"/, '"$1')}\r`);
        if (cmd === 'AT+QIOTCFG="dk_ds"') void p.send(answer('+QIOTCFG: "dk_ds,"dk1","DEVSECRET"', 'OK'));
        else if (cmd === 'AT+QIOTCFG="server"') void p.send(answer('+QIOTCFG: "server",1,"mqtt://u:StationSecret42@host"', 'ERROR'));
        else void p.send(answer('OK'));
      },
      { secrets: ['StationSecret42'] },
    );
    const emitted: string[] = [];
    port.on('transcript', (e) => emitted.push(e.text));
    await port.command('AT+QIOTCFG="productinfo","p1234","VerySecret42"');
    await port.command('AT+QIOTCFG="dk_ds","dk1","DEVSECRET"');
    await port.command('AT+QIOTCFG="dk_ds"', { prefix: '+QIOTCFG:' });
    const e = (await port.command('AT+QIOTCFG="server"', { prefix: '+QIOTCFG:' }).catch((err: unknown) => err)) as AtCommandError;
    expect(e).toBeInstanceOf(AtCommandError);
    expect(emitted).toContain('AT+QIOTCFG="productinfo,"p1234","********"');
    expect(emitted).toContain('AT+QIOTCFG="dk_ds,"dk1","********"');
    expect(emitted).toContain('+QIOTCFG: "dk_ds,"dk1","********"');
    expect(e.message).toContain('"+QIOTCFG: \\"server\\",1,\\"mqtt://u:********@host\\""');
    const everything = JSON.stringify({ emitted, transcript: port.transcript(), text: formatTranscript(port.transcript()), e, m: e.message });
    for (const secret of ['VerySecret42', 'DEVSECRET', 'StationSecret42']) expect(everything).not.toContain(secret);
    port.addSecret('LaterSecret7');
    port.note('a note quoting LaterSecret7');
    expect(port.transcript().at(-1)!.text).toBe('a note quoting ********');
  });

  it('keeps the ProductSecret out of every error: ERROR, timeout, abort, closed port', async () => {
    const { port } = await setup((cmd, p) => {
      if (cmd.endsWith('"err"')) void p.send(answer('ERROR'));
      if (cmd === 'AT+CSQ') void p.send(answer('+CSQ: 1,1', 'OK'));
    });
    const set = (ps: string, o = {}) => port.command(`AT+QIOTCFG="productinfo","p1","${ps}"`, { timeoutMs: 50, ...o }).then(() => new Error('answered OK'), (e: unknown) => e as Error);
    const errors = [await set('err'), await set('timeout')];
    const ctl = new AbortController();
    const aborted = set('abort', { signal: ctl.signal, timeoutMs: 10_000 });
    ctl.abort(new Error('stop'));
    errors.push(await aborted);
    const closed = set('closed', { timeoutMs: 10_000 });
    await port.close();
    errors.push(await closed);
    expect(errors.map((e) => e.constructor.name)).toEqual(['AtCommandError', 'AtTimeoutError', 'AbortedError', 'AtPortError']);
    for (const e of errors) {
      expect(e.message).toContain('"productinfo","p1","********"');
      expect(JSON.stringify({ e, m: e.message, c: (e as { command?: string }).command })).not.toMatch(/"(err|timeout|abort|closed)\\?"/);
    }
    expect(JSON.stringify(port.transcript())).not.toMatch(/"(err|timeout|abort|closed)\\?"/);
  });
});
