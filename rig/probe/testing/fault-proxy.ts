// A TCP relay between OpenOCD and a remote_bitbang target that can, once armed, cut the line or go silent
// after a given number of bytes from OpenOCD: the two ways a debug link fails (a pulled cable, a target that
// hangs). Counting bytes from the moment it is armed puts the fault inside a long command rather than in
// OpenOCD's 100 ms background poll.

import net from 'node:net';

/** 'notify' relays on and only reports the moment, for faults the test injects itself. */
export type LinkFault = 'drop' | 'silence' | 'notify';

export interface FaultProxy {
  readonly port: number;
  /**
   * After `afterBytes` more bytes from OpenOCD: 'drop' closes both sides, 'silence' stops relaying in both
   * directions (until OpenOCD reconnects). Resolves at that moment.
   */
  arm(fault: LinkFault, afterBytes: number): Promise<void>;
  /** Cuts every relayed connection now, whatever OpenOCD is doing. */
  dropNow(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetHost: string, targetPort: number): Promise<FaultProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let armed: { fault: LinkFault; left: number; fired: () => void } | undefined;
  let silent = false;

  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: targetHost, port: targetPort, noDelay: true });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    silent = false;
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('data', (d: Buffer) => {
      if (silent) return;
      if (armed) {
        armed.left -= d.length;
        if (armed.left <= 0) {
          const a = armed;
          armed = undefined;
          a.fired();
          if (a.fault === 'drop') return end();
          if (a.fault === 'silence') {
            silent = true;
            return;
          }
        }
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!silent) client.write(d);
    });
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    arm(fault, afterBytes) {
      silent = false;
      return new Promise<void>((fired) => {
        armed = { fault, left: afterBytes, fired };
      });
    },
    dropNow() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
