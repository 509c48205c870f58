// The module-side chores every flow shares: registration (protocol §2.2, §5) and bounded, abortable pauses.
import { AbortedError } from '../errors.ts';
import type { ModuleEvent } from '../quecthing/events.ts';
import type { Station } from '../station/station.ts';
import { silentRecorder } from './recorder.ts';
import type { Recorder } from './recorder.ts';

const connectionEvent = (e: ModuleEvent): boolean => e.kind === 'auth' || e.kind === 'connect' || e.kind === 'subscribe';

/**
 * Makes sure the module is subscribed (AT+QIOTSTATE? 8). Otherwise configures the product info when the
 * station has it and the module holds another, sends AT+QIOTREG=1 (mode 1 reverts to 0 at every boot, §2.2)
 * and waits for +QIOTEVT: 3,10200; an authentication, connection or subscription error ends the wait.
 */
export async function ensureRegistered(station: Station, opts: { signal?: AbortSignal; recorder?: Recorder } = {}): Promise<void> {
  const { signal } = opts;
  const recorder = opts.recorder ?? silentRecorder;
  const qt = station.module.qt;
  const T = station.timeouts;
  const o = { timeoutMs: T.commandMs + T.marginMs, ...(signal ? { signal } : {}) };
  // Armed before the state query, so a 3,10200 that lands between the query and the wait is not lost.
  const events = qt.events();
  try {
    const st = await qt.state(o);
    if (st.state === 8) return;
    await recorder.step('register (AT+QIOTREG=1)', async () => {
      const info = station.module.productInfo;
      if (info) {
        const now = await qt.productInfo(o);
        if (now.productKey !== info.productKey || now.productSecret !== info.productSecret) {
          // Product info changes only while disconnected (§2.1).
          if ((await qt.registration(o)) !== 0) await qt.register(0, o);
          await qt.setProductInfo(info.productKey, info.productSecret, o);
        }
      }
      await qt.register(1, o);
      await events.next((e) => e.kind === 'subscribe' && e.code === 10200, {
        timeoutMs: T.registerMs + T.marginMs,
        ...(signal ? { signal } : {}),
        expected: '+QIOTEVT: 3,10200 after AT+QIOTREG=1',
        failOn: (e) => connectionEvent(e) && 'code' in e && e.code !== 10200,
      });
    });
  } finally {
    events.close();
  }
}

/** A pause of a length the caller chose (a fault's duration), cut short by `signal`. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => new AbortedError(`pause of ${ms} ms aborted`, { cause: signal?.reason });
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
