import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { guardHangup } from './hangup.ts';

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
