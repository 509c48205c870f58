// The upgrade's timeline as a sweep sees it: the windows of a clean run (plan → confirm, the download, the
// block reads, `=3` → reboot, the bootloader's swap, the trial boot) and the marks inside them — every moment
// the fault model can trigger on (an event, a block offset, a named moment, a console line, a delay), each
// with the run time it came at. A sweep calibrates this on one clean run, then aims each point at a moment:
// the latest mark before it plus a time offset. Read back on the point's own run, the same marks say where
// the fault really landed, whatever the load did to the timing.
//
// Everything here reads run records, so it is tested on records alone, and it understands a trigger the way
// FaultSchedule does (the first occurrence, the n-th event, a block that reaches an offset).
import { formatTrigger, parseFault } from '../faults.ts';
import type { FaultTrigger } from '../faults.ts';
import type { RecordedPhase, RunRecord } from '../record.ts';

export type SweepMode = 'proxy' | 'dut';

/** A moment of a run that a fault trigger names exactly. */
export interface Mark {
  /** Run time, ms. */
  t: number;
  /** The trigger in the fault model's text form, without an action (`event=10703`, `console=^\[boot\] swap unit 2/5 step 1$`). */
  trigger: string;
}

/** A stretch of the upgrade a sweep can aim at; windows are contiguous, in timeline order. */
export interface SweepWindow {
  name: string;
  start: number;
  end: number;
  /** What the window is, for tables and pictures. */
  what: string;
}

export interface Timeline {
  mode: SweepMode;
  windows: SweepWindow[];
  /** Sorted by time. */
  marks: Mark[];
  durationMs: number;
}

/** The windows of each mode, in timeline order, and what bounds them. */
export const WINDOWS: Record<SweepMode, readonly { name: string; what: string }[]> = {
  dut: [
    { name: 'plan', what: 'plan → confirm (10700 → AT+QIOTUPDATE=1)' },
    { name: 'download', what: 'cloud → module download (=1 → 10703)' },
    { name: 'reads', what: 'block reads into slot B (10703 → =3 taken)' },
    { name: 'install', what: '=3 → the MCU reboots (its boot line)' },
    { name: 'swap', what: 'bootloader: record, check, swap (boot line → trial boot)' },
    { name: 'trial', what: 'trial boot → confirmation (10705/10706)' },
  ],
  proxy: [
    { name: 'plan', what: 'plan → confirm (10700 → AT+QIOTUPDATE=1)' },
    { name: 'download', what: 'cloud → module download (=1 → 10703)' },
    { name: 'reads', what: 'block reads (10703 → AT+QIOTUPDATE=3)' },
    { name: 'install', what: '=3 → programming starts (10704)' },
    { name: 'program', what: 'programming the slot over SWD' },
    { name: 'report', what: 'read-back and version report → 10705' },
  ],
};

/** What a record shows of the moments triggers name, in run time. */
interface RunView {
  /** Module events of type 7, in order. */
  events: { t: number; code: number }[];
  /** Block reads as the MCU asked for them. */
  reads: { t: number; offset: number; length: number }[];
  console: { t: number; text: string }[];
  programming: number | undefined;
  afterUpdate3: number | undefined;
  beforeVersionReport: number | undefined;
  /** When the run's delay triggers start counting (FaultSchedule.start). */
  scheduleStart: number | undefined;
}

const phase = (r: Pick<RunRecord, 'phases'>, name: string): RecordedPhase | undefined => r.phases.find((p) => p.name === name);
const READ = /^AT\+QIOTOTARD=(\d+),(\d+)$/i;

function modeOf(r: RunRecord): SweepMode {
  return (r.mode ?? r.flow) === 'dut' ? 'dut' : 'proxy';
}

function viewOf(r: RunRecord): RunView {
  if (modeOf(r) === 'dut' && r.dut) {
    const dut = r.dut;
    const install = phase(r, 'install (reset, swap)')?.start;
    const reads = dut.tap.filter((l) => l.dir === 'mcu' && l.kind === 'command').flatMap((l) => {
      const m = READ.exec(l.text);
      return m ? [{ t: l.t, offset: Number(m[1]), length: Number(m[2]) }] : [];
    });
    return {
      events: dut.moduleEvents.filter((e) => e.code !== undefined).map((e) => ({ t: e.t, code: e.code! })),
      reads,
      console: dut.console,
      programming: reads[0]?.t,
      afterUpdate3: install,
      // The first thing the MCU says after it reset to install (dut-observe.ts).
      beforeVersionReport: install === undefined ? undefined : dut.tap.find((l) => l.dir === 'mcu' && l.kind === 'command' && l.t > install)?.t,
      scheduleStart: (phase(r, 'reset the MCU (reset run over SWD)') ?? phase(r, 'observe the upgrade'))?.start,
    };
  }
  const tx = r.transcript.filter((l) => l.dir === 'TX');
  const update3 = r.transcript.findIndex((l) => l.dir === 'TX' && /^AT\+QIOTUPDATE=3$/i.test(l.text));
  const ok = update3 < 0 ? undefined : r.transcript.slice(update3 + 1).find((l) => l.dir === 'RX' && l.text === 'OK');
  const report = r.phases.filter((p) => p.name.startsWith('report version')).at(-1);
  const readBack = report ? r.phases.filter((p) => p.name.startsWith('read back') && p.end <= report.start).at(-1) : undefined;
  return {
    events: r.events.filter((e) => e.code !== undefined && e.raw.startsWith('+QIOTEVT: 7,')).map((e) => ({ t: e.t, code: e.code! })),
    reads: tx.flatMap((l) => {
      const m = READ.exec(l.text);
      return m ? [{ t: l.t, offset: Number(m[1]), length: Number(m[2]) }] : [];
    }),
    console: [],
    programming: phase(r, 'program')?.start,
    afterUpdate3: ok?.t,
    beforeVersionReport: readBack?.end,
    scheduleStart: phase(r, 'prepare plan')?.end,
  };
}

/** When `trigger` would have made its fault due in this run (its first occurrence, plus its time offset), if ever. */
function momentIn(v: RunView, t: FaultTrigger): number | undefined {
  let at: number | undefined;
  switch (t.kind) {
    case 'event':
      at = v.events.filter((e) => e.code === t.code)[t.occurrence - 1]?.t;
      break;
    case 'offset':
      at = v.reads.find((b) => t.bytes < b.offset + b.length)?.t;
      break;
    case 'programming':
      at = v.programming;
      break;
    case 'after-update3':
      at = v.afterUpdate3;
      break;
    case 'before-version-report':
      at = v.beforeVersionReport;
      break;
    case 'delay':
      return v.scheduleStart === undefined ? undefined : v.scheduleStart + t.ms + (t.afterMs ?? 0);
    case 'console': {
      const re = new RegExp(t.pattern);
      at = v.console.find((l) => re.test(l.text))?.t;
      break;
    }
  }
  return at === undefined ? undefined : at + (t.afterMs ?? 0);
}

/** The trigger of a trigger text (the fault model's parser, with a placeholder action). */
export function parseTriggerText(text: string): FaultTrigger {
  return parseFault(`${text}:reset-target`).trigger;
}

/** When the trigger `text` comes in the run `record`, run time; undefined when it never comes there. */
export function triggerMoment(record: RunRecord, text: string): number | undefined {
  return momentIn(viewOf(record), parseTriggerText(text));
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A console line as a trigger that fires at this line and no earlier one: its numbers generalised when the
 * line is then the only one of its kind (a record sequence number changes from run to run, `seq=2`), else
 * the literal line (`swap unit 3/5 step 2`); undefined when an earlier line matches either way.
 */
function consolePattern(lines: readonly { t: number; text: string }[], i: number): string | undefined {
  const text = lines[i]!.text;
  const literal = `^${escapeRegExp(text)}$`;
  const general = `^${escapeRegExp(text).replace(/\d+/g, '\\d+')}$`;
  const re = new RegExp(general);
  if (general !== literal && lines.filter((l) => re.test(l.text)).length === 1) return general;
  const lit = new RegExp(literal);
  return lines.findIndex((l) => lit.test(l.text)) === i ? literal : undefined;
}

/** Every mark of a run: each a trigger text whose first occurrence in this run is at its time. */
export function marksOf(record: RunRecord): Mark[] {
  const v = viewOf(record);
  const candidates: string[] = [];
  const counts = new Map<number, number>();
  for (const e of v.events) {
    const n = (counts.get(e.code) ?? 0) + 1;
    counts.set(e.code, n);
    candidates.push(formatTrigger({ kind: 'event', code: e.code, occurrence: n }));
  }
  for (const b of v.reads) candidates.push(formatTrigger({ kind: 'offset', bytes: b.offset }));
  if (v.programming !== undefined) candidates.push('programming');
  if (v.afterUpdate3 !== undefined) candidates.push('after-update3');
  if (v.beforeVersionReport !== undefined) candidates.push('before-version-report');
  if (v.scheduleStart !== undefined) candidates.push('delay=0');
  v.console.forEach((_, i) => {
    const p = consolePattern(v.console, i);
    if (p !== undefined) candidates.push(`console=${p}`);
  });
  const seen = new Set<string>();
  const marks: Mark[] = [];
  for (const text of candidates) {
    if (seen.has(text)) continue;
    seen.add(text);
    const t = momentIn(v, parseTriggerText(text));
    if (t !== undefined) marks.push({ t, trigger: text });
  }
  return marks.sort((a, b) => a.t - b.t);
}

/** The line of the MCU's console that starts it (the record's option, else the reference bootloader's). */
function consoleStart(dut: RunRecord['dut']): RegExp {
  return new RegExp(dut?.options.consoleStart ?? '^\\[boot\\] BOOT\\b');
}

/**
 * The boundaries between a run's windows, in the order of WINDOWS[mode] plus the end; contiguous and in
 * order, whatever jitter the ports added.
 */
function boundaries(r: RunRecord, mode: SweepMode): (number | undefined)[] {
  const b = rawBoundaries(r, mode);
  for (let i = 1; i < b.length; i++) if (b[i] !== undefined && b[i - 1] !== undefined) b[i] = Math.max(b[i]!, b[i - 1]!);
  return b;
}

function rawBoundaries(r: RunRecord, mode: SweepMode): (number | undefined)[] {
  if (mode === 'dut') {
    // From the lines themselves, not from the order they reached the rig in: each tap direction and the
    // console is a port of its own, so an answer may be read before the command it answers.
    const dut = r.dut;
    const event = (code: number, after = -Infinity) => dut?.moduleEvents.find((e) => e.code === code && e.t >= after)?.t;
    const command = (re: RegExp) => dut?.tap.find((l) => l.dir === 'mcu' && l.kind === 'command' && re.test(l.text))?.t;
    const plan = event(10700);
    const confirm = plan === undefined ? undefined : Math.max(plan, command(/^AT\+QIOTUPDATE=1$/i) ?? Infinity);
    const update3 = command(/^AT\+QIOTUPDATE=3$/i);
    // The install as the observer takes it (=3 and 10704, whichever came last), which after-update3 fires at.
    const install = phase(r, 'install (reset, swap)')?.start;
    const start = consoleStart(dut);
    const boot = update3 === undefined ? undefined : dut?.console.find((l) => l.t >= update3 && start.test(l.text))?.t;
    const reboot = install === undefined || boot === undefined ? undefined : Math.max(install, boot);
    const trial = reboot === undefined ? undefined : dut?.console.find((l) => l.t >= reboot && /\bboot slot A \S+ \S+ trial\b/.test(l.text))?.t;
    const settled = trial === undefined ? undefined : (event(10705, trial) ?? event(10706, trial));
    return [plan, Number.isFinite(confirm) ? confirm : undefined, event(10703), install, reboot, trial, settled];
  }
  const ev = (code: number) => r.events.find((e) => e.code === code && e.raw.startsWith('+QIOTEVT: 7,'))?.t;
  const program = phase(r, 'program');
  return [ev(10700), phase(r, 'confirm')?.end, ev(10703), phase(r, 'update')?.start, program?.start, program?.end, ev(10705)];
}

/**
 * The timeline of a clean run: its windows (those it went through) and its marks. A window whose edges the
 * run did not show (no trial boot when the bootloader refused the image) is left out.
 */
export function timelineOf(record: RunRecord): Timeline {
  const mode = modeOf(record);
  const b = boundaries(record, mode);
  const windows: SweepWindow[] = [];
  WINDOWS[mode].forEach((w, i) => {
    const start = b[i];
    const end = b[i + 1];
    if (start !== undefined && end !== undefined && end >= start) windows.push({ name: w.name, start, end, what: w.what });
  });
  return { mode, windows, marks: marksOf(record), durationMs: record.durationMs };
}

/**
 * Where a fault landed in its own run: its moment, and the window of the upgrade the run was in then (the
 * last whose start it had reached; edges the fault itself may have moved are not needed). A cut or reset of
 * the MCU takes effect when its supply actually goes, which the rig sees as the MCU's last line (console, or
 * a command on its tap) before the boot line that followed the fault: a relay switches some ms after the rig
 * decides, and on a loaded machine the MCU may finish a step — the swap — in between. Any other fault lands
 * when it was executed. The window is undefined for a fault before the plan.
 */
export function faultLanding(record: RunRecord, fired: { fault: string; t: number }): { t: number; window: string | undefined } {
  const mode = modeOf(record);
  let t = fired.t;
  const dut = record.dut;
  const action = parseFault(fired.fault).action;
  if (mode === 'dut' && dut && (action.kind === 'power-cycle' || action.kind === 'reset') && action.part === 'target') {
    const start = consoleStart(dut);
    const boot = dut.console.find((l) => l.t > fired.t && start.test(l.text))?.t ?? Infinity;
    for (const l of dut.console) if (l.t >= t && l.t < boot) t = l.t;
    for (const l of dut.tap) if (l.dir === 'mcu' && l.t >= t && l.t < boot) t = l.t;
  }
  const b = boundaries(record, mode);
  let window: string | undefined;
  WINDOWS[mode].forEach((w, i) => {
    if (b[i] !== undefined && b[i]! <= t) window = w.name;
  });
  return { t, window };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Where `t` is in a timeline: its window (the first one it is inside, edges to the later one) and the time into it. */
function placeIn(tl: Timeline, t: number): { window: string; into: number } | { before: number } | { after: number } {
  const ws = tl.windows;
  if (ws.length === 0 || t < ws[0]!.start) return { before: (ws[0]?.start ?? 0) - t };
  const w = ws.find((x) => t >= x.start && t < x.end) ?? ws.filter((x) => t >= x.start && t <= x.end).at(-1);
  if (w) return { window: w.name, into: t - w.start };
  return { after: t - ws.at(-1)!.end };
}

/**
 * One timeline from several clean runs, on the clock of the first: each window as long as its median
 * length, the windows end to end from the first run's start, each mark at the median of its time into its
 * window. One run's hiccup (console lines that reached a loaded rig in a burst, 100 ms late) then moves no
 * mark. Runs that did not go through the same windows cannot be merged: the first run's timeline stands.
 */
export function mergeTimelines(tls: readonly Timeline[]): Timeline {
  const first = tls[0];
  if (!first) throw new Error('no timeline to merge');
  const names = first.windows.map((w) => w.name);
  if (tls.length === 1 || tls.some((tl) => tl.windows.map((w) => w.name).join() !== names.join())) return first;
  let cursor = first.windows[0]?.start ?? 0;
  const windows = first.windows.map((w, i) => {
    const length = median(tls.map((tl) => tl.windows[i]!.end - tl.windows[i]!.start));
    const out = { ...w, start: round(cursor), end: round(cursor + length) };
    cursor += length;
    return out;
  });
  const merged: Timeline = { mode: first.mode, windows, marks: [], durationMs: median(tls.map((tl) => tl.durationMs)) };
  for (const m of first.marks) {
    const places = tls.map((tl) => {
      const at = tl.marks.find((x) => x.trigger === m.trigger);
      return at === undefined ? undefined : placeIn(tl, at.t);
    });
    const p0 = places[0]!;
    let t: number;
    if ('window' in p0 && places.every((p) => p !== undefined && 'window' in p && p.window === p0.window)) {
      t = windows.find((w) => w.name === p0.window)!.start + median(places.map((p) => (p as { into: number }).into));
    } else if ('before' in p0 && places.every((p) => p !== undefined && 'before' in p)) {
      t = windows[0]!.start - median(places.map((p) => (p as { before: number }).before));
    } else if ('after' in p0 && places.every((p) => p !== undefined && 'after' in p)) {
      t = windows.at(-1)!.end + median(places.map((p) => (p as { after: number }).after));
    } else continue; // not the same moment in every run: no mark to aim from
    merged.marks.push({ t: round(t), trigger: m.trigger });
  }
  merged.marks.sort((a, b) => a.t - b.t);
  return merged;
}

const round = (t: number): number => Math.round(t * 10) / 10;

/** The window a calibrated moment falls in; outside them all, the nearest one. */
export function windowAt(tl: Timeline, t: number): SweepWindow | undefined {
  const inside = tl.windows.find((w) => t >= w.start && t < w.end) ?? tl.windows.find((w) => t >= w.start && t <= w.end);
  if (inside) return inside;
  let best: SweepWindow | undefined;
  let distance = Infinity;
  for (const w of tl.windows) {
    const d = t < w.start ? w.start - t : t - w.end;
    if (d < distance) [best, distance] = [w, d];
  }
  return best;
}

/** The trigger that aims at calibrated moment `t`: the latest mark at or before it, plus the rest in ms. */
export function triggerAt(tl: Timeline, t: number): { trigger: string; base: Mark; offsetMs: number } {
  let base = tl.marks[0];
  for (const m of tl.marks) if (m.t <= t + 0.05) base = m;
  if (!base) throw new Error('a timeline without marks cannot aim a fault');
  const offsetMs = Math.max(0, Math.round(t - base.t));
  const delay = /^delay=(\d+)$/.exec(base.trigger);
  if (delay) return { trigger: `delay=${Number(delay[1]) + offsetMs}`, base, offsetMs };
  return { trigger: offsetMs >= 1 ? `${base.trigger}+${offsetMs}ms` : base.trigger, base, offsetMs };
}

/**
 * Where, on the calibrated timeline, a point run's fault landed: from the latest calibration mark the point
 * run also reached before its fault fired, plus the time between them in the point run. Undefined when the
 * point run reached none of the marks first.
 */
export function landedAt(tl: Timeline, point: RunRecord, firedT: number): number | undefined {
  const v = viewOf(point);
  let best: { cal: number; seen: number } | undefined;
  for (const m of tl.marks) {
    const seen = momentIn(v, parseTriggerText(m.trigger));
    if (seen === undefined || seen > firedT) continue;
    if (!best || seen > best.seen || (seen === best.seen && m.t > best.cal)) best = { cal: m.t, seen };
  }
  return best === undefined ? undefined : Math.round((best.cal + firedT - best.seen) * 10) / 10;
}

/** `swap +85 ms` — a calibrated moment as its window and the time into it. */
export function describeMoment(tl: Timeline, t: number): string {
  const w = windowAt(tl, t);
  if (!w) return `${Math.round(t)} ms`;
  const into = Math.round(t - w.start);
  return into < 0 ? `${w.name} ${into} ms` : into > w.end - w.start ? `${w.name} end +${Math.round(t - w.end)} ms` : `${w.name} +${into} ms`;
}
