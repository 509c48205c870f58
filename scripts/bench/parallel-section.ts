// Items 4 and 5 of issue 9: 1, 2 and 4 virtual stations (each its own sim) upgrading at once from one rig
// process, each through the proxy flow; every station's read-phase efficiency (protocol minimum ÷ measured)
// relative to the lone station's in the same repetition; and this process's peak RSS. The read phases are
// started together (a barrier in front of the flow's 'read blocks' step), so they overlap whole rather than
// by however long each station's baseline happened to take.
import { InfrastructureError } from '../../rig/errors.ts';
import type { OpenedStation } from '../../rig/station/index.ts';
import { rigReadPhase } from './rig-read.ts';
import type { BenchFirmware } from './stations.ts';
import { childPids, processCpuMs } from './proc.ts';
import { moduleEcho, openBenchStation } from './stations.ts';
import { protocolMinimumMs, ratio, readPhaseBlocks, wireTotals } from './wire.ts';

const BARRIER_TIMEOUT_MS = 60_000;
const RSS_SAMPLE_MS = 50;

export interface ParallelRun {
  rep: number;
  count: number;
  /** CPU spent while the read phases ran (from their common start to the last one's end), in % of one core. */
  cpu: { windowMs: number; rigPercent: number; simsPercent: number[] };
  stations: { name: string; wallMs: number; efficiency: number; relative: number }[];
  /** The lone station's efficiency in this repetition. */
  lone: number;
  /** The worst station's efficiency relative to the lone one. */
  minRelative: number;
}

export interface ParallelSectionResult {
  baud: number;
  bytes: number;
  counts: number[];
  runs: ParallelRun[];
  /**
   * Bytes: after the imports (before any station), the kernel's peak (getrusage maxrss), the sampled peak
   * and process.memoryUsage() at that sample (where the memory is: V8 heap, buffers).
   */
  rss: { start: number; peak: number; sampledPeak: number; atPeak: NodeJS.MemoryUsage };
}

/** Resolves for everyone once `n` parties arrived; bounded, so a station stuck before its read fails the run. */
function barrier(n: number, what: string, onRelease: () => void): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InfrastructureError(`${what}: not every station reached its read phase`, { expected: `${n} stations within ${BARRIER_TIMEOUT_MS} ms`, seen: `${arrived}` })),
      BARRIER_TIMEOUT_MS,
    );
  });
  timedOut.catch(() => undefined);
  void all.then(() => clearTimeout(timer));
  return async () => {
    arrived++;
    if (arrived === n) {
      onRelease();
      release();
    }
    await Promise.race([all, timedOut]);
  };
}

export async function parallelSection(fw: BenchFirmware, baud: number, counts: readonly number[], reps: number, log: (s: string) => void): Promise<ParallelSectionResult> {
  if (baud <= 0) throw new RangeError('the parallel stations need a paced UART (baud > 0) to have an efficiency');
  const rssStart = process.memoryUsage.rss();
  let atPeak = process.memoryUsage();
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > atPeak.rss) atPeak = m;
  }, RSS_SAMPLE_MS);
  sampler.unref();
  const max = Math.max(...counts);
  const stations: OpenedStation[] = [];
  try {
    for (let i = 0; i < max; i++) {
      stations.push(await openBenchStation(`bench-par-${i}`, { baud, firmware: fw, seed: i + 1 }));
      log(`  opened ${stations.at(-1)!.name}`);
    }
    const minimumMs = new Map(stations.map((s) => [s.name, protocolMinimumMs(wireTotals(readPhaseBlocks(0, fw.pkg.size, 1024), { echo: moduleEcho(s) }).lineBytes, baud)]));
    const runs: ParallelRun[] = [];
    for (let rep = 0; rep < reps; rep++) {
      let lone: number | undefined;
      for (const count of counts) {
        const group = stations.slice(0, count);
        // CPU of this process and of each sim over the window in which the read phases run together.
        const sims = childPids('sim/main');
        let start: { t: number; rig: NodeJS.CpuUsage; sims: number[] } | undefined;
        let end: { t: number; rig: NodeJS.CpuUsage; sims: number[] } | undefined;
        const snapshot = () => ({ t: performance.now(), rig: process.cpuUsage(), sims: sims.map(processCpuMs) });
        let done = 0;
        const gate = barrier(count, `${count} stations at once`, () => (start = snapshot()));
        const afterRead = () => {
          if (++done === count) end = snapshot();
        };
        const phases = await Promise.all(group.map((s) => rigReadPhase(s, fw, { beforeRead: gate, afterRead })));
        const windowMs = end!.t - start!.t;
        const rigMs = (end!.rig.user + end!.rig.system - start!.rig.user - start!.rig.system) / 1000;
        const eff = phases.map((p, i) => ratio(minimumMs.get(group[i]!.name)!, p.wallMs));
        if (count === 1) lone = eff[0];
        if (lone === undefined) throw new RangeError('the counts must start with 1 (the lone station)');
        const run: ParallelRun = {
          rep,
          count,
          lone,
          cpu: { windowMs, rigPercent: (100 * rigMs) / windowMs, simsPercent: sims.map((_, i) => (100 * (end!.sims[i]! - start!.sims[i]!)) / windowMs) },
          stations: group.map((s, i) => ({ name: s.name, wallMs: phases[i]!.wallMs, efficiency: eff[i]!, relative: eff[i]! / lone! })),
          minRelative: Math.min(...eff.map((e) => e / lone!)),
        };
        runs.push(run);
        log(
          `  ${count} station(s) #${rep + 1}: ` +
            run.stations.map((s) => `${s.name} ${s.wallMs.toFixed(0)} ms, efficiency ${s.efficiency.toFixed(3)} (${s.relative.toFixed(3)} of lone)`).join('; ') +
            `; CPU rig ${run.cpu.rigPercent.toFixed(0)}%, sims ${run.cpu.simsPercent.map((p) => p.toFixed(0)).join('/')}% of a core`,
        );
      }
    }
    clearInterval(sampler);
    return {
      baud,
      bytes: fw.pkg.size,
      counts: [...counts],
      runs,
      rss: { start: rssStart, peak: process.resourceUsage().maxRSS * 1024, sampledPeak: atPeak.rss, atPeak },
    };
  } finally {
    clearInterval(sampler);
    const closing = await Promise.allSettled(stations.map((s) => s.close()));
    for (const c of closing) if (c.status === 'rejected') log(`  closing a station failed: ${c.reason instanceof Error ? c.reason.message : String(c.reason)}`);
  }
}
