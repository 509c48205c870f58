// Integration over a real pty pair (socat): the rig's AtPort opens one end with serialport 13 exactly as
// it opens a USB adapter, a scripted module answers on the other. Killing socat is an unplug.
import { SerialPort } from 'serialport';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InfrastructureError } from '../errors.ts';
import { AtPortError } from './errors.ts';
import { AtPort } from './port.ts';
import { answer } from './testing/peer.ts';
import type { Script } from './testing/peer.ts';
import { openPtyPeer, startPtyPair } from './testing/pty.ts';
import type { PtyPair } from './testing/pty.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openPeer(pathB: string, script: Script, seed: number) {
  const p = await openPtyPeer(pathB, script, seed);
  cleanups.push(() => p.close());
  return p.peer;
}

async function pair(dir?: string): Promise<PtyPair> {
  const p = await startPtyPair(dir ? { dir } : {});
  cleanups.push(() => p.dispose());
  return p;
}

const firmware = Buffer.alloc(1024);
for (let i = 0; i < firmware.length; i++) firmware[i] = (i * 7) & 0xff;

const moduleScript: Script = (cmd, peer) => {
  void peer.send(`${cmd}\r`);
  if (cmd === 'AT') void peer.send(answer('OK'));
  else if (cmd === 'AT+CSQ') void peer.send(answer('+CSQ: 31,99', 'OK'));
  else if (cmd.startsWith('AT+QIOTOTARD=')) {
    const [start] = cmd.slice(13).split(',').map(Number);
    void peer.send(answer('+QIOTEVT: 7,10702'));
    void peer.send(Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: ${start},${firmware.length}\r\n`), firmware, Buffer.from('\r\n\r\nOK\r\n')]));
  }
};

describe('AtPort over a real pty pair', () => {
  it('talks to a scripted module through serialport, binary blocks included', async () => {
    const p = await pair();
    const peer = await openPeer(p.b, moduleScript, 3);
    const port = new AtPort({ station: 'virtual', path: p.a, baudRate: 115200, commandTimeoutMs: 3000 });
    cleanups.push(() => port.close());
    const urcs: string[] = [];
    port.on('urc', (u) => urcs.push(u.line));
    await port.open();
    await expect(port.command('AT')).resolves.toEqual({ command: 'AT', lines: [] });
    for (const start of [0, 1024, 2048]) {
      const r = await port.command(`AT+QIOTOTARD=${start},1024`, { prefix: '+QIOTOTARD:', binary: true });
      expect(r.block).toEqual({ header: `+QIOTOTARD: ${start},1024`, data: firmware });
    }
    expect(urcs).toEqual(['+QIOTEVT: 7,10702', '+QIOTEVT: 7,10702', '+QIOTEVT: 7,10702']);
    expect(peer.received).toEqual(['AT', 'AT+QIOTOTARD=0,1024', 'AT+QIOTOTARD=1024,1024', 'AT+QIOTOTARD=2048,1024']);
  });

  it('refuses a second open of the same port (exclusive lock) with a typed error', async () => {
    const p = await pair();
    const first = new AtPort({ station: 'virtual', path: p.a });
    cleanups.push(() => first.close());
    await first.open();
    const second = new AtPort({ station: 'virtual', path: p.a });
    const err = (await second.open().catch((e: unknown) => e)) as AtPortError;
    expect(err).toBeInstanceOf(AtPortError);
    expect(err.message).toContain(`could not open ${p.a} (held by another process)`);
  });

  it('rejects a read in the middle of its binary data with a typed error naming the port when the peer vanishes, then reopens', async () => {
    const header = '\r\n+QIOTOTARD: 0,1024\r\n';
    const halfBlock: Script = (cmd, peer) => {
      if (cmd.startsWith('AT+QIOTOTARD=')) void peer.send(Buffer.concat([Buffer.from(header), firmware.subarray(0, 512)]));
    };
    let p = await pair();
    const dir = path.dirname(p.a);
    // The rig's end is built here (as AtPort would build it) to see when the half block has arrived.
    const serial = new SerialPort({ path: p.a, baudRate: 115200, lock: true, autoOpen: false });
    let received = 0;
    let halfArrived = () => {};
    serial.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= header.length + 512) halfArrived();
    });
    const port = new AtPort({ station: 'virtual', serial, commandTimeoutMs: 60_000 });
    cleanups.push(() => port.close());
    const disconnected: AtPortError[] = [];
    port.on('disconnected', (e) => disconnected.push(e));
    await port.open();

    // A hang-up shows either as EBADF or as end-of-file reads, by chance: several rounds meet both.
    for (let round = 1; round <= 5; round++) {
      await openPeer(p.b, halfBlock, round);
      received = 0;
      const arrived = new Promise<void>((resolve) => (halfArrived = resolve));
      const read = port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true }).catch((e: unknown) => e);
      const queued = port.command('AT').catch((e: unknown) => e);
      await arrived;
      await p.kill();
      const err = (await read) as AtPortError;
      expect(err).toBeInstanceOf(AtPortError);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect(err.message).toContain(
        `virtual: port ${p.a} vanished (disconnected) while waiting for the answer to AT+QIOTOTARD=0,1024, in the middle of binary data`,
      );
      expect(err.port).toBe(p.a);
      expect(await queued).toBeInstanceOf(AtPortError);
      expect(disconnected).toHaveLength(2 * round - 1);
      expect(port.isOpen).toBe(false);

      // The adapter comes back at the same path.
      p = await pair(dir);
      const peer = await openPeer(p.b, moduleScript, 100 + round);
      await port.open();
      // The read was in flight when the port vanished, so the port first resynchronises.
      const r = await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true });
      expect(r.block?.data).toEqual(firmware);
      expect(peer.received).toEqual(['AT+CSQ', 'AT+QIOTOTARD=0,1024']);
      const gone = new Promise<void>((resolve) => port.on('disconnected', () => resolve()));
      await p.kill();
      await gone;
      p = await pair(dir);
      await port.open();
    }
  });
});
