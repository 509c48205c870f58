// The target side every flow shares: getting the probe back to a target that lost power or was reset, before
// the flash is read or written again.
import { AbortedError, InfrastructureError } from '../errors.ts';
import type { Station } from '../station/station.ts';

/**
 * How long OpenOCD's background poll may take to re-examine a target that came back: it backs off while the
 * target does not answer, up to about 5 s between attempts.
 */
export const REEXAMINE_MS = 5_000;

/**
 * After the target lost power or was reset, OpenOCD's background poll re-examines it once it answers
 * again: wait for that. Only a target still unexamined after the poll's back-off (or an OpenOCD that went
 * away) is worth an OpenOCD restart.
 */
export async function reviveProbe(station: Station, signal: AbortSignal | undefined): Promise<void> {
  const probe = station.probe;
  try {
    await probe.waitExamined(REEXAMINE_MS + station.timeouts.marginMs, { signal });
  } catch (err) {
    if (signal?.aborted || err instanceof AbortedError || !(err instanceof InfrastructureError)) throw err;
    await probe.restart({ signal });
    await probe.examine({ signal });
  }
}
