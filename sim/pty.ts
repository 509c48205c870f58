// Serial ports for the rig, made by socat: a linked pseudo-terminal pair (the rig opens one end with
// serialport exactly as it would a USB/UART adapter, the sim owns the other), or one pty whose other side
// is a UNIX socket connection into the sim. socat is a child of the sim and dies with it on every exit path.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PtyPair {
  /** The rig's end (a symlink to /dev/pts/N that stays valid while the pair lives). */
  readonly rigPath: string;
  /** The sim's end. */
  readonly simPath: string;
  /** Kills socat and removes both links; safe to call twice. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
const setpriv = '/usr/bin/setpriv';
let exitHookInstalled = false;

// A crash (uncaught exception, process.exit from anywhere) must not leave socat running with our ptys.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function removeLink(p: string): void {
  try {
    if (lstatSync(p).isSymbolicLink()) unlinkSync(p);
  } catch {
    // already gone
  }
}

/**
 * Starts `socat pty,raw,echo=0,link=<rig> pty,raw,echo=0,link=<sim>` and resolves once socat has announced
 * both ptys and the links exist (bounded by `timeoutMs`).
 */
export async function openPtyPair(dir: string, name: string, timeoutMs = 5000): Promise<PtyPair> {
  const rigPath = path.join(dir, `${name}-rig`);
  const simPath = path.join(dir, `${name}-sim`);
  const close = await startSocat(dir, [rigPath, simPath], [`pty,raw,echo=0,link=${rigPath}`, `pty,raw,echo=0,link=${simPath}`], timeoutMs);
  return { rigPath, simPath, close };
}

export interface PtySocket {
  /** The serial port the rig opens (a symlink to /dev/pts/N that stays valid while the pty lives). */
  readonly rigPath: string;
  /** The sim's end: a byte stream, read and written on the event loop's thread. */
  readonly socket: net.Socket;
  /** Kills socat, closes the connection and removes the link and the socket file; safe to call twice. */
  close(): Promise<void>;
}

/**
 * A pty whose other side is a UNIX socket connection into this process: a device that is a serial port to
 * its user (a module's USB AT port, a debug adapter's CDC-ACM port) and a plain byte stream to the sim —
 * one pty instead of a pair, and no serial port library and thread-pool reads on the sim's side, so the
 * virtual wire adds as little as possible to each exchange. The pty outlives the openings and closings of
 * its user, as a USB serial device does; the connection stays up until `close()`.
 */
export async function openPtySocket(dir: string, name: string, timeoutMs = 5000): Promise<PtySocket> {
  mkdirSync(dir, { recursive: true });
  // sun_path holds 108 bytes: a deep run directory gets its socket in a private temp directory instead.
  const socketDir = Buffer.byteLength(path.join(dir, `${name}.sock`)) > 100 ? mkdtempSync(path.join(tmpdir(), 'sim-pty-')) : dir;
  const socketPath = path.join(socketDir, `${name}.sock`);
  const removeSocket = (): void => {
    if (socketDir === dir) rmSync(socketPath, { force: true });
    else rmSync(socketDir, { recursive: true, force: true });
  };
  removeSocket();
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const rigPath = path.join(dir, name);
  let stopSocat: () => Promise<void>;
  let socket: net.Socket;
  try {
    stopSocat = await startSocat(dir, [rigPath], [`pty,raw,echo=0,link=${rigPath}`, `UNIX-CONNECT:${socketPath}`], timeoutMs);
    // socat announces its data loop once connected: the connection is there or arrives at once.
    socket = await Promise.race([accepted, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`socat did not connect to ${socketPath} within ${timeoutMs} ms`)), timeoutMs).unref())]);
  } catch (err) {
    server.close();
    removeSocket();
    throw err;
  }
  // One connection, from the one socat: nothing else may reach the device.
  server.close();
  socket.setNoDelay?.(true);
  let closed: Promise<void> | undefined;
  return {
    rigPath,
    socket,
    close: () =>
      (closed ??= (async () => {
        await stopSocat();
        socket.destroy();
        removeSocket();
      })()),
  };
}

/**
 * Spawns socat with these two addresses and resolves, once it announced a pty per link and its data loop
 * and the links exist, with the function that stops it and removes the links.
 */
async function startSocat(dir: string, links: readonly string[], addresses: readonly string[], timeoutMs: number): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  // A stale link from a killed run would make socat fail to create its own.
  for (const l of links) removeLink(l);
  installExitHook();
  const socatArgs = ['-d', '-d', ...addresses];
  // Its own process group, so a Ctrl-C meant for the sim does not kill socat under the sim's feet (the sim
  // then closes it in order); and a parent-death signal (util-linux setpriv, Essential on Debian) so that
  // even a SIGKILLed sim leaves no socat behind.
  const [cmd, args] = existsSync(setpriv) ? [setpriv, ['--pdeathsig', 'TERM', 'socat', ...socatArgs]] : ['socat', socatArgs];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  let stderr = '';
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    });
  });

  const close = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    for (const l of links) removeLink(l);
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`socat did not announce ${links.length} pty(s) within ${timeoutMs} ms (expected ${links.length} "PTY is /dev/pts/N" line(s) and its data loop; stderr: ${JSON.stringify(stderr.slice(-400))})`)),
        timeoutMs,
      );
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`socat could not start (is it installed? scripts/setup.mjs installs it): ${err.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`socat exited (code ${code}, signal ${signal}) before the ptys were ready; stderr: ${JSON.stringify(stderr.slice(-400))}`));
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.length > 8192) stderr = stderr.slice(-4096);
        // socat creates the links right after announcing each pty; the data loop line comes after both.
        if ((stderr.match(/PTY is \/dev\//g) ?? []).length >= links.length && /starting data transfer loop/.test(stderr)) {
          // The links may appear a moment after the log lines; the overall timer bounds this check.
          const check = (): void => {
            if (links.every((l) => existsSync(l))) {
              clearTimeout(timer);
              resolve();
            } else if (!exited) setTimeout(check, 5);
          };
          check();
        }
      });
    });
  } catch (err) {
    await close();
    throw err;
  }
  // Keep draining socat's stderr so it never blocks on a full pipe.
  child.stderr!.removeAllListeners('data');
  child.stderr!.resume();
  child.removeAllListeners('error');
  child.on('error', () => {});
  return close;
}

/** A pty the sim only writes to (a tap, a console): what the rig writes into it is read and dropped. */
export interface PtyOutput {
  /** The rig's end. */
  readonly rigPath: string;
  write(bytes: Buffer): void;
  readonly stats: { written: number; dropped: number };
  close(): Promise<void>;
}

/**
 * Bytes waiting for a reader beyond this are dropped and counted, as a USB-UART's FIFO overflows while
 * nobody reads it: a tap left unopened costs bounded memory.
 */
const OUTPUT_BACKLOG = 64 * 1024;

export async function openPtyOutput(dir: string, name: string, log: (msg: string) => void): Promise<PtyOutput> {
  // A pty with a socket on the sim's side, as the module's USB AT port: the same transport, so bytes the sim
  // sends at the same moment on a tap, the console and the AT port reach the rig in the order they were sent.
  const pty = await openPtySocket(dir, `${name}-rig`);
  const port = pty.socket;
  port.on('error', (err) => log(`${name}: pty error: ${err.message}`));
  port.on('data', () => {}); // the rig's TX pin is not connected
  const stats = { written: 0, dropped: 0 };
  let backlog = 0;
  let closing = false;
  return {
    rigPath: pty.rigPath,
    stats,
    write(bytes) {
      if (closing || port.destroyed || bytes.length === 0) return;
      if (backlog + bytes.length > OUTPUT_BACKLOG) {
        stats.dropped += bytes.length;
        return;
      }
      backlog += bytes.length;
      stats.written += bytes.length;
      port.write(bytes, () => void (backlog -= bytes.length));
    },
    async close() {
      closing = true;
      await pty.close();
    },
  };
}
