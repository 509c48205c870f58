// What a dut run sees, turned into evidence as it comes: the tapped dialogue (MCU → module and back), the
// MCU's console and the rig's own actions on the target. It keeps one transcript of both tap directions and
// the console with direction marks and timestamps, tracks the upgrade's phases from what is seen (version
// report, plan, confirm, download, block reads with offsets, `=3`, the reboot, the swap, the trial boot, the
// new version report, 10705/10706), tells the fault schedule about tapped events, offsets, named moments and
// console lines, and says when the upgrade has settled. It never sends anything: no port, no clock of its own
// (times come with the frames), so it is tested on byte strings and lines alone.
import { createHash } from 'node:crypto';
import type { TapFrame, TapFrameKind } from '../at/passive.ts';
import { binarySummary } from '../at/transcript.ts';
import type { ConsoleLine } from '../at/tap.ts';
import { parseModuleEvent } from '../quecthing/events.ts';
import type { ModuleEvent, OtaDownloadStartEvent } from '../quecthing/events.ts';
import type { RecordedPhase } from './record.ts';
import type { RunLog } from './run-log.ts';
import type { FaultSchedule } from './schedule.ts';

/** One line of a dut run's transcript. */
export interface TapLine {
  /** Run time, ms. */
  t: number;
  /** mcu: MCU → module; module: module → MCU; console: the MCU's debug console; rig: what the rig did. */
  dir: 'mcu' | 'module' | 'console' | 'rig';
  kind: TapFrameKind | 'console' | 'note';
  text: string;
  binary?: { length: number; sha256: string };
}

/** `   12.345 [mcu→mod] AT+QIOTOTARD=0,1024` — the marks line up so both directions read as one dialogue. */
export function formatTapLine(l: TapLine): string {
  const mark = l.dir === 'mcu' ? 'mcu→mod' : l.dir === 'module' ? 'mod→mcu' : l.dir === 'console' ? 'console' : 'rig    ';
  return `${(l.t / 1000).toFixed(3).padStart(9)} [${mark}] ${l.text}`;
}

/** The virtual MCU's first console line after every reset (docs/virtual-mcu.md §9). */
export const DEFAULT_CONSOLE_START = /^\[boot\] BOOT\b/;

export interface ObserverOptions {
  component: string;
  /** The plan's target version (what 10700 must announce for this run's OTA to count). */
  targetVersion: string;
  /** How long the MCU may take from a start to its version report. */
  reportWithinMs: number;
  /** A console line that means the MCU just started (reset, power-on, watchdog). */
  consoleStart?: RegExp;
}

interface Start {
  /** Run time. */
  t: number;
  why: string;
  reported: boolean;
  /**
   * The console showed this start (its boot line). A start the rig caused or expects (its reset, the reset
   * after =3) waits for the next boot line to confirm it instead of counting it as another start.
   */
  confirmed: boolean;
}

/** Phases opened and closed by what is seen; one still open at the end was cut short. */
class ObservedPhases {
  private readonly open = new Map<string, number>();
  private readonly counts = new Map<string, number>();

  constructor(private readonly out: RecordedPhase[]) {}

  begin(name: string, t: number): void {
    if (this.open.has(name)) this.end(name, t, false);
    this.open.set(name, t);
    this.latest = name;
  }

  /** The phase opened last and still open (what a fault firing now is labelled with). */
  latest: string | undefined;

  get current(): string | undefined {
    return this.latest !== undefined && this.open.has(this.latest) ? this.latest : [...this.open.keys()].at(-1);
  }

  end(name: string, t: number, ok = true): void {
    const start = this.open.get(name);
    if (start === undefined) return;
    this.open.delete(name);
    const n = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, n);
    this.out.push({ name: n === 1 ? name : `${name} #${n}`, start, end: t, durationMs: Math.round((t - start) * 10) / 10, ok });
  }

  instant(name: string, t: number): void {
    this.begin(name, t);
    this.end(name, t);
  }

  isOpen(name: string): boolean {
    return this.open.has(name);
  }

  closeAll(t: number): void {
    for (const name of [...this.open.keys()]) this.end(name, t, false);
  }
}

export class DutObserver {
  readonly tap: TapLine[] = [];
  readonly console: { t: number; text: string }[] = [];
  /** Every version the MCU reported, with the start it followed. */
  readonly reports: { t: number; version: string; line: number }[] = [];
  readonly starts: Start[] = [];
  /** The block reads the module answered: file offset, length, and their tap line. */
  readonly blocks: { start: number; length: number; line: number }[] = [];
  /** Module events as tapped (type 7 and RDY), for the record. */
  readonly moduleEvents: { t: number; raw: string; code?: number }[] = [];

  decision: 'confirmed' | 'refused' | undefined;
  moduleResult: 10705 | 10706 | undefined;
  planSeen = false;
  trialSeen = false;
  downloadRejected: string | undefined;
  announced: OtaDownloadStartEvent | undefined;
  /** Run time the install began: AT+QIOTUPDATE=3 tapped and the module's 10704 seen, whichever came last. */
  installAt: number | undefined;
  private update3At: number | undefined;
  private updatingAt: number | undefined;
  /** Bytes the module handed over in blocks. */
  blockBytes = 0;
  fileSize = 0;
  /** The download as tapped, at file offsets, and which bytes of it came (a lost byte leaves a hole). */
  private file: Buffer | undefined;
  private covered: Uint8Array | undefined;
  /** Set at the install when the tapped download's MD5 is not 10701's. */
  installedBadDownload: string | undefined;
  /** Set when, after the module rebooted, the MCU's first read of the announced piece was not where it starts. */
  downloadNotRestarted: string | undefined;
  /** Set when this run's 10700 went unanswered past the bound. */
  planNotAnswered: string | undefined;
  /** Run time of the latest 10700 of this run's plan that the MCU has not answered yet. */
  private planAt: number | undefined;
  /** The module rebooted during the download: the next piece's start is where the MCU must read again. */
  private rebootAt: number | undefined;
  private restartAt: number | undefined;
  private restartRdyAt = 0;
  /** Run time of the MCU's AT+QIOTUPDATE=1 and of its latest block read command. */
  private confirmedAt: number | undefined;
  private lastReadAt: number | undefined;
  private firstReadAt: number | undefined;

  private readonly phases: ObservedPhases;
  private lastMcuCommand: string | undefined;
  private programmingTaken = false;
  private newImageStarted = false;
  private readonly consoleStart: RegExp;

  constructor(
    private readonly log: RunLog,
    private readonly schedule: FaultSchedule,
    private readonly opts: ObserverOptions,
  ) {
    this.phases = new ObservedPhases(log.phases);
    this.consoleStart = opts.consoleStart ?? DEFAULT_CONSOLE_START;
  }

  private add(line: TapLine): number {
    this.tap.push(line);
    return this.tap.length - 1;
  }

  /** A note from the rig (a reset it made, a fault it executed) in the same transcript. */
  note(text: string, t = this.log.now()): void {
    this.add({ t, dir: 'rig', kind: 'note', text });
  }

  /**
   * The MCU started: the rig reset or powered it (noted when the rig acts, before the console can say so),
   * it reset itself to install, or its console printed a boot line — which confirms an expected start
   * rather than counting as another one.
   */
  mcuStarted(why: string, t = this.log.now(), fromConsole = false): void {
    const last = this.starts.at(-1);
    if (fromConsole && last && !last.confirmed && !last.reported) {
      last.confirmed = true;
      return;
    }
    // A start the rig learns of late (the install, told by the 10704 that came through its tap after the
    // console's boot line and the report; a fault noted once its power cycle returned) is the one already seen.
    // Its boot line may have been read first (the observer sees the console as it comes, the fault's effect
    // once it returns): then the start is the one the line opened, and the cause names it.
    if (!fromConsole && last && last.t >= t) {
      if (last.why.startsWith('console: ')) last.why = why;
      return;
    }
    this.starts.push({ t, why, reported: this.reports.some((r) => r.t >= t), confirmed: fromConsole });
  }

  frame(f: TapFrame): void {
    const t = this.log.at(f.t);
    const line = this.add({ t, dir: f.dir, kind: f.kind, text: f.kind === 'block' ? `${f.text} ${binarySummary(f.data!).text}` : f.text, ...(f.data ? { binary: { length: f.data.length, sha256: binarySummary(f.data).sha256 } } : {}) });
    if (f.dir === 'mcu') {
      if (f.kind === 'command') this.command(f.text, t, line);
      return;
    }
    switch (f.kind) {
      case 'urc':
        this.urc(f.text, t);
        return;
      case 'final':
        this.lastMcuCommand = undefined;
        return;
      case 'block':
        if (f.block && f.block.start >= 0) {
          this.blocks.push({ start: f.block.start, length: f.block.length, line });
          this.store(f.block.start, f.data!);
          this.blockBytes += f.block.length;
          this.log.recorder.progress?.('block reads', f.block.start + f.block.length, this.fileSize || f.block.start + f.block.length);
        }
        return;
      default:
        return;
    }
  }

  /**
   * AT+QIOTUPDATE=3 accepted: the command tapped on the MCU's line and the 10704 the module sends once it
   * took it (§5), in whichever order the two taps delivered them (each port has its own latency).
   */
  private maybeInstall(t: number): void {
    if (this.installAt !== undefined || this.update3At === undefined || this.updatingAt === undefined) return;
    this.installAt = t;
    this.checkDownload();
    this.phases.end('block reads', t);
    this.phases.begin('install (reset, swap)', t);
    this.schedule.at('after-update3');
    // The MCU resets once it sent =3 (and wrote its record), whenever the module's 10704 reached the rig.
    this.mcuStarted('the MCU resets to install after AT+QIOTUPDATE=3', this.update3At);
  }

  private command(text: string, t: number, line: number): void {
    this.lastMcuCommand = text;
    if (/^AT\+QIOTUPDATE=3$/i.test(text) && this.planSeen) {
      this.update3At ??= t;
      this.maybeInstall(t);
      return;
    }
    const ver = /^AT\+QIOTMCUVER="([^"]*)","([^"]*)"$/i.exec(text);
    if (ver && ver[1] === this.opts.component) {
      this.reports.push({ t, version: ver[2]!, line });
      const start = this.starts.at(-1);
      if (start) start.reported = true;
      this.phases.instant(`version report ${ver[2]}`, t);
      if (ver[2] === this.opts.targetVersion && this.installAt !== undefined) this.trialSeen = true;
      if (this.phases.isOpen('trial boot')) this.phases.end('trial boot', t);
      // After the install, the report settles the OTA (§4.3): from here the module's word is awaited.
      if (this.installAt !== undefined) this.phases.begin('confirmation', t);
      return;
    }
    if (/^AT\+QIOTUPDATE=1$/i.test(text)) {
      this.decision = 'confirmed';
      this.confirmedAt ??= t;
      this.planAt = undefined;
      this.phases.end('plan', t);
      this.phases.begin('download (cloud → module)', t);
      return;
    }
    if (/^AT\+QIOTUPDATE=0$/i.test(text)) {
      this.decision = 'refused';
      this.planAt = undefined;
      this.phases.end('plan', t);
      return;
    }
    if (/^AT\+QIOTUPDATE=2$/i.test(text)) {
      this.phases.end('block reads', t);
      this.phases.begin('download (cloud → module)', t);
      return;
    }
    const rd = /^AT\+QIOTOTARD=(\d+),(\d+)$/i.exec(text);
    if (rd) {
      this.lastReadAt = t;
      this.firstReadAt ??= t;
      if (this.restartAt !== undefined) {
        const off = Number(rd[1]);
        // §4.4: the module lost the download with its reboot and serves the piece anew; reading on from an old
        // offset takes bytes the MCU never checked in order.
        if (off !== this.restartAt && this.downloadNotRestarted === undefined) {
          this.downloadNotRestarted = `after the module restarted (RDY at ${(this.restartRdyAt / 1000).toFixed(3)} s) the piece starts at ${this.restartAt}, but the MCU read at ${off} (tap line ${line + 1})`;
        }
        this.restartAt = undefined;
      }
      if (!this.phases.isOpen('block reads')) this.phases.begin('block reads', t);
      if (!this.programmingTaken) {
        // The MCU writes slot B block by block from its first read: dut mode's "programming" moment.
        this.programmingTaken = true;
        this.schedule.at('programming');
      }
      this.schedule.atOffset(Number(rd[1]), Number(rd[2]));
      return;
    }
    if (this.installAt !== undefined && !this.newImageStarted && t > this.installAt) {
      // The first thing the MCU says after it reset to install: the image now in slot A is up, before its report.
      this.newImageStarted = true;
      this.schedule.at('before-version-report');
    }
  }

  private urc(text: string, t: number): void {
    const e: ModuleEvent = parseModuleEvent(text);
    if (e.kind === 'reboot') {
      this.moduleEvents.push({ t, raw: e.raw });
      if (this.decision === 'confirmed' && this.installAt === undefined) this.rebootAt = t;
      this.phases.instant('module restart (RDY)', t);
      this.schedule.onEvent(e);
      return;
    }
    if (e.kind === 'urc' || e.kind === 'malformed' || e.type !== 7) {
      this.schedule.onEvent(e);
      return;
    }
    this.moduleEvents.push({ t, raw: e.raw, code: e.code });
    this.schedule.onEvent(e);
    switch (e.kind) {
      case 'ota-plan':
        if (e.component === this.opts.component && e.target === this.opts.targetVersion) {
          this.planSeen = true;
          if (this.decision === undefined || this.rebootAt !== undefined) this.planAt ??= t;
          this.fileSize = e.size;
          this.phases.begin('plan', t);
        }
        return;
      case 'ota-download-start':
        this.announced = e;
        this.fileSize = e.size;
        this.file = undefined;
        return;
      case 'ota-piece-ready':
        this.fileSize = e.size;
        if (this.rebootAt !== undefined) {
          this.restartAt = e.start;
          this.restartRdyAt = this.rebootAt;
          this.rebootAt = undefined;
        }
        this.phases.end('download (cloud → module)', t);
        return;
      case 'ota-updating':
        if (this.planSeen && this.updatingAt === undefined) {
          this.updatingAt = t;
          this.maybeInstall(t);
        }
        return;
      case 'ota-success':
      case 'ota-failed':
        if (!this.planSeen) return; // an OTA an earlier run left in flight, settled now
        this.moduleResult = e.code;
        this.phases.end('confirmation', t);
        this.phases.instant(`module ${e.code}`, t);
        return;
      default:
        return;
    }
  }

  /** An event the module printed on the rig's USB AT port (urcport usbat/all): the module's word too. */
  usbEvent(e: ModuleEvent, t = this.log.now()): void {
    if (!this.planSeen && this.decision !== 'confirmed') return;
    if (e.kind === 'ota-updating' && this.updatingAt === undefined) {
      this.updatingAt = t;
      this.maybeInstall(t);
    }
    if (e.kind === 'ota-success' || e.kind === 'ota-failed') this.moduleResult ??= e.code;
  }

  consoleLine(l: ConsoleLine): void {
    const t = this.log.at(l.t);
    this.console.push({ t, text: l.text });
    this.add({ t, dir: 'console', kind: 'console', text: l.text });
    this.schedule.onConsole(l.text);
    const s = l.text;
    if (this.consoleStart.test(s)) {
      this.mcuStarted(`console: ${s}`, t, true);
      this.phases.end('install (reset, swap)', t);
    }
    if (/\bwatchdog reset\b/.test(s)) this.phases.instant('watchdog reset', t);
    if (/\bswap unit 1\/\d+ step 1\b/.test(s) || /\bresume swap\b/.test(s)) {
      if (!this.phases.isOpen('swap')) this.phases.begin('swap', t);
    }
    if (/\bswap done\b/.test(s)) this.phases.end('swap', t);
    if (/\brevert\b/.test(s)) this.phases.begin('revert', t);
    const boot = /\bboot slot A \S+ (\S+) (trial|confirmed)\b/.exec(s);
    if (boot) {
      this.phases.end('swap', t, false);
      this.phases.end('revert', t);
      if (boot[2] === 'trial') {
        this.trialSeen = true;
        this.phases.begin('trial boot', t);
      }
    }
    if (/\bstart trial\b/.test(s)) this.trialSeen = true;
    if (/\bconfirmed$/.test(s) && /^\[app\]/.test(s)) this.phases.end('trial boot', t);
    if (/\bself-test failed\b|\bcrash\b/.test(s)) this.phases.end('trial boot', t, false);
    const rejected = /download rejected: (.*)$/.exec(s);
    if (rejected) this.downloadRejected = rejected[1];
  }

  private store(start: number, data: Buffer): void {
    const size = this.fileSize;
    if (size <= 0 || start + data.length > size) return;
    if (!this.file || this.file.length !== size) {
      this.file = Buffer.alloc(size);
      this.covered = new Uint8Array(size);
    }
    data.copy(this.file, start);
    this.covered!.fill(1, start, start + data.length);
  }

  /** The MCU asks to install: does what it was handed match what 10701 announced? */
  private checkDownload(): void {
    const a = this.announced;
    if (!a || !this.file || this.file.length !== a.size || this.covered!.includes(0)) return;
    const md5 = createHash('md5').update(this.file).digest('hex');
    if (md5 !== a.md5.toLowerCase()) this.installedBadDownload = `md5 ${md5} of the ${a.size} bytes it read, 10701 says ${a.md5}`;
  }

  /** The start that has gone longer than the bound without a version report, if any. */
  silentStart(now: number): Start | undefined {
    const last = this.starts.at(-1);
    return last && !last.reported && now - last.t > this.opts.reportWithinMs ? last : undefined;
  }

  /** When the next bound runs out (an unreported start, an unanswered plan), run time; undefined when none is pending. */
  nextDeadline(): number | undefined {
    const last = this.starts.at(-1);
    const start = last && !last.reported ? last.t + this.opts.reportWithinMs : undefined;
    const plan = this.planAt !== undefined ? this.planAt + this.opts.reportWithinMs : undefined;
    return start === undefined ? plan : plan === undefined ? start : Math.min(start, plan);
  }

  /** The version reported after the last start (what the MCU runs now, by its own word). */
  get lastReport(): string | undefined {
    const last = this.starts.at(-1);
    if (!last) return this.reports.at(-1)?.version;
    const after = this.reports.filter((r) => r.t >= last.t);
    return after.at(-1)?.version;
  }

  /** Whether the upgrade is over and why: refused, settled by the module with a report after the last start, or silent. */
  settled(now: number): string | undefined {
    const silent = this.silentStart(now);
    if (silent) return `no version report within ${this.opts.reportWithinMs} ms of ${silent.why}`;
    if (this.planAt !== undefined && now - this.planAt > this.opts.reportWithinMs) {
      this.planNotAnswered = `the MCU did not answer the 10700 of ${(this.planAt / 1000).toFixed(3)} s (no AT+QIOTUPDATE=1 or =0 within ${this.opts.reportWithinMs} ms)`;
      return this.planNotAnswered;
    }
    const last = this.starts.at(-1);
    const reportedSinceStart = !last || last.reported;
    if (this.decision === 'refused' && reportedSinceStart && this.lastMcuCommand === undefined) return 'the MCU refused the plan';
    // A version report after the MCU confirmed the plan and before any install ends this OTA (§4.3): the
    // module settles it with 10706 if it still held it, or had dropped it already (its reboot), and nothing
    // more comes of this plan. (The console's `download rejected` line may arrive after the report: the two
    // ports have their own latencies.)
    const gaveUp = this.confirmedAt !== undefined && this.installAt === undefined ? this.reports.find((r) => r.t > Math.max(this.confirmedAt!, this.lastReadAt ?? 0)) : undefined;
    if (gaveUp && reportedSinceStart) return `the MCU reported ${gaveUp.version} during the download${this.downloadRejected ? ` (download rejected: ${this.downloadRejected})` : ''}: this OTA is over`;
    if (this.moduleResult !== undefined && reportedSinceStart && last !== undefined && (this.installAt === undefined || last.t >= (this.update3At ?? this.installAt))) {
      return `the module said ${this.moduleResult} and the MCU reported ${this.lastReport ?? '?'} after ${last.why}`;
    }
    return undefined;
  }

  /** The observed phase the upgrade is in now, if one is open. */
  get phase(): string | undefined {
    return this.phases.current;
  }

  /** The block reads' span: from the MCU's first read command to the last block the module answered, ms. */
  get readSpanMs(): number {
    const last = this.blocks.at(-1);
    return this.firstReadAt === undefined || !last ? 0 : Math.max(0, this.tap[last.line]!.t - this.firstReadAt);
  }

  /** Ends the phases still open (the run ended during them). */
  finish(now: number): void {
    this.phases.closeAll(now);
  }

  /**
   * The tap line behind a byte of the package: the block read that carried file offset `offset` (the
   * newest, when the download was restarted).
   */
  blockLine(offset: number): string | undefined {
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      const b = this.blocks[i]!;
      if (offset >= b.start && offset < b.start + b.length) return `tap line ${b.line + 1} (${formatTapLine(this.tap[b.line]!).trim()})`;
    }
    return undefined;
  }

  /** The last line of the transcript before run time `t` (a fault's moment). */
  lineBefore(t: number): string | undefined {
    for (let i = this.tap.length - 1; i >= 0; i--) {
      const l = this.tap[i]!;
      if (l.t <= t && l.dir !== 'rig') return `tap line ${i + 1} (${formatTapLine(l).trim()})`;
    }
    return undefined;
  }
}
