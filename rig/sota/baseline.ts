// The baseline "strategy" (labgrid, STYLE.md): each test starts from a known state — the image in the slot
// (programmed only when pre-verify finds it missing), the target reset into it, the module registered and
// told the version the MCU runs, and no plan of an earlier test left in the plan source.
import type { Image } from '../images/image.ts';
import type { Station } from '../station/station.ts';
import { ensureRegistered } from './module.ts';
import { programProgress, silentRecorder } from './recorder.ts';
import type { Recorder } from './recorder.ts';

export interface BaselineOptions {
  signal?: AbortSignal;
  recorder?: Recorder;
  /** End the plans earlier runs created (default true). */
  clearPlans?: boolean;
}

export interface BaselineResult {
  /** False when the flash already held the image (nothing written). */
  written: boolean;
  programMs: number;
}

export async function ensureBaseline(station: Station, image: Image, opts: BaselineOptions = {}): Promise<BaselineResult> {
  const recorder = opts.recorder ?? silentRecorder;
  const signal = opts.signal;
  const T = station.timeouts;
  const o = { timeoutMs: T.commandMs + T.marginMs, ...(signal ? { signal } : {}) };
  return recorder.step(`baseline ${image.component} ${image.version}`, async () => {
    const program = () => station.probe.program(station.layout.slotAddress, image.bytes, { ...(signal ? { signal } : {}), preverify: true, ...programProgress(recorder) });
    let r;
    try {
      r = await program();
    } catch (err) {
      // An earlier test may have left OpenOCD without its target (a power cut mid-session): start it afresh once.
      if (signal?.aborted) throw err;
      await station.probe.restart({ ...(signal ? { signal } : {}) });
      r = await program();
    }
    await station.probe.reset('run', { ...(signal ? { signal } : {}) });
    if (opts.clearPlans ?? true) await station.plans.clear({ ...(signal ? { signal } : {}) });
    await station.module.qt.at(o);
    await ensureRegistered(station, { ...(signal ? { signal } : {}), recorder });
    // Also settles (10706) an OTA an interrupted earlier run left in flight: the module must start idle.
    await station.module.qt.setMcuVersion(station.component, image.version, o);
    return { written: r.written, programMs: Math.round(r.totalMs) };
  });
}
