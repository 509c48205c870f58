import { closeSync, openSync } from 'node:fs';
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
