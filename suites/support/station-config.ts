// Which station the suites run on, and with what: RIG_STATION (default: the built-in `virtual` station)
// from the rig's config (rig.config.ts, RIG_CONFIG). A virtual station additionally gets the sim options a
// suite needs (a small module free space for multi-piece downloads, a slower download so that 10702s come
// while downloading); the built-in `virtual` station also gets the suites' speed settings (time scale).
// A hardware station is used exactly as configured. The test timeouts derive from the station's own
// protocol timers, so the same suite bounds its waits on a fast virtual station and on a bench.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseOrThrow, virtualStationSchema } from '../../rig/config/index.ts';
import type { LoadedConfig, StationConfig, VirtualStationInput } from '../../rig/config/index.ts';
import { ConfigError } from '../../rig/errors.ts';
import { currentManifestPath } from '../../rig/images/index.ts';
import { resolveTimeouts } from '../../rig/station/index.ts';
import type { ProtocolTimeouts } from '../../rig/station/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const STATION = process.env.RIG_STATION?.trim() || 'virtual';
/** The firmware set the suites upgrade between (RIG_MANIFEST, default fixtures/manifest.json). */
export const MANIFEST = currentManifestPath();

/**
 * The built-in virtual station's speed for the suites (measured: see suites/README.md). Time scale 0.1 runs
 * every protocol timer 10× faster (the 60 s read inactivity becomes 6 s, far above one block's 0.1 s),
 * while the UART keeps its real pace at 115200 baud, so the read phase is as long as on a bench.
 */
export const SUITE_SPEED: Pick<VirtualStationInput, 'timeScale' | 'baud'> = { timeScale: 0.1, baud: 115200 };

export interface SuiteStationOptions {
  /** Sim options this suite needs from any virtual station. */
  sim?: Partial<VirtualStationInput>;
  /** Speed settings for the built-in `virtual` station only (a user's virtual station keeps its own). */
  speed?: Partial<Pick<VirtualStationInput, 'timeScale' | 'baud'>>;
}

export interface SuiteStation {
  name: string;
  config: LoadedConfig;
  entry: StationConfig;
  timeouts: ProtocolTimeouts;
  timeScale: number;
  /** What was changed for the suite, for the report ("timeScale=0.1, moduleFreeSpace=10240"). */
  adjustments: string[];
}

export async function suiteStation(opts: SuiteStationOptions = {}, flashImage?: string): Promise<SuiteStation> {
  const config = await loadConfig({ cwd: ROOT });
  const entry = Object.hasOwn(config.stations, STATION) ? config.stations[STATION] : undefined;
  if (!entry) {
    throw new ConfigError(`RIG_STATION names no station of the config`, {
      station: STATION,
      expected: `one of ${Object.keys(config.stations).join(', ')} (${config.source ?? 'no config file: only the virtual station'})`,
      seen: STATION,
    });
  }
  if (entry.kind !== 'virtual') {
    const timeouts = resolveTimeouts(entry.timeouts);
    return { name: STATION, config, entry, timeouts, timeScale: entry.timeouts.timeScale, adjustments: [] };
  }
  const extra: Partial<VirtualStationInput> = {
    ...(STATION === 'virtual' ? { ...SUITE_SPEED, ...opts.speed } : {}),
    // A fresh sim starts with the baseline already in flash, so the first test need not program it.
    ...(flashImage !== undefined && entry.flashImage === undefined ? { flashImage } : {}),
    ...opts.sim,
  };
  const merged = parseOrThrow(virtualStationSchema, { ...entry, ...extra }, `suite options for station ${STATION}`);
  const adjustments = Object.entries(extra).map(([k, v]) => `${k}=${k === 'flashImage' ? path.relative(ROOT, String(v)) : JSON.stringify(v)}`);
  const stations = { ...config.stations, [STATION]: merged };
  const timeouts = resolveTimeouts({ ...merged.timeouts, timeScale: merged.timeScale });
  return { name: STATION, config: { ...config, stations }, entry: merged, timeouts, timeScale: merged.timeScale, adjustments };
}

/** The longest images and packages the suites move, for time bounds that grow with size. */
export interface SizeFacts {
  imageBytes: number;
  slotBytes: number;
  baudRate: number;
}

/** 10702 periods the suites allow one piece's download at least (a minute on a real module). */
export const SUITE_DOWNLOAD_PERIODS = 12;

/**
 * Upper bounds for one test, from the station's protocol timers: they bound hangs, they are not
 * performance targets. Programming is bounded at 1 KiB/s (the virtual STM32 programs 80–190 KiB/s through
 * its Bus Pirate with OpenOCD's flash loader on a loaded 2-core machine, 3–5 KiB/s a station without a work
 * area would) and reading back at 20 KiB/s.
 *
 * `downloadLimitMs` is the flow's limit on one piece's download in the suites (its `downloadLimitMs`): the
 * URL wait, then at least 1 KiB/s of the module's time, at least SUITE_DOWNLOAD_PERIODS periods of 10702.
 * The upgrade budget holds it whole, so that a stalled download ends in the flow's own timeout verdict,
 * not in vitest's timeout (the flow's default, 120 periods, is 10 minutes on a real module).
 */
export function testBudget(t: ProtocolTimeouts, s: SizeFacts): { baseline: number; upgrade: number; module: number; downloadLimitMs: number } {
  const periods = Math.max(SUITE_DOWNLOAD_PERIODS, Math.ceil(s.imageBytes / (5 * 1024)));
  const downloadLimitMs = t.urlWaitMs + periods * t.downloadNotifyMs + t.marginMs;
  const programMs = (s.imageBytes / 1024) * 1000;
  const readbackMs = (s.slotBytes / (20 * 1024)) * 1000 + 2_000;
  // The UART at 10 bits per byte, plus per-block overhead, twice over for a restarted download.
  const readPhaseMs = ((s.imageBytes * 10 * 1000) / s.baudRate) * 2 * 1.5;
  const baseline = t.bootMs + t.registerMs + programMs + readbackMs + 4 * t.marginMs + 10_000;
  const upgrade =
    t.registerMs + t.planWaitMs + downloadLimitMs + 2 * t.urlWaitMs + 4 * t.downloadNotifyMs + t.readInactivityMs + readPhaseMs + programMs + readbackMs + 10 * t.marginMs + 10_000;
  const module = t.bootMs + t.registerMs + 10 * t.commandMs + 4 * t.marginMs + 10_000;
  return { baseline: Math.round(baseline), upgrade: Math.round(upgrade), module: Math.round(module), downloadLimitMs: Math.round(downloadLimitMs) };
}
