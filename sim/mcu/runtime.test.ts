// The MCU's clock: frozen by a halt, dropped by a restart, and in order whatever the host's timers do — a
// host that runs the MCU's overdue timers late and in the wrong order still sees its events in MCU-time order.
import { describe, expect, test } from 'vitest';
import { ManualClock } from '../clock.ts';
import { McuRuntime, type WallClock } from './runtime.ts';

/** A host under load: time jumps, then every overdue timer fires, the latest created first. */
class LaggyClock implements WallClock {
  private t = 0;
  private timers: { due: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    const timer = { due: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }
  async jump(ms: number): Promise<void> {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.due <= this.t).reverse();
      if (due.length === 0) return;
      for (const x of due) {
        x.live = false;
        x.fn();
        await new Promise((r) => setImmediate(r));
      }
    }
  }
}

describe('McuRuntime', () => {
  test('a watchdog fed every 25 ms never fires, even when the host runs its timers 150 ms late and out of order', async () => {
    const clock = new LaggyClock();
    const rt = new McuRuntime(clock);
    rt.setRunning(true);
    let fired = 0;
    let dog = rt.after(100, () => fired++);
    const feed = (): void => {
      dog.cancel();
      dog = rt.after(100, () => fired++);
      rt.after(25, feed);
    };
    rt.after(25, feed);
    for (let i = 0; i < 40; i++) await clock.jump(150);
    expect(fired).toBe(0);
    expect(rt.now()).toBeGreaterThan(5_000);
    // Left alone, it fires once, 100 ms after the last feed.
    rt.restart();
    rt.after(100, () => fired++);
    await clock.jump(150);
    expect(fired).toBe(1);
  });

  test('what an event wakes runs before the next event, so a chain of short waits precedes a later deadline', async () => {
    const clock = new LaggyClock();
    const rt = new McuRuntime(clock);
    rt.setRunning(true);
    const order: string[] = [];
    rt.after(50, () => order.push('deadline at 50'));
    void (async () => {
      for (let i = 1; i <= 4; i++) {
        await rt.sleep(10);
        order.push(`step ${i} at ${rt.now()}`);
      }
    })();
    await clock.jump(500);
    expect(order).toEqual(['step 1 at 10', 'step 2 at 20', 'step 3 at 30', 'step 4 at 40', 'deadline at 50']);
  });

  test('a halt freezes the clock and every timer; resume continues from where it stood; a restart drops the waits', async () => {
    const clock = new ManualClock();
    const rt = new McuRuntime(clock);
    rt.setRunning(true);
    let woke = false;
    void rt.sleep(100).then(() => void (woke = true));
    await clock.advance(60);
    rt.setRunning(false);
    await clock.advance(1_000);
    expect(rt.now()).toBe(60);
    expect(woke).toBe(false);
    rt.setRunning(true);
    await clock.advance(39);
    expect(woke).toBe(false);
    await clock.advance(1);
    expect(woke).toBe(true);

    let late = false;
    let waited: boolean | undefined;
    void rt.sleep(10).then(() => void (late = true));
    void rt.until(() => false, 50).then((v) => void (waited = v));
    rt.restart();
    await clock.advance(100);
    expect(late).toBe(false);
    expect(waited).toBeUndefined();
  });

  test('until(): a notify while halted is looked at when the core runs again; a timeout says false', async () => {
    const clock = new ManualClock();
    const rt = new McuRuntime(clock);
    rt.setRunning(true);
    let ready = false;
    let got: boolean | undefined;
    void rt.until(() => ready, 1_000).then((v) => void (got = v));
    rt.setRunning(false);
    ready = true;
    rt.notify();
    await clock.advance(10);
    expect(got).toBeUndefined();
    rt.setRunning(true);
    await clock.advance(0);
    expect(got).toBe(true);
    let timedOut: boolean | undefined;
    void rt.until(() => false, 200).then((v) => void (timedOut = v));
    await clock.advance(200);
    expect(timedOut).toBe(false);
  });
});
