// What every upgrade flow (proxy, dut) keeps while it runs: one monotonic clock, the phase it is in, its
// steps with their durations, the errors it met (recovered or not), the faults that fired, and the module's
// events and AT transcript as the record has them. The flows decide what happens; this only remembers it, in
// the shape of the run record (record.ts), and hands steps to the Recorder.
import { AtTimeoutError } from '../at/errors.ts';
import { BoundedLog, type DroppedEntries, type TranscriptEntry } from '../at/transcript.ts';
import { RigError } from '../errors.ts';
import type { FailureKind } from '../errors.ts';
import { EventTimeoutError } from '../quecthing/cursor.ts';
import type { ModuleEvent } from '../quecthing/events.ts';
import { ProtocolError } from '../errors.ts';
import type { FiredFault, RecordedError, RecordedEvent, RecordedLine, RecordedPhase } from './record.ts';
import type { Recorder } from './recorder.ts';

/** A protocol timer that runs on the module and that the flow, as the MCU, let run out (or was about to). */
export class ProtocolTimerError extends ProtocolError {
  constructor(
    readonly timer: 'read-inactivity' | 'update-wait',
    summary: string,
    details: ConstructorParameters<typeof ProtocolError>[1],
  ) {
    super(summary, details);
  }
}

export interface ErrorInfo {
  kind: FailureKind;
  name: string;
  message: string;
  timeout: boolean;
}

/** How an error counts for the verdict: its kind, and whether it is a wait that ran out. */
export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof RigError) {
    return { kind: err.kind, name: err.name, message: err.message, timeout: err instanceof EventTimeoutError || err instanceof AtTimeoutError || err instanceof ProtocolTimerError };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  // Anything else is the rig's own bug: not the firmware's, and not the station's either (retrying it or
  // counting it towards a broken station would hide it).
  return { kind: 'internal', name: e.name, message: e.message, timeout: false };
}

/** A run's transcript budget: every block read of a 4 MiB package fits, with its commands and answers. */
export const RUN_TRANSCRIPT_MAX_BYTES = 4 * 1024 * 1024;

export class RunLog {
  /** performance.now() when the run started: run time 0. */
  readonly origin = performance.now();
  readonly startedAt = new Date().toISOString();
  /** The flow's phase, as errors and fired faults are labelled with it. */
  phase = 'prepare';
  readonly events: RecordedEvent[] = [];
  /** The run's AT transcript, oldest entries dropped beyond the budget (a garbage-spewing module, a very long run). */
  private readonly lines: BoundedLog<RecordedLine>;
  readonly phases: RecordedPhase[] = [];
  readonly errors: RecordedError[] = [];
  readonly fired: FiredFault[] = [];
  private readonly stepCount = new Map<string, number>();

  constructor(
    readonly recorder: Recorder,
    transcriptMaxBytes = RUN_TRANSCRIPT_MAX_BYTES,
  ) {
    this.lines = new BoundedLog<RecordedLine>(transcriptMaxBytes);
  }

  /** The transcript as the record keeps it, oldest first. */
  get transcript(): RecordedLine[] {
    return this.lines.all() as RecordedLine[];
  }

  /** What the transcript's budget made it drop; undefined when nothing was. */
  get transcriptDropped(): DroppedEntries | undefined {
    const d = this.lines.dropped;
    return d ? { ...d } : undefined;
  }

  /** Milliseconds since the run started, to a tenth. */
  now(): number {
    return Math.round((performance.now() - this.origin) * 10) / 10;
  }

  /** Milliseconds since the run started for a performance.now() instant, to a tenth. */
  at(instant: number): number {
    return Math.round((instant - this.origin) * 10) / 10;
  }

  /** A named step: the Recorder's, and a phase of the record with its duration. Repeats are numbered. */
  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    const n = (this.stepCount.get(name) ?? 0) + 1;
    this.stepCount.set(name, n);
    const label = n === 1 || name.includes('(attempt') ? name : `${name} #${n}`;
    const start = this.now();
    let ok = false;
    try {
      const r = await this.recorder.step(label, body);
      ok = true;
      return r;
    } finally {
      const end = this.now();
      this.phases.push({ name: label, start, end, durationMs: Math.round((end - start) * 10) / 10, ok });
    }
  }

  numbered(name: string, attempt: number): string {
    return attempt === 0 ? name : `${name} (attempt ${attempt + 1})`;
  }

  noteError(err: unknown, recovered: boolean): void {
    const i = errorInfo(err);
    this.errors.push({ t: this.now(), phase: this.phase, kind: i.kind, name: i.name, message: i.message, recovered });
  }

  noteFired(fault: string, t: number, phase: string, effect: string): void {
    this.fired.push({ fault, t, phase, effect });
  }

  /** A module event as the record keeps it. */
  addEvent(e: ModuleEvent): void {
    const rec: RecordedEvent = { t: this.now(), raw: e.raw, kind: e.kind };
    if ('code' in e && e.code !== undefined) rec.code = e.code;
    this.events.push(rec);
  }

  addTranscript(x: TranscriptEntry): void {
    this.lines.push({ t: this.now(), dir: x.dir, text: x.text, ...(x.binary ? { binary: { ...x.binary } } : {}) });
  }

  /** Each step's duration as a figure of the report. */
  measurePhases(): void {
    for (const p of this.phases) this.recorder.measure(`${p.name} duration`, p.durationMs, 'ms');
  }
}
