// Typed errors for the whole rig. Every failure says what was expected, what was seen, and on which
// station, so that a report read at 8 a.m. needs no rerun. The `kind` keeps infrastructure trouble
// (a vanished port, an OpenOCD that died) apart from protocol and firmware failures: suites retry only
// the former (docs/architecture.md §4). 'internal' is the rig's own bug (a TypeError in a flow): never retried, never
// held against a station.

export type FailureKind = 'infrastructure' | 'protocol' | 'firmware' | 'config' | 'usage' | 'internal';

export interface RigErrorDetails {
  /** Station name ("bench-2", "virtual"); omitted only where no station is known yet. */
  station?: string;
  /** What the rig expected, in the protocol's own words. */
  expected?: string;
  /** What it saw instead. */
  seen?: string;
  /** The last lines of the relevant transcript or log, newest last. */
  lastLines?: readonly string[];
  cause?: unknown;
}

function formatMessage(summary: string, d: RigErrorDetails): string {
  const head = d.station ? `${d.station}: ${summary}` : summary;
  const parts: string[] = [];
  if (d.expected !== undefined) parts.push(`expected ${d.expected}`);
  if (d.seen !== undefined) parts.push(`seen ${d.seen}`);
  if (d.lastLines && d.lastLines.length > 0) {
    parts.push(`last lines seen: ${d.lastLines.map((l) => JSON.stringify(l)).join(', ')}`);
  }
  return parts.length > 0 ? `${head}\n  (${parts.join('; ')})` : head;
}

export abstract class RigError extends Error {
  abstract readonly kind: FailureKind;
  readonly station: string | undefined;
  readonly expected: string | undefined;
  readonly seen: string | undefined;
  readonly lastLines: readonly string[];
  readonly summary: string;

  constructor(summary: string, details: RigErrorDetails = {}) {
    super(formatMessage(summary, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.summary = summary;
    this.station = details.station;
    this.expected = details.expected;
    this.seen = details.seen;
    this.lastLines = details.lastLines ?? [];
  }

  /**
   * The stack as reports get it: its first line carries the kind ("AtTimeoutError [protocol]: bench-2: …"),
   * which reports/categories.json matches, so that a new subclass lands in its kind's category unlisted.
   */
  get kindedStack(): string {
    const stack = this.stack ?? `${this.name}: ${this.message}`;
    const tag = `${this.name} [${this.kind}]`;
    return stack.startsWith(this.name) ? `${tag}${stack.slice(this.name.length)}` : `${tag}: ${this.message}\n${stack}`;
  }

  // vitest hands errors to reporters (allure-vitest's trace) and to retry conditions as their toJSON().
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      message: this.message,
      stack: this.kindedStack,
      station: this.station,
      expected: this.expected,
      seen: this.seen,
      lastLines: this.lastLines,
    };
  }
}

/** The rig's own equipment failed: a port vanished, OpenOCD died or hung, a lock is held elsewhere. */
export class InfrastructureError extends RigError {
  readonly kind = 'infrastructure' as const;
}

/** The module or the cloud did not follow the QuecThing protocol as expected. */
export class ProtocolError extends RigError {
  readonly kind = 'protocol' as const;
}

/** The firmware (image, package, flash contents) is wrong. */
export class FirmwareError extends RigError {
  readonly kind = 'firmware' as const;
}

/** The configuration is invalid; exit code 2 in the CLI. */
export class ConfigError extends RigError {
  readonly kind = 'config' as const;
}

/** An operation was cancelled through its AbortSignal (test timeout, Ctrl-C). */
export class AbortedError extends RigError {
  readonly kind = 'infrastructure' as const;
}

/**
 * The rig itself is wrong: a bug, not the station, the module or the firmware. A flow reports any error that
 * is not a RigError (a TypeError, a RangeError) with this kind.
 */
export class InternalError extends RigError {
  readonly kind = 'internal' as const;
}

export function isRigError(e: unknown): e is RigError {
  return e instanceof RigError;
}

/** True for errors that a suite may retry: the station's equipment, not the firmware, failed. */
export function isInfrastructureError(e: unknown): boolean {
  return e instanceof RigError && e.kind === 'infrastructure';
}
