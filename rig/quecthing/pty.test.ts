// QuecThing over a real pty pair (socat): what binding-mock cannot show, a port that vanishes under a wait.
// Apart from quecthing.test.ts because a real serial port cannot be opened from a worker thread, where
// `npm run mutate` runs its tests.
import { expect, it } from 'vitest';
import { AtPort } from '../at/index.ts';
import { answer } from '../at/testing/peer.ts';
import { openPtyPeer, startPtyPair } from '../at/testing/pty.ts';
import { InfrastructureError } from '../errors.ts';
import { isEvent } from './events.ts';
import { QuecThing, UpdateAction } from './quecthing.ts';

it('ends a wait with the port error when the port goes away (real pty, socat killed)', async () => {
  const pair = await startPtyPair();
  const module = await openPtyPeer(pair.b, (cmd, p) => void p.send(answer('OK', '+QIOTEVT: 7,10702')));
  const port = new AtPort({ station: 'bench-1', path: pair.a });
  try {
    await port.open();
    const qt = new QuecThing(port);
    const events = qt.events();
    await qt.otaUpdate(UpdateAction.confirm);
    await events.next(isEvent('ota-downloading'), { timeoutMs: 2000 });
    const waiting = events.next(isEvent('ota-success'), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await pair.kill();
    const err = (await waiting) as Error;
    expect(err).toBeInstanceOf(InfrastructureError);
    expect(err.message).toContain(`bench-1: port ${pair.a} vanished (disconnected)`);
  } finally {
    await port.close();
    await module.close();
    await pair.dispose();
  }
});
