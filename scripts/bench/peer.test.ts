// The bench's peer must read counted blocks exactly, or rig ÷ peer compares the rig with a reader that is
// wrong: binary data holding CR LF (where ReadlineParser splits), a CR right before the trailer, "OK" inside
// the data — over a real pty, against a minimal module that answers as protocol §2.7 says.
import { afterEach, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { startPtyPair } from '../../rig/at/testing/pty.ts';
import type { PtyPair } from '../../rig/at/testing/pty.ts';
import { peerReadPhase } from './peer.ts';

/** A module end that echoes and answers AT+QIOTOTARD from `file` (or ERROR when `refuse`). */
async function fakeModule(path: string, file: Buffer, refuse = false): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  let pending = '';
  port.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    for (let cr = pending.indexOf('\r'); cr >= 0; cr = pending.indexOf('\r')) {
      const line = pending.slice(0, cr);
      pending = pending.slice(cr + 1);
      port.write(`${line}\r`);
      const m = /^AT\+QIOTOTARD=(\d+),(\d+)$/.exec(line);
      if (!m || refuse) {
        port.write('\r\nERROR\r\n');
        continue;
      }
      const start = Number(m[1]);
      const data = file.subarray(start, Math.min(file.length, start + Number(m[2])));
      port.write(Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: ${start},${data.length}\r\n`, 'latin1'), data, Buffer.from('\r\n\r\nOK\r\n', 'latin1')]));
    }
  });
  return port;
}

describe('the bench peer (serialport ReadlineParser, per-block loop)', () => {
  let pair: PtyPair | undefined;
  let module: SerialPort | undefined;
  afterEach(async () => {
    if (module?.isOpen) await new Promise<void>((resolve) => module!.close(() => resolve()));
    await pair?.dispose();
  });

  it('reassembles counted blocks that contain the line delimiter', async () => {
    const file = Buffer.alloc(2600);
    for (let i = 0; i < file.length; i++) file[i] = (i * 37) & 0xff;
    file.write('\r\n', 0, 'latin1'); // a block starting with CR LF
    file.write('\r\n', 1022, 'latin1'); // the first block ending with CR LF, right before the trailer's
    file.write('OK\r\n\r\n', 1500, 'latin1'); // what looks like a final result, inside the data
    file.write('\r', 2047, 'latin1'); // a lone CR just before the trailer's CR LF
    pair = await startPtyPair();
    module = await fakeModule(pair.b, file);
    const r = await peerReadPhase({ path: pair.a, baudRate: 115200, start: 0, length: file.length, blockSize: 1024, blockTimeoutMs: 5000, station: 'test' });
    expect(r.blocks).toBe(3);
    expect(r.data.equals(file)).toBe(true);
    expect(r.turnarounds).toHaveLength(2);
    expect(r.answers).toHaveLength(3);
  });

  it('names the station and the command when the module refuses a read', async () => {
    pair = await startPtyPair();
    module = await fakeModule(pair.b, Buffer.alloc(10), true);
    await expect(peerReadPhase({ path: pair.a, baudRate: 115200, start: 0, length: 10, blockSize: 1024, blockTimeoutMs: 5000, station: 'bench-x' })).rejects.toThrow(
      /bench-x: peer: AT\+QIOTOTARD=0,10 refused/,
    );
  });
});
