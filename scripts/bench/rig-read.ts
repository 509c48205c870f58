// The rig's read phase, measured where the suites run it: rig/sota's proxy flow. A recorder (the flow's own
// hook for steps) times the flow's 'read blocks' step in wall and CPU time, and stops the upgrade when the
// flow reaches 'verify package': programming a 256 KiB image through the virtual target's halfword writes
// takes about a minute and is not what this figure is about. The flow's run record must agree with the
// recorder (bytes, blocks, one read phase), so the bench measures the flow and not something beside it.
import { AbortedError, InfrastructureError } from '../../rig/errors.ts';
import { runProxyUpgrade } from '../../rig/sota/index.ts';
import type { ProxyRun, Recorder } from '../../rig/sota/index.ts';
import type { OpenedStation } from '../../rig/station/index.ts';
import type { BenchFirmware } from './stations.ts';
import { baseline, settleOta } from './stations.ts';
import { median, quantile } from './wire.ts';

export interface ReadPhase {
  /** Wall time of the flow's 'read blocks' step. */
  wallMs: number;
  /** This process's CPU time (user + system) over that step, microseconds. */
  cpuMicros: number;
  bytes: number;
  blocks: number;
  /** The run record's own figures, for the report: the step's duration and the sum of the block reads. */
  record: { phaseMs: number; readMs: number; bytesPerSecond: number };
  /**
   * The rig's own share of each block, from its AT transcript: from the `OK` that ends a block's answer to
   * the next AT+QIOTOTARD written (ms; median, 90th percentile, sum over the phase).
   */
  turnaround: { medianMs: number; p90Ms: number; totalMs: number };
  /** From AT+QIOTOTARD leaving to its OK parsed, median ms: the line time plus the module's and the receive path's. */
  answerMs: number;
}

const READ_STEP = 'read blocks';
const STOP_STEP = 'verify package';

export interface ReadPhaseOptions {
  signal?: AbortSignal;
  /** Awaited when the flow reaches its read phase, before the timing starts (parallel stations start together). */
  beforeRead?: () => Promise<void>;
  /** Called when the read phase ends (or fails). */
  afterRead?: () => void;
}

/** One upgrade through the proxy flow, stopped after its read phase; the station is left settled. */
export async function rigReadPhase(station: OpenedStation, fw: BenchFirmware, opts: ReadPhaseOptions = {}): Promise<ReadPhase> {
  const { signal } = opts;
  await baseline(station, fw, signal);
  const stop = new AbortController();
  let measured: { wallMs: number; cpuMicros: number } | undefined;
  let readSteps = 0;
  const recorder: Recorder = {
    async step(name, body) {
      if (name === STOP_STEP) {
        stop.abort(new Error('read phase measured'));
        throw new AbortedError('the bench stops the upgrade after its read phase', { station: station.name });
      }
      if (!name.startsWith(READ_STEP)) return body();
      readSteps++;
      await opts.beforeRead?.();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        return await body();
      } finally {
        const cpu = process.cpuUsage(c0);
        measured = { wallMs: performance.now() - t0, cpuMicros: cpu.user + cpu.system };
        opts.afterRead?.();
      }
    },
    attach: () => undefined,
    measure: () => undefined,
  };
  const gaps: number[] = [];
  const answers: number[] = [];
  let inBlock = false;
  let okAt: number | undefined;
  let sentAt: number | undefined;
  let echoes = 0;
  const off = station.module.at.on('transcript', (e) => {
    const now = performance.now();
    if (e.dir === 'RX' && e.text.startsWith('AT+QIOTOTARD=')) echoes++;
    if (e.dir === 'RX' && e.text.startsWith('+QIOTOTARD:')) inBlock = true;
    else if (e.dir === 'RX' && e.text === 'OK' && inBlock) {
      okAt = now;
      inBlock = false;
      if (sentAt !== undefined) answers.push(now - sentAt);
      sentAt = undefined;
    } else if (e.dir === 'TX' && e.text.startsWith('AT+QIOTOTARD=')) {
      sentAt = now;
      if (okAt !== undefined) gaps.push(now - okAt);
      okAt = undefined;
    }
  });
  let run: ProxyRun;
  try {
    run = await runProxyUpgrade(station, {
      plan: { component: station.component, package: fw.pkg },
      current: fw.current,
      recorder,
      signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
    });
  } finally {
    off();
  }
  signal?.throwIfAborted();
  check(station, run, fw, readSteps, stop.signal.aborted);
  // The echo-free figure is only one if the station's setting held through the read phase.
  if (station.module.echoSetting === 'off' && echoes > 0) {
    throw new InfrastructureError("the module echoed block reads on a station with module.echo 'off'", { station: station.name, expected: 'no echo of AT+QIOTOTARD', seen: `${echoes} echoes` });
  }
  await settleOta(station, fw, signal);
  const phase = run.phases.find((p) => p.name === READ_STEP)!;
  return {
    wallMs: measured!.wallMs,
    cpuMicros: measured!.cpuMicros,
    bytes: run.read.bytes,
    blocks: run.read.blocks,
    record: { phaseMs: phase.durationMs, readMs: run.read.ms, bytesPerSecond: run.read.bytesPerSecond },
    turnaround: { medianMs: median(gaps), p90Ms: quantile(gaps, 0.9), totalMs: gaps.reduce((a, b) => a + b, 0) },
    answerMs: median(answers),
  };
}

/** The run must have read the whole package once, in one piece, and stopped where the bench stopped it. */
function check(station: OpenedStation, run: ProxyRun, fw: BenchFirmware, readSteps: number, stopped: boolean): void {
  const problems: string[] = [];
  if (!stopped) problems.push(`the flow never reached '${STOP_STEP}'`);
  if (readSteps !== 1) problems.push(`${readSteps} read phases instead of 1`);
  if (run.read.bytes !== fw.pkg.size) problems.push(`${run.read.bytes} bytes read instead of ${fw.pkg.size}`);
  const unexpected = run.errors.filter((e) => !(e.name === 'AbortedError' && e.phase === 'download'));
  if (unexpected.length > 0) problems.push(`errors: ${unexpected.map((e) => `${e.phase}: ${e.message.split('\n')[0]}`).join('; ')}`);
  if (problems.length > 0) {
    throw new InfrastructureError('the measured upgrade did not run as the bench needs', {
      station: station.name,
      expected: `one read phase of ${fw.pkg.size} bytes, then a stop at '${STOP_STEP}'`,
      seen: problems.join('; '),
    });
  }
}
