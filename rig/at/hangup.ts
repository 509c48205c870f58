// On Linux a tty whose other side is gone (a USB adapter unplugged, the master of a pty closed) reads
// end-of-file: read() returns 0 bytes. serialport 13's bindings-cpp retries such reads at once, forever
// (serialport/bindings-cpp#162, fix proposed in #164, not released), so the port spins a CPU and never
// emits `close` with `disconnected`; only a POLLERR (EBADF) happens to be reported. This guard gives the
// opened Linux binding a read that treats end-of-file as the hang-up it is. The stream then closes with a
// DisconnectedError, exactly as for EBADF, and nothing above it needs to know.
import { read } from 'node:fs';
import { promisify } from 'node:util';

const readAsync = promisify(read);

/** The public surface of bindings-cpp's LinuxPortBinding that the guard needs. */
interface UnixBinding {
  fd: number | null;
  readonly isOpen: boolean;
  readonly poller: { once(event: 'readable', cb: (err: Error | null) => void): unknown };
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
}

function isUnixBinding(b: unknown): b is UnixBinding {
  const x = b as Partial<UnixBinding> | undefined;
  return typeof x?.fd === 'number' && typeof x.poller?.once === 'function' && typeof x.read === 'function';
}

const guarded = new WeakSet<object>();

/** Installs the guard on an opened serialport binding; a no-op for other bindings (e.g. binding-mock). */
export function guardHangup(binding: unknown): void {
  if (!isUnixBinding(binding) || guarded.has(binding)) return;
  guarded.add(binding);
  const canceled = () => Object.assign(new Error('Port is not open'), { canceled: true });
  binding.read = async function guardedRead(buffer, offset, length) {
    for (;;) {
      const fd = binding.fd;
      if (!binding.isOpen || fd === null) throw canceled();
      try {
        const { bytesRead } = await readAsync(fd, buffer, offset, length, null);
        if (bytesRead === 0) {
          throw Object.assign(new Error('the device hung up (read returned end of file)'), { disconnect: true });
        }
        return { bytesRead, buffer };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw err;
        if (!binding.isOpen) throw canceled();
        await new Promise<void>((resolve, reject) => binding.poller.once('readable', (e) => (e ? reject(e) : resolve())));
      }
    }
  };
}
