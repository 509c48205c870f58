// The Linux serial binding's reads and writes, done on the event loop's own thread. serialport 13's
// bindings-cpp reads a tty through libuv's thread pool: every chunk costs a hop to a worker thread and back,
// and after it a second hop whose read only says EAGAIN before the poller is armed — most of the CPU a
// paced UART costs a Pi. The tty is open non-blocking, so a read or write on the loop's thread never waits:
// this guard reads only when the poller says there are bytes (or the last read filled its buffer), and
// writes a command at once, handing a write the kernel did not take whole to the binding's own path.
//
// It also fixes a hang-up: a tty whose other side is gone (a USB adapter unplugged, the master of a pty
// closed) reads end-of-file, read() returns 0 bytes, and bindings-cpp retries such reads at once, forever
// (serialport/bindings-cpp#162, fix proposed in #164, not released), so the port spins a CPU and never emits
// `close` with `disconnected`. Here end-of-file is the hang-up it is: the stream closes with a
// DisconnectedError, exactly as for EBADF, and nothing above it needs to know.
import { readSync, writeSync } from 'node:fs';

/** The public surface of bindings-cpp's LinuxPortBinding that the guard needs. */
interface UnixBinding {
  fd: number | null;
  readonly isOpen: boolean;
  readonly poller: PollerLike;
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
  write?(buffer: Buffer): Promise<void>;
}

/** bindings-cpp's Poller (an EventEmitter over a libuv poll handle). */
interface PollerLike {
  once(event: 'readable', cb: (err: Error | null) => void): unknown;
  poll?(eventFlag?: number): void;
  listenerCount?(event: string): number;
}

/** libuv's poll events, as bindings-cpp's EVENTS names them. */
const POLL_EVENTS = { readable: 0b0001, writable: 0b0010, disconnect: 0b0100 } as const;

/**
 * bindings-cpp 13's Poller restarts libuv's poll with only the events asked for in that call
 * (`uv_poll_start(handle, events, …)` in poller.cpp, where the mask it keeps is the union): waiting for
 * `writable` — a write the kernel did not take whole — silently ends the wait for `readable` (and the one
 * for `disconnect` armed at open). The port then reads nothing until its write completes, and a peer that
 * only takes more once we read (a tty's 4 KiB input queue full both ways) never lets it: both sides wait
 * for ever. Asking each time for every event someone waits for keeps all of them armed.
 */
export function pollForEveryWaiter(poller: PollerLike): void {
  const poll = poller.poll?.bind(poller);
  const count = poller.listenerCount?.bind(poller);
  if (poll === undefined || count === undefined) return;
  poller.poll = (eventFlag = 0) => {
    let flags = eventFlag;
    for (const [event, flag] of Object.entries(POLL_EVENTS)) if (count(event) > 0) flags |= flag;
    poll(flags);
  };
}

function isUnixBinding(b: unknown): b is UnixBinding {
  const x = b as Partial<UnixBinding> | undefined;
  return typeof x?.fd === 'number' && typeof x.poller?.once === 'function' && typeof x.read === 'function';
}

function wouldBlock(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

const guarded = new WeakSet<object>();

/** Installs the guard on an opened serialport binding; a no-op for other bindings (e.g. binding-mock). */
export function guardHangup(binding: unknown): void {
  if (!isUnixBinding(binding) || guarded.has(binding)) return;
  guarded.add(binding);
  pollForEveryWaiter(binding.poller);
  const canceled = () => Object.assign(new Error('Port is not open'), { canceled: true });
  // After a read that did not fill its buffer the kernel's queue is most likely empty: wait for the poller
  // (level-triggered: bytes that came meanwhile wake it at once) rather than pay an EAGAIN for it.
  let drained = false;
  binding.read = async function guardedRead(buffer, offset, length) {
    for (;;) {
      const fd = binding.fd;
      if (!binding.isOpen || fd === null) throw canceled();
      if (!drained) {
        let bytesRead: number;
        try {
          bytesRead = readSync(fd, buffer, offset, length, null);
        } catch (err) {
          if (!wouldBlock(err)) throw err;
          bytesRead = -1;
        }
        if (bytesRead === 0) {
          throw Object.assign(new Error('the device hung up (read returned end of file)'), { disconnect: true });
        }
        if (bytesRead > 0) {
          drained = bytesRead < length;
          return { bytesRead, buffer };
        }
      }
      if (!binding.isOpen) throw canceled();
      await new Promise<void>((resolve, reject) => binding.poller.once('readable', (e) => (e ? reject(e) : resolve())));
      drained = false;
    }
  };
  const write = binding.write?.bind(binding);
  if (write === undefined) return;
  binding.write = async function guardedWrite(buffer) {
    const fd = binding.fd;
    if (binding.isOpen && fd !== null && buffer.length > 0) {
      let written = 0;
      try {
        written = writeSync(fd, buffer);
      } catch {
        // EAGAIN, or an error the binding's own write meets again and reports as it always has.
      }
      if (written === buffer.length) return;
      buffer = buffer.subarray(written);
    }
    // The kernel's queue is full, or the write failed: the binding waits for the poller, or reports it.
    return write(buffer);
  };
}
