import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { guardHangup, pollForEveryWaiter } from './hangup.ts';
import { startPtyPair } from './testing/pty.ts';

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
});

function unixLikeBinding(fd: number) {
  let calls = 0;
  const binding = {
    fd: fd as number | null,
    isOpen: true,
    poller: { once: () => undefined },
    read: async (buffer: Buffer, _offset: number, _length: number) => {
      calls++;
      return { buffer, bytesRead: 1 };
    },
  };
  return { binding, calls: () => calls };
}

describe('guardHangup', () => {
  it('turns an end-of-file read into a disconnect error instead of retrying it', async () => {
    const fd = openSync('/dev/null', 'r'); // reads end-of-file at once, like a tty whose other side is gone
    fds.push(fd);
    const { binding, calls } = unixLikeBinding(fd);
    guardHangup(binding);
    const err = (await binding.read(Buffer.alloc(16), 0, 16).catch((e: unknown) => e)) as Error & { disconnect?: boolean };
    expect(err.message).toContain('hung up');
    expect(err.disconnect).toBe(true);
    expect(calls()).toBe(0);
  });

  it('reads real bytes through', async () => {
    const fd = openSync('/dev/zero', 'r');
    fds.push(fd);
    const { binding } = unixLikeBinding(fd);
    guardHangup(binding);
    const buf = Buffer.alloc(8, 0xff);
    await expect(binding.read(buf, 2, 4)).resolves.toEqual({ buffer: buf, bytesRead: 4 });
    expect([...buf]).toEqual([0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff]);
  });

  it('reads on the calling thread: after a short read it waits for the poller before reading again', async () => {
    const fd = openSync('/dev/zero', 'r');
    fds.push(fd);
    let armed = 0;
    const { binding } = unixLikeBinding(fd);
    binding.poller.once = (() => {
      armed++;
    }) as typeof binding.poller.once;
    guardHangup(binding);
    // /dev/zero fills any buffer: no reason to think the queue is empty, the next read goes straight on.
    await binding.read(Buffer.alloc(4), 0, 4);
    await binding.read(Buffer.alloc(4), 0, 4);
    expect(armed).toBe(0);
  });

  it('after a read shorter than asked, the next read waits for the poller', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hangup-'));
    const file = path.join(dir, 'six');
    writeFileSync(file, 'ABCDEF');
    const fd = openSync(file, 'r');
    fds.push(fd);
    let armed = 0;
    let wake: ((err: Error | null) => void) | undefined;
    const { binding } = unixLikeBinding(fd);
    binding.poller.once = ((_event: 'readable', cb: (err: Error | null) => void) => {
      armed++;
      wake = cb;
    }) as typeof binding.poller.once;
    guardHangup(binding);
    expect((await binding.read(Buffer.alloc(4), 0, 4)).bytesRead).toBe(4);
    expect((await binding.read(Buffer.alloc(4), 0, 4)).bytesRead).toBe(2);
    const third = binding.read(Buffer.alloc(4), 0, 4).catch((e: unknown) => e);
    await new Promise((resolve) => setImmediate(resolve));
    expect(armed).toBe(1);
    wake!(null);
    expect(((await third) as Error).message).toContain('hung up'); // the file's end: read() returns 0
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a command at once; what the kernel refuses goes to the binding\'s own write', async () => {
    const fd = openSync('/dev/null', 'w');
    fds.push(fd);
    const handedOn: Buffer[] = [];
    const binding = { fd: fd as number | null, isOpen: true, poller: { once: () => undefined }, read: async (b: Buffer) => ({ buffer: b, bytesRead: 0 }), write: async (b: Buffer) => void handedOn.push(b) };
    guardHangup(binding);
    await binding.write(Buffer.from('AT+QIOTOTARD=0,1024\r'));
    expect(handedOn).toEqual([]);
    binding.fd = 987_654; // not an open descriptor: EBADF, which the binding reports as a disconnect
    await binding.write(Buffer.from('AT\r'));
    expect(handedOn).toEqual([Buffer.from('AT\r')]);
  });

  it('reports a closed port as canceled, and leaves other bindings alone', async () => {
    const { binding } = unixLikeBinding(0);
    guardHangup(binding);
    binding.isOpen = false;
    await expect(binding.read(Buffer.alloc(1), 0, 1)).rejects.toMatchObject({ canceled: true });
    const mockLike = { read: () => 'untouched', port: {} };
    guardHangup(mockLike);
    expect(mockLike.read()).toBe('untouched');
  });
});

describe('pollForEveryWaiter', () => {
  it('each poll asks for every event a listener waits for, not only the one asked for now', () => {
    const asked: number[] = [];
    const waiting = new Map<string, number>();
    const poller = {
      once: (event: string) => void waiting.set(event, (waiting.get(event) ?? 0) + 1),
      poll: (flags?: number) => void asked.push(flags ?? 0),
      listenerCount: (event: string) => waiting.get(event) ?? 0,
    };
    pollForEveryWaiter(poller);
    poller.poll(0b0100); // bindings-cpp arms `disconnect` at open
    poller.once('disconnect');
    poller.poll(0b0001); // a read waits for `readable`
    poller.once('readable');
    poller.poll(0b0010); // a write the kernel did not take whole waits for `writable`
    expect(asked).toEqual([0b0100, 0b0101, 0b0111]);
  });

  it('a burst bigger than the tty queue, echoed by a peer that stops reading while it cannot write: every byte comes back', async () => {
    // socat copies with blocking writes: once the rig's side of the pty is full it reads nothing more
    // from us, so the rig must keep reading while its own write waits for room.
    const echo = await startPtyPair({ far: 'EXEC:cat' });
    try {
      const port = new SerialPort({ path: echo.a, baudRate: 115200, autoOpen: false });
      port.prependListener('open', () => guardHangup((port as { port?: unknown }).port));
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
      const burst = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => 32 + (i % 90)));
      let got = 0;
      const back = new Promise<void>((resolve) =>
        port.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= burst.length) resolve();
        }),
      );
      const written = new Promise<void>((resolve, reject) => port.write(burst, (err) => (err ? reject(err) : resolve())));
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), 20_000)));
      const outcome = await Promise.race([Promise.all([written, back]).then(() => 'echoed' as const), bound]);
      clearTimeout(timer);
      expect({ outcome, got }).toEqual({ outcome: 'echoed', got: burst.length });
      await new Promise<void>((resolve) => port.close(() => resolve()));
    } finally {
      await echo.dispose();
    }
  });
});
