// When the faults of a run are due. The flow reports what it observes (every module event, the offset of the
// next block read, the named moments of the timeline) and the schedule says which faults fire there; delay
// triggers become due on a timer and wake the flow's current wait (see `onDue`). Each fault fires at most
// once per run: after a restart from byte 0 an offset trigger is not hit again, so a run always ends. A
// trigger with a time offset (`after-update3+350ms`) is taken at its moment and becomes due that much
// later, on a timer that wakes the flow like a delay trigger.
import { ConfigError } from '../errors.ts';
import type { ModuleEvent } from '../quecthing/events.ts';
import { formatFault } from './faults.ts';
import type { Fault } from './faults.ts';

export type NamedMoment = 'after-update3' | 'programming' | 'before-version-report';

export interface ScheduledFault {
  fault: Fault;
  text: string;
  /** Index in the run's schedule (faults are recorded in this order). */
  index: number;
}

/** What a station must offer for a fault's action; the flow checks every fault before the run starts. */
export interface FaultCapabilities {
  can(action: 'cycle' | 'reset', part: 'module' | 'target'): boolean;
}

/**
 * A ConfigError naming every fault the station cannot execute, before anything is sent. `console` says
 * whether the run sees an MCU console (dut mode on a station that has one): console triggers need it.
 */
export function checkFaults(station: string, faults: readonly Fault[], caps: FaultCapabilities, console: { available: boolean; why: string } = { available: false, why: 'only dut mode reads the MCU console' }): void {
  const missing: string[] = [];
  for (const f of faults) {
    if (f.trigger.kind === 'console' && !console.available) missing.push(`${formatFault(f)} (${console.why})`);
    const a = f.action;
    if (a.kind === 'power-cycle' && !caps.can('cycle', a.part)) missing.push(`${formatFault(f)} (no ${a.part} supply line)`);
    if (a.kind === 'reset' && !caps.can('reset', a.part)) missing.push(`${formatFault(f)} (no ${a.part} reset line)`);
  }
  if (missing.length > 0) {
    throw new ConfigError(`station cannot execute ${missing.length === 1 ? 'this fault' : 'these faults'}`, {
      station,
      expected: 'a power or reset line for every power-cycle/reset action in the schedule, and a console for console triggers',
      seen: missing.join(', '),
    });
  }
}

export class FaultSchedule {
  readonly items: readonly ScheduledFault[];
  private readonly fired = new Set<number>();
  /** Triggered, waiting out their time offset. */
  private readonly waiting = new Set<number>();
  private readonly due: ScheduledFault[] = [];
  private readonly eventCounts = new Map<number, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private listener: (() => void) | undefined;

  constructor(faults: readonly Fault[]) {
    this.items = faults.map((fault, index) => ({ fault, text: formatFault(fault), index }));
  }

  /** Starts the delay triggers; `onDue` is called when one becomes due (the flow may be in a long wait). */
  start(onDue: () => void): void {
    this.listener = onDue;
    for (const item of this.items) {
      const t = item.fault.trigger;
      if (t.kind === 'delay') this.timers.push(setTimeout(() => this.makeDue(item), t.ms + (t.afterMs ?? 0)));
    }
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.listener = undefined;
  }

  /** Every module event of the run, in order; the n-th occurrence of a code makes its faults due. */
  onEvent(e: ModuleEvent): void {
    if (e.kind === 'reboot' || e.kind === 'urc' || e.kind === 'malformed' || e.type !== 7) return;
    const n = (this.eventCounts.get(e.code) ?? 0) + 1;
    this.eventCounts.set(e.code, n);
    for (const item of this.items) {
      const t = item.fault.trigger;
      if (t.kind === 'event' && t.code === e.code && t.occurrence === n) this.makeDue(item, false);
    }
  }

  /** Before reading the block that starts at `offset`: offset triggers at or below it become due. */
  atOffset(offset: number, blockLength: number): void {
    for (const item of this.items) {
      const t = item.fault.trigger;
      // The block [offset, offset+len) reaches the trigger offset: fire before reading it.
      if (t.kind === 'offset' && t.bytes < offset + blockLength && !this.fired.has(item.index)) this.makeDue(item, false);
    }
  }

  /** A named moment of the timeline: its faults become due. */
  at(moment: NamedMoment): void {
    for (const item of this.items) if (item.fault.trigger.kind === moment) this.makeDue(item, false);
  }

  /** A line of the MCU's console: console triggers whose pattern matches become due. */
  onConsole(line: string): void {
    for (const item of this.items) {
      const t = item.fault.trigger;
      if (t.kind === 'console' && !this.fired.has(item.index) && new RegExp(t.pattern).test(line)) this.makeDue(item, false);
    }
  }

  /** True when a fault waits to be executed. */
  get pending(): boolean {
    return this.due.length > 0;
  }

  /** True when a fault's trigger came and it waits out its time offset (`after-update3+350ms`). */
  get waitingOffset(): boolean {
    return this.waiting.size > 0;
  }

  /** Takes the due faults (each once per run), in schedule order. */
  take(): ScheduledFault[] {
    const out = this.due.splice(0).sort((a, b) => a.index - b.index);
    return out;
  }

  /** Faults that never fired (their trigger never came): part of the run record. */
  unfired(): ScheduledFault[] {
    return this.items.filter((i) => !this.fired.has(i.index) || this.waiting.has(i.index));
  }

  private makeDue(item: ScheduledFault, notify = true): void {
    if (this.fired.has(item.index)) return;
    this.fired.add(item.index);
    const after = item.fault.trigger.afterMs;
    if (after && item.fault.trigger.kind !== 'delay') {
      this.waiting.add(item.index);
      this.timers.push(
        setTimeout(() => {
          this.waiting.delete(item.index);
          this.due.push(item);
          this.listener?.();
        }, after),
      );
      return;
    }
    this.due.push(item);
    if (notify) this.listener?.();
  }
}

/** What a finished run shows of itself, enough to say why a trigger never came (a RunRecord fits). */
export interface RunTrace {
  events: readonly { code?: number; raw: string }[];
  progress: readonly { offset: number }[];
  phases: readonly { name: string }[];
  durationMs: number;
  /** The MCU console's lines (dut runs). */
  console?: readonly unknown[];
}

/**
 * Why `fault` never fired in the run `run`, in the protocol's words: a test whose fault did not happen has
 * not tested what it says, and the reader needs to know which moment never came.
 */
export function whyNotFired(fault: Fault, run: RunTrace): string {
  const t = fault.trigger;
  const ran = (phase: string) => run.phases.some((p) => p.name === phase || p.name.startsWith(`${phase} `));
  switch (t.kind) {
    case 'event': {
      const seen = run.events.filter((e) => e.code === t.code && e.raw.startsWith('+QIOTEVT: 7,')).length;
      const what = `+QIOTEVT: 7,${t.code} came ${seen} time(s), the trigger waits for occurrence ${t.occurrence}`;
      // §5: 10702 comes 0..n times, about every 5 s; a download shorter than that shows none.
      if (t.code === 10702) return `${what}: the download finished before the module reported progress (10702 comes 0..n times, about every 5 s)`;
      return what;
    }
    case 'offset': {
      const last = run.progress.at(-1)?.offset ?? 0;
      return `the block reads never reached byte ${t.bytes} (the furthest read ended at byte ${last})`;
    }
    case 'after-update3':
      return ran('update') ? 'the run went to UPDATING but the trigger was not taken' : 'the run never sent AT+QIOTUPDATE=3 (no verified download to install)';
    case 'programming':
      return 'the run never programmed the target (no verified download to install)';
    case 'before-version-report':
      return ran('program') ? 'the run ended before reporting the new version' : 'the run never got to report a new version (nothing was programmed)';
    case 'delay':
      return `the run ended after ${Math.round(run.durationMs)} ms, before the ${t.ms + (t.afterMs ?? 0)} ms delay`;
    case 'console': {
      const lines = run.console?.length;
      return `no console line matched /${t.pattern}/${lines === undefined ? '' : ` (${lines} console lines seen)`}`;
    }
  }
}
