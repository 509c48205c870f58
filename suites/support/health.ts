// A station that keeps failing for infrastructure reasons is marked broken for the rest of the run
// (docs/architecture.md §4): its remaining tests fail at once with the reason, instead of each spending its time
// budget on a dead port. Suite files run in separate worker processes, so the ledger is a small JSON file
// per station in the run's directory (suites/global-setup.ts provides it; one `vitest run` = one run).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InfrastructureError } from '../../rig/errors.ts';

/**
 * Consecutive infrastructure failures (test attempts, retries included) after which a station is broken.
 * With two retries per test, that is one test failing three times in a row, or failures spread over tests
 * with nothing passing in between.
 */
export const BROKEN_AFTER = 3;

export interface HealthRecord {
  station: string;
  /** Infrastructure failures since the last passing attempt. */
  consecutive: number;
  /** Set once the station is broken: why, and which test said so last. */
  broken: { reason: string; test: string; at: string } | null;
  last: { test: string; error: string } | null;
}

/** An InfrastructureError (the name the report's categories match) that retries must not repeat. */
export class StationBrokenError extends InfrastructureError {
  readonly stationBroken = true;
  constructor(station: string, record: HealthRecord) {
    super(`station ${station} is marked broken for the rest of this run`, {
      station,
      expected: 'a working station',
      seen: `${record.broken?.reason ?? 'repeated infrastructure failures'} (marked by "${record.broken?.test ?? '?'}" at ${record.broken?.at ?? '?'})`,
    });
    // What the run's messages and retry condition have always called it.
    this.name = 'InfrastructureError';
  }

  // vitest hands errors to the retry condition as their toJSON().
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), stationBroken: true };
  }
}

/**
 * A station's name in the run's records. A virtual station is started per suite file (each file has its own
 * sim), so its records are per file too: one file's dead sim says nothing of another's, and one worker
 * process alone then writes each record (no read-modify-write between processes).
 */
export function stationScope(station: string, virtual: boolean, testFile: string): string {
  return virtual ? `${station}.${path.basename(testFile).replace(/\.test\.[cm]?[jt]s$/, '')}` : station;
}

export class HealthLedger {
  private readonly file: string;

  constructor(
    runDir: string,
    readonly station: string,
    /** The record's key: stationScope(); the station's name by default. */
    scope: string = station,
  ) {
    mkdirSync(runDir, { recursive: true });
    this.file = path.join(runDir, `${scope.replace(/[^A-Za-z0-9_.-]/g, '_')}.health.json`);
  }

  read(): HealthRecord {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as HealthRecord;
    } catch {
      return { station: this.station, consecutive: 0, broken: null, last: null };
    }
  }

  private write(r: HealthRecord): void {
    // Test files of the virtual station run in parallel workers: a reader must never see half a record
    // (it would read as "healthy" and forget a broken mark), so the record is replaced whole.
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
    renameSync(tmp, this.file);
  }

  /** Throws StationBrokenError when an earlier test marked the station broken. */
  check(): void {
    const r = this.read();
    if (r.broken) throw new StationBrokenError(this.station, r);
  }

  passed(): void {
    const r = this.read();
    if (r.broken) return;
    this.write({ ...r, consecutive: 0 });
  }

  /** Records an attempt that ended in an infrastructure failure; returns true when that made it broken. */
  infrastructureFailure(test: string, error: string): boolean {
    const r = this.read();
    if (r.broken) return false;
    const consecutive = r.consecutive + 1;
    const next: HealthRecord = { ...r, consecutive, last: { test, error } };
    if (consecutive >= BROKEN_AFTER) {
      next.broken = { reason: `${consecutive} infrastructure failures in a row, the last: ${error.split('\n')[0]}`, test, at: new Date().toISOString() };
    }
    this.write(next);
    return next.broken !== null;
  }

  /** Any other failure (protocol, firmware, an assertion) says the station itself answered. */
  otherFailure(): void {
    this.passed();
  }
}

/**
 * A failed check of the station's health suite (suites/health): infrastructure whatever the part said (a
 * module that answers ERROR to AT is as broken a station as one whose port vanished), named after the check,
 * with the part's own error as what was seen.
 */
export class HealthCheckError extends InfrastructureError {
  constructor(station: string, check: string, cause: unknown) {
    const seen = cause instanceof Error ? cause.message : String(cause);
    super(`health check failed: ${check}`, { station, expected: 'a station that passes its health check before the night\'s tests', seen, cause });
  }
}
