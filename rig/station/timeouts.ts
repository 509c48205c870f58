// A station's ProtocolTimeouts: the protocol's own timers (docs/protocol.md §4.2) and the rig's bounds, scaled
// by the station's time scale (the virtual station's clock) and overridden per station in config.
import type { TimeoutsConfig } from '../config/schema.ts';
import type { ProtocolTimeouts } from './station.ts';

/** At time scale 1: a real module. */
export const DEFAULT_PROTOCOL_TIMEOUTS: Readonly<ProtocolTimeouts> = {
  commandMs: 2_000,
  // A cold EC200U takes 10–15 s to print RDY; twice that before the rig calls it dead.
  bootMs: 30_000,
  // Network attach, authentication and subscription on a weak cell.
  registerMs: 60_000,
  planWaitMs: 60_000,
  urlWaitMs: 30_000,
  downloadNotifyMs: 5_000,
  readInactivityMs: 60_000,
  updateWaitMs: 20 * 60_000,
  // A status report to the cloud and its answer, on a weak cell: as long as a plan request may take, twice.
  resultWaitMs: 2 * 60_000,
  marginMs: 5_000,
};

/** Keys that are the module's (or the cloud's) timers and therefore run on its clock. */
const PROTOCOL_TIMERS = ['bootMs', 'registerMs', 'planWaitMs', 'urlWaitMs', 'downloadNotifyMs', 'readInactivityMs', 'updateWaitMs', 'resultWaitMs'] as const;

/** The smallest margin a scaled station gets: process scheduling and pty latency do not scale. */
const MIN_MARGIN_MS = 1_000;

/**
 * Defaults, overridden by `config` (values in the module's time, except commandMs and marginMs which are
 * the rig's wall clock), then the module's timers multiplied by `timeScale`. The margin shrinks with the
 * scale but never below a second.
 */
export function resolveTimeouts(config: Partial<TimeoutsConfig> = {}, timeScale = config.timeScale ?? 1): ProtocolTimeouts {
  const out: ProtocolTimeouts = { ...DEFAULT_PROTOCOL_TIMEOUTS };
  for (const key of Object.keys(out) as (keyof ProtocolTimeouts)[]) {
    const v = config[key];
    if (v !== undefined) out[key] = v;
  }
  for (const key of PROTOCOL_TIMERS) out[key] = Math.max(1, Math.round(out[key] * timeScale));
  if (config.marginMs === undefined) out.marginMs = Math.max(MIN_MARGIN_MS, Math.round(DEFAULT_PROTOCOL_TIMEOUTS.marginMs * Math.min(1, timeScale)));
  return out;
}
