// The remote_bitbang socket: OpenOCD connects as a client and streams characters; each received chunk is
// answered with one write of all its `R` samples before the next read, because OpenOCD blocks for those
// answers at the end of every scan (docs/virtual-station.md, OpenOCD §1.4). TCP on 127.0.0.1 is the normal mode;
// a UNIX socket (`remote_bitbang port 0` + `remote_bitbang host <path>`) is offered for lower latency.
import net from 'node:net';
import { unlink } from 'node:fs/promises';
import type { DebugPort } from './debug-port.ts';

const maxUnreadAnswers = 1 << 20;

export interface RemoteBitbangServerOptions {
  debugPort: DebugPort;
  /** TCP host, default 127.0.0.1. */
  host?: string;
  /** TCP port, default 0 (ephemeral). */
  port?: number;
  /** Listen on this UNIX socket path instead of TCP. */
  socketPath?: string;
  /** Simulator log lines (connections, unknown bytes, socket errors). */
  log?: (line: string) => void;
}

export interface RemoteBitbangServer {
  /** TCP host and port, or the UNIX socket path (port 0). */
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Whether a debugger is connected right now. */
  readonly connected: boolean;
  /** Drops the current debugger connection, as if the probe's cable were pulled. */
  dropConnection(): void;
  close(): Promise<void>;
}

export async function startRemoteBitbangServer(options: RemoteBitbangServerOptions): Promise<RemoteBitbangServer> {
  const { debugPort } = options;
  const log = options.log ?? (() => {});
  let active: net.Socket | undefined;
  let connections = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer({ noDelay: true }, (socket) => {
    connections++;
    sockets.add(socket);
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    // One probe, one debugger: a new OpenOCD takes over from one that is gone but whose socket has not
    // closed yet (a killed process and its replacement can race on loopback).
    if (active && !active.destroyed) {
      log('jtag: a new debugger connected; dropping the previous connection');
      active.destroy();
    }
    active = socket;
    debugPort.claim(socket);
    log(`jtag: debugger connected (${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''})`);
    socket.on('data', (chunk: Buffer) => {
      if (socket !== active) return;
      if (!debugPort.holds(socket)) {
        log('jtag: a debugger on another adapter took the target; dropping this connection');
        active = undefined;
        socket.destroy();
        return;
      }
      // Pool-backed for the usual ≤512-byte chunks; one answer byte at most per input byte.
      const out = Buffer.allocUnsafe(chunk.length);
      const n = debugPort.process(chunk, out);
      if (n > 0) socket.write(out.subarray(0, n));
      // OpenOCD never has more than 255 samples outstanding; a peer that floods `R` without reading the
      // answers is not a debugger, and must not grow the simulator's memory without bound.
      if (socket.writableLength > maxUnreadAnswers) {
        log(`jtag: peer left ${socket.writableLength} answers unread; dropping it`);
        socket.destroy();
        return;
      }
      if (debugPort.quit) {
        debugPort.quit = false;
        socket.end();
      }
    });
    socket.on('error', (err) => log(`jtag: socket error: ${err.message}`));
    socket.on('close', () => {
      sockets.delete(socket);
      if (active === socket) active = undefined;
      log('jtag: debugger disconnected');
    });
  });
  debugPort.onUnknownByte ??= (b) => log(`jtag: ignored unknown byte 0x${b.toString(16).padStart(2, '0')}`);

  const socketPath = options.socketPath;
  if (socketPath !== undefined) await unlink(socketPath).catch(() => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (socketPath !== undefined) server.listen(socketPath, resolve);
    else server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  server.on('error', (err) => log(`jtag: server error: ${err.message}`));
  const address = server.address();
  const host = socketPath ?? (typeof address === 'object' && address ? address.address : '127.0.0.1');
  const port = socketPath === undefined && typeof address === 'object' && address ? address.port : 0;

  return {
    host,
    port,
    get connections() {
      return connections;
    },
    get connected() {
      return active !== undefined && !active.destroyed;
    },
    dropConnection() {
      active?.destroy();
      active = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
