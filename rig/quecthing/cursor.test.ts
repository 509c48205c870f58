import { describe, expect, it } from 'vitest';
import { InfrastructureError } from '../errors.ts';
import { EventCursor } from './cursor.ts';
import type { CursorSource } from './cursor.ts';
import { isEvent, parseModuleEvent } from './events.ts';
import type { ModuleEvent } from './events.ts';

/** A source driven by the test: the same contract QuecThing gives the cursor. */
function source() {
  const subs = new Set<(e: ModuleEvent) => void>();
  const gone = new Set<(err: InfrastructureError) => void>();
  const s: CursorSource = {
    station: 'bench-3',
    portPath: '/dev/ttyUSB2',
    subscribe: (fn) => (subs.add(fn), () => subs.delete(fn)),
    onDisconnect: (fn) => (gone.add(fn), () => gone.delete(fn)),
  };
  return {
    s,
    push: (line: string) => subs.forEach((f) => f(parseModuleEvent(line))),
    vanish: () => gone.forEach((f) => f(new InfrastructureError('port /dev/ttyUSB2 vanished', { station: 'bench-3' }))),
    listeners: () => subs.size + gone.size,
  };
}

describe('EventCursor', () => {
  it('buffers from creation, so an event before the wait is not missed', async () => {
    const src = source();
    const c = new EventCursor(src.s);
    src.push('+QIOTEVT: 7,10704');
    await expect(c.next(isEvent('ota-updating'), { timeoutMs: 1000 })).resolves.toMatchObject({ code: 10704 });
  });

  it('keeps waits in order: a consumed event is not delivered twice', async () => {
    const src = source();
    const c = new EventCursor(src.s);
    src.push('+QIOTEVT: 7,10702');
    src.push('+QIOTEVT: 7,10702');
    await c.next(isEvent('ota-downloading'), { timeoutMs: 1000 });
    await c.next(isEvent('ota-downloading'), { timeoutMs: 1000 });
    await expect(c.next(isEvent('ota-downloading'), { timeoutMs: 20 })).rejects.toThrow(/no matching event within 20 ms/);
  });

  it('stays bounded when nobody reads, and counts what it dropped', () => {
    const src = source();
    const c = new EventCursor(src.s, 10);
    for (let i = 0; i < 25; i++) src.push('+QIOTEVT: 7,10702');
    expect(c.history).toHaveLength(10);
    expect(c.overflowed).toBe(15);
  });

  it('fails a wait, current or later, once the port is gone; close unsubscribes', async () => {
    const src = source();
    const c = new EventCursor(src.s);
    const waiting = c.next(isEvent('ota-success'), { timeoutMs: 60_000 });
    src.vanish();
    await expect(waiting).rejects.toThrow(/bench-3: port \/dev\/ttyUSB2 vanished/);
    await expect(c.next(isEvent('ota-success'), { timeoutMs: 60_000 })).rejects.toBeInstanceOf(InfrastructureError);
    expect(src.listeners()).toBe(2);
    c.close();
    expect(src.listeners()).toBe(0);
  });

  it('allows one wait at a time', async () => {
    const src = source();
    const c = new EventCursor(src.s);
    const first = c.next(isEvent('ota-success'), { timeoutMs: 1000 });
    await expect(c.next(isEvent('ota-failed'), { timeoutMs: 1000 })).rejects.toThrow(/one wait at a time/);
    src.push('+QIOTEVT: 7,10705');
    await expect(first).resolves.toMatchObject({ kind: 'ota-success' });
  });
});
