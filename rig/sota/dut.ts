// The dut upgrade flow (docs/architecture.md §1): the MCU firmware under test drives the SOTA dialogue itself; the rig
// arranges the flash, resets the MCU, listens (both tap directions, the console, the module's USB AT port),
// injects faults at observed moments, and judges by reading both slots and the boot record back over SWD.
//
//   const run = await runDutUpgrade(station, { plan: spec, from: images.v1, bootloader, faults, expect: ['upgraded'] });
//   run.verdict.outcome   // 'upgraded' | 'rolled-back' | 'failed-intact' | 'refused' | 'bricked' | 'inconsistent'
//   run.dut.tap           // the two-direction transcript with the console beside it
//
// The module's USB AT port stays the rig's, but in dut mode the rig only observes through it (AT+QIOTSTATE?,
// AT+QURCCFG="urcport") and uses it for network faults (AT+CFUN): it never sends a SOTA command while the
// MCU owns the dialogue. Every wait is bounded: the MCU must report a version within `reportWithinMs` of
// every start, and the whole upgrade must settle within `settleMs`.
import type { TranscriptEntry } from '../at/transcript.ts';
import { ConfigError, FirmwareError, InfrastructureError, ProtocolError } from '../errors.ts';
import { compareImages, describeComparison } from '../images/compare.ts';
import { sha256Hex } from '../images/digest.ts';
import { describeIdentity, identifyImage } from '../images/header.ts';
import type { Image } from '../images/image.ts';
import type { Package } from '../images/package.ts';
import type { ModuleEvent } from '../quecthing/events.ts';
import type { PreparedPlan, Station, StationMcu, UpgradeSpec } from '../station/station.ts';
import { readBootRecord } from './boot-record.ts';
import type { BootRecord } from './boot-record.ts';
import { DutObserver, formatTapLine } from './dut-observe.ts';
import { judgeDut } from './dut-verdict.ts';
import type { SlotEvidence } from './dut-verdict.ts';
import { Disturbance, FaultExecutor } from './fault-exec.ts';
import { formatFault } from './faults.ts';
import type { Fault } from './faults.ts';
import { DOWNLOAD_NOTIFY_LIMIT } from './proxy.ts';
import { completeRecord, landFaults, publishRecord, recordedFirmware, recordedStation, recordedUpgrade, RUN_RECORD_FORMAT, RUN_RECORD_VERSION, thin } from './record.ts';
import type { CloudFault, DutRecordPart, RunRecord } from './record.ts';
import { silentRecorder } from './recorder.ts';
import type { Recorder } from './recorder.ts';
import { RunLog, errorInfo } from './run-log.ts';
import { FaultSchedule, checkFaults } from './schedule.ts';
import { reviveProbe } from './slots.ts';
import { fail } from './verdict.ts';
import type { Outcome, ReadbackResult } from './verdict.ts';

export interface DutUpgradeOptions {
  /** The plan the cloud offers: prepared already, or a spec the flow prepares through station.plans. */
  plan: PreparedPlan | UpgradeSpec;
  /** The package behind a PreparedPlan (a spec carries its own). */
  package?: Package;
  /** The release the MCU starts from: slot A is made to hold it (programmed only when the read-back differs). */
  from: Image;
  /** The bootloader to arrange at the flash base (programmed only when it differs); without it the station's stays. */
  bootloader?: Image;
  faults?: readonly Fault[];
  cloudFaults?: readonly CloudFault[];
  /** Outcomes that count as a pass; default 'upgraded'. */
  expect?: Outcome | readonly Outcome[];
  recorder?: Recorder;
  signal?: AbortSignal;
  /**
   * How long the MCU may take from any start (reset, power-on, its own reset to install, a watchdog) to its
   * version report; longer is "bricked". Default: the station's boot time plus a tenth of the update wait
   * (a swap of 128 KiB takes seconds on an STM32), plus the margin.
   */
  reportWithinMs?: number;
  /** Longest the whole upgrade may take from the MCU's reset to settled; default the protocol timers end to end. */
  settleMs?: number;
  /** A console line meaning the MCU just started; default the virtual MCU's `[boot] BOOT`. */
  consoleStart?: RegExp;
  /**
   * true (default): arrange the flash and reset the MCU first. false: take the MCU as it runs now (no halt,
   * no programming, no reset) and only offer the plan — the next upgrade of the image a run just installed,
   * or of an MCU whose state after a failed upgrade is the point (it must still answer a plan). The plan
   * must then be pushed (`pushActively`): an idle MCU does not ask.
   */
  fresh?: boolean;
}

/** A dut run is its record (mode 'dut'): the same shape as a proxy run's, plus `dut`. */
export type DutRun = RunRecord & { dut: DutRecordPart };

export async function runDutUpgrade(station: Station, options: DutUpgradeOptions): Promise<DutRun> {
  return new DutFlow(station, options).run();
}

const hex = (n: number) => `0x${n.toString(16)}`;

class DutFlow {
  private readonly log: RunLog;
  private readonly recorder: Recorder;
  private readonly signal: AbortSignal | undefined;
  private readonly expect: Outcome[];
  private readonly faults: readonly Fault[];
  private readonly schedule: FaultSchedule;
  private readonly executor: FaultExecutor;
  private readonly reportWithinMs: number;
  private readonly settleMs: number;
  private readonly consoleStart: RegExp;
  private readonly fresh: boolean;

  private mcu!: StationMcu;
  private pkg!: Package;
  private target!: Image;
  private plan: PreparedPlan | undefined;
  private observer!: DutObserver;
  private unsubscribe: (() => void)[] = [];
  private wakeUp: (() => void) | undefined;
  private dirty = false;
  private firedSeen = 0;

  private arrange: DutRecordPart['arrange'] = { bootloader: 'not given', slotA: 'kept', slotB: 'erased', bootRecord: 'not arranged' };
  private bootBefore: BootRecord | undefined;
  private bootAfter: BootRecord | undefined;
  private slotA: SlotEvidence | undefined;
  private slotB: SlotEvidence | undefined;
  private moduleState: number | null = null;
  private urcPort: string | null = null;
  private settledWhy: string | undefined;

  constructor(
    private readonly station: Station,
    private readonly opts: DutUpgradeOptions,
  ) {
    this.recorder = opts.recorder ?? silentRecorder;
    this.signal = opts.signal;
    this.expect = opts.expect === undefined ? ['upgraded'] : typeof opts.expect === 'string' ? [opts.expect] : [...opts.expect];
    this.faults = opts.faults ?? [];
    this.schedule = new FaultSchedule(this.faults);
    this.log = new RunLog(this.recorder);
    this.executor = new FaultExecutor(
      {
        station,
        log: this.log,
        signal: this.signal,
        // The rig keeps no event cursor of its own in dut mode: nothing to acknowledge.
        rebootAcknowledged: () => undefined,
        reattach: () => this.attachModule(),
      },
      this.schedule,
    );
    const T = station.timeouts;
    this.reportWithinMs = opts.reportWithinMs ?? T.bootMs + Math.round(T.updateWaitMs / 10) + T.marginMs;
    this.settleMs = opts.settleMs ?? T.planWaitMs + T.urlWaitMs + DOWNLOAD_NOTIFY_LIMIT * T.downloadNotifyMs + T.readInactivityMs + T.updateWaitMs + 3 * this.reportWithinMs + T.marginMs;
    this.consoleStart = opts.consoleStart ?? /^\[boot\] BOOT\b/;
    this.fresh = opts.fresh ?? true;
  }

  // ---- the run --------------------------------------------------------------------------------------

  async run(): Promise<DutRun> {
    this.checkBeforeStart();
    let error: unknown;
    try {
      if (this.fresh) await this.arrangeFlash();
      else this.arrange = { bootloader: 'not given', slotA: 'kept', slotB: 'erased', bootRecord: 'not arranged: the MCU taken as it runs' };
      // Listening before the plan exists: a pushed plan's 10700 comes at once.
      this.attach();
      await this.main();
    } catch (err) {
      error = err;
      this.log.noteError(err, false);
    } finally {
      this.schedule.stop();
    }
    await this.executor.restoreNetwork();
    this.detach();
    this.observer?.finish(this.log.now());
    const aborted = this.signal?.aborted === true;
    if (!aborted && !(error instanceof ConfigError)) {
      try {
        await this.log.step('read back slot A, slot B and the boot record', () => this.readBack());
      } catch (err) {
        this.log.noteError(err, false);
        error ??= err;
      }
    }
    return this.finish(error);
  }

  private checkBeforeStart(): void {
    const { station, opts } = this;
    if (!station.mcu) {
      throw new ConfigError('dut mode needs the station’s MCU side', {
        station: station.name,
        expected: `stations.${station.name}.mcu: taps on the MCU↔module UART, the flash layout and the boot-record decoder`,
        seen: 'no mcu entry (this station runs proxy mode only)',
      });
    }
    this.mcu = station.mcu;
    const pkg = 'package' in opts.plan && !('id' in opts.plan) ? opts.plan.package : opts.package;
    if (!pkg) throw new ConfigError('a prepared plan needs its package', { station: station.name, expected: 'options.package (the package behind the plan)', seen: 'none' });
    this.pkg = pkg;
    if (pkg.type === 'delta' && pkg.sourceVersion !== opts.from.version) {
      throw new ConfigError(`delta ${pkg.name} does not start from ${opts.from.version}`, { station: station.name, expected: `a run from ${pkg.sourceVersion}`, seen: `--from ${opts.from.version}` });
    }
    this.target = pkg.apply(opts.from);
    const slot = this.mcu.layout.slotA;
    for (const [what, img] of [
      [`image ${opts.from.version}`, opts.from],
      [`image ${pkg.version}`, this.target],
    ] as const) {
      if (img.size > slot.size) throw new ConfigError(`${what} does not fit slot A`, { station: station.name, expected: `at most ${slot.size} bytes`, seen: `${img.size} bytes` });
      const id = identifyImage(img.bytes);
      if (id.state === 'valid' && id.header.loadAddress !== slot.address) {
        throw new ConfigError(`${what} is not linked for slot A`, { station: station.name, expected: `load address ${hex(slot.address)} (the bootloader boots slot A only)`, seen: hex(id.header.loadAddress) });
      }
    }
    if (opts.bootloader && opts.bootloader.size > this.mcu.layout.bootloader.size) {
      throw new ConfigError('the bootloader does not fit its region', { station: station.name, expected: `at most ${this.mcu.layout.bootloader.size} bytes`, seen: `${opts.bootloader.size} bytes` });
    }
    checkFaults(station.name, this.faults, station.power, this.mcu.console ? { available: true, why: '' } : { available: false, why: `stations.${station.name}.mcu has no console` });
    for (const cf of opts.cloudFaults ?? []) {
      if (!station.plans.cloudFaults.includes(cf.kind)) {
        throw new ConfigError(`the plan source cannot inject cloud fault '${cf.kind}'`, { station: station.name, expected: station.plans.cloudFaults.join(', ') || 'none on this plan source', seen: cf.kind });
      }
    }
  }

  /** Bootloader and `from` in place (written only when the read-back differs), slot B erased, the record confirmed. */
  private async arrangeFlash(): Promise<void> {
    const { station, signal } = this;
    const { probe } = station;
    const layout = this.mcu.layout;
    const o = signal ? { signal } : {};
    this.log.phase = 'arrange';
    // Frozen first: the running image must not talk to the module or write its flash while the rig arranges it.
    await this.log.step('arrange: halt the MCU', async () => {
      try {
        await probe.reset('halt', o);
      } catch (err) {
        // A probe left without its target by an earlier run: start OpenOCD afresh once.
        if (signal?.aborted) throw err;
        await probe.restart(o);
        await probe.reset('halt', o);
      }
    });
    const bl = this.opts.bootloader;
    if (bl) {
      const r = await this.log.step(`arrange: bootloader ${bl.version} at ${hex(layout.bootloader.address)}`, () => probe.program(layout.bootloader.address, bl.bytes, { ...o, preverify: true }));
      this.arrange.bootloader = r.written ? 'written' : 'kept';
    }
    const from = this.opts.from;
    const r = await this.log.step(`arrange: slot A ← ${from.version}`, () => probe.program(layout.slotA.address, from.bytes, { ...o, preverify: true }));
    this.arrange.slotA = r.written ? 'written' : 'kept';
    await this.log.step('arrange: erase slot B', () => probe.erase(layout.slotB.address, layout.slotB.size, o));
    await this.log.step('arrange: boot record confirmed A', async () => {
      const read = (a: number, n: number) => probe.readRegion(a, n, o);
      let rec = await readBootRecord(this.mcu.bootRecord, layout, read);
      if (!rec) {
        this.arrange.bootRecord = 'no decoder: left as it is';
        return;
      }
      if (rec.phase !== 'confirmed') {
        const was = rec.summary;
        // vmcu-1: an erased record area means confirmed (docs/virtual-mcu.md §4). MCUboot: slot B is erased
        // already, and an erased primary trailer asks for nothing.
        const regions = this.mcu.bootRecord === 'vmcu-1' ? layout.record : [{ address: layout.slotA.address + layout.slotA.size - (layout.swapUnit ?? 2048), size: layout.swapUnit ?? 2048 }];
        for (const reg of regions) await probe.erase(reg.address, reg.size, o);
        rec = await readBootRecord(this.mcu.bootRecord, layout, read);
        if (rec?.phase !== 'confirmed') {
          throw new FirmwareError('the boot record could not be made to say "confirmed A"', { station: station.name, expected: 'a confirmed record after erasing it', seen: rec?.summary ?? 'nothing' });
        }
        this.arrange.bootRecord = `was ${was}; erased: ${rec.summary}`;
      } else this.arrange.bootRecord = rec.summary;
      this.bootBefore = rec;
    });
  }

  private async main(): Promise<void> {
    const { station, signal } = this;
    const T = station.timeouts;
    const cmd = { timeoutMs: T.commandMs + T.marginMs, ...(signal ? { signal } : {}) };
    this.log.phase = 'observe';
    // Observing only: where the module stands and where the MCU left its URCs going (protocol §6).
    await this.log.step('module state (USB AT port, observe only)', async () => {
      this.moduleState = (await station.module.qt.state(cmd)).state;
      this.urcPort = await station.module.qt.urcPort(cmd).catch((err: unknown) => {
        this.log.noteError(err, true);
        return null;
      });
    });
    this.plan = await this.log.step('prepare plan', async () => {
      const o = signal ? { signal } : {};
      await station.plans.clear(o);
      const p = 'id' in this.opts.plan ? this.opts.plan : await station.plans.prepare(this.opts.plan, o);
      for (const cf of this.opts.cloudFaults ?? []) await station.plans.injectCloudFault(cf.kind, cf.params);
      return p;
    });
    this.schedule.start(() => this.poke());
    if (this.fresh) await this.log.step('reset the MCU (reset run over SWD)', async () => {
      // Noted before the reset: the MCU may boot and talk before OpenOCD's command returns.
      this.observer.mcuStarted('the rig reset the MCU (reset run over SWD)');
      this.observer.note('reset run over SWD');
      await station.probe.reset('run', signal ? { signal } : {});
    });
    await this.log.step('observe the upgrade', () => this.observe());
  }

  /** Until settled: execute due faults, note MCU starts they cause, wake on every tapped line, console line or due fault. */
  private async observe(): Promise<void> {
    const until = performance.now() + this.settleMs;
    for (;;) {
      this.dirty = false;
      // Faults and errors are labelled with the phase the rig sees the upgrade in.
      this.log.phase = this.observer.phase ?? 'observe';
      try {
        await this.executor.checkpoint();
      } catch (err) {
        if (!(err instanceof Disturbance)) throw err;
        // The MCU recovers on its own (it owns the dialogue): the rig only notes what it did.
      }
      this.notePower();
      const why = this.observer.settled(this.log.now());
      // A fault whose trigger came is still to be run (its time offset is not over): the run is what comes
      // after it, even when the upgrade looked settled just before (a cut 20 ms after the MCU confirmed).
      if (why !== undefined && !this.schedule.waitingOffset) {
        this.settledWhy = why;
        this.observer.note(`settled: ${why}`);
        return;
      }
      const trouble = this.mcu.trouble;
      if (trouble) throw new InfrastructureError('a tap or the console went away during the run', { station: this.station.name, expected: 'the taps and the console open to the end', seen: trouble });
      const left = until - performance.now();
      if (left <= 0) {
        throw new ProtocolError(`the upgrade did not settle within ${this.settleMs} ms`, {
          station: this.station.name,
          expected: 'a module result (10705/10706) and the MCU’s version report after its last start, or a refusal',
          seen: this.observer.tap.length > 0 ? `the transcript ends with ${this.observer.tap.slice(-3).map((l) => JSON.stringify(formatTapLine(l).trim())).join(', ')}` : 'nothing tapped at all',
        });
      }
      if (this.dirty) continue;
      const deadline = this.observer.nextDeadline();
      const wait = Math.max(1, Math.min(left, deadline === undefined ? left : deadline - this.log.now() + 1));
      await this.sleepUntilPoked(wait);
    }
  }

  /** Each fault the executor ran on the target is a start of the MCU (it boots again). */
  private notePower(): void {
    const fired = this.log.fired;
    for (; this.firedSeen < fired.length; this.firedSeen++) {
      const f = fired[this.firedSeen]!;
      this.observer.note(`fault ${f.fault}: ${f.effect}`, f.t);
      if (/^target (reset|power-cycled)/.test(f.effect)) this.observer.mcuStarted(`fault ${f.fault}`, f.t);
    }
  }

  private poke(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  private sleepUntilPoked(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.signal?.removeEventListener('abort', done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.signal?.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
      if (this.signal?.aborted) done();
    }).then(() => {
      if (this.signal?.aborted) throw new InfrastructureError('the dut run was aborted', { station: this.station.name, cause: this.signal.reason });
    });
  }

  // ---- listening ------------------------------------------------------------------------------------

  private attach(): void {
    this.observer = new DutObserver(this.log, this.schedule, {
      component: this.station.component,
      targetVersion: this.pkg.version,
      reportWithinMs: this.reportWithinMs,
      consoleStart: this.consoleStart,
    });
    this.unsubscribe.push(
      this.mcu.observe(
        (f) => {
          this.observer.frame(f);
          this.poke();
        },
        (l) => {
          this.observer.consoleLine(l);
          this.poke();
        },
      ),
    );
    this.attachModule();
  }

  private moduleSubs: (() => void)[] = [];

  /** The USB AT port (again, after it was reopened): its events and transcript go into the record. */
  private attachModule(): void {
    for (const u of this.moduleSubs.splice(0)) u();
    const { module } = this.station;
    this.moduleSubs.push(
      module.qt.on('event', (e: ModuleEvent) => {
        this.log.addEvent(e);
        this.observer.usbEvent(e);
        this.poke();
      }),
      module.at.on('transcript', (x: TranscriptEntry) => this.log.addTranscript(x)),
    );
  }

  private detach(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    for (const u of this.moduleSubs.splice(0)) u();
  }

  // ---- the verdict's evidence -----------------------------------------------------------------------

  private async readBack(): Promise<void> {
    const { station, signal } = this;
    const layout = this.mcu.layout;
    const o = signal ? { signal } : {};
    if (this.executor.targetDisturbed) await reviveProbe(station, signal);
    const size = Math.max(this.opts.from.size, this.target.size);
    const a = await station.probe.readRegion(layout.slotA.address, Math.min(layout.slotA.size, size), o);
    const b = await station.probe.readRegion(layout.slotB.address, Math.min(layout.slotB.size, size), o);
    this.bootAfter = await readBootRecord(this.mcu.bootRecord, layout, (addr, n) => station.probe.readRegion(addr, n, o));
    const installing = this.observer?.installAt !== undefined;
    this.slotA = this.slotEvidence('slot A', layout.slotA.address, a, installing ? 'target' : 'from');
    this.slotB = this.slotEvidence('slot B', layout.slotB.address, b, 'target');
    const lines = (s: SlotEvidence, name: string) => [`${name} at ${hex(s.address)}, ${s.size} bytes read: ${s.identity}`, `  holds: ${s.holds}`, `  against ${s.against}: ${s.comparison}${s.tapLine ? ` (from ${s.tapLine})` : ''}`];
    this.recorder.attach(
      'read-back: slots and boot record',
      [...lines(this.slotA, 'slot A'), ...lines(this.slotB, 'slot B'), `boot record before: ${this.bootBefore?.summary ?? 'not decoded'}`, `boot record after: ${this.bootAfter?.summary ?? 'not decoded'}`].join('\n'),
      'text/plain',
    );
  }

  private slotEvidence(name: string, address: number, flash: Uint8Array, expected: 'from' | 'target'): SlotEvidence {
    const from = this.opts.from;
    const target = this.target;
    const same = (img: Image) => flash.length >= img.size && sha256Hex(flash.subarray(0, img.size)) === img.sha256;
    const holds: SlotEvidence['holds'] = same(target) ? 'target' : same(from) ? 'from' : flash.every((x) => x === 0xff) ? 'erased' : 'other';
    const id = identifyImage(flash);
    const slotA = this.mcu.layout.slotA.address;
    // Bootable means a whole image linked for slot A (the bootloader boots nothing else).
    const identified = id.state === 'valid' && id.header.loadAddress === slotA ? { component: id.header.component, version: id.header.version } : undefined;
    const identity = id.state === 'valid' && id.header.loadAddress !== slotA ? `${describeIdentity(id)}, but linked for ${hex(id.header.loadAddress)}, not slot A` : describeIdentity(id);
    const ref = holds === 'from' ? from : holds === 'target' ? target : expected === 'target' ? target : from;
    const c = compareImages(ref.bytes, flash.subarray(0, ref.size), { baseAddress: address });
    const firstDifference = c.firstDifference === null ? null : address + c.firstDifference;
    let tapLine: string | undefined;
    if (c.firstDifference !== null) {
      const firstFault = this.log.fired[0];
      // A byte of a full package is the byte at the same offset of the image; a delta's bytes do not map.
      if (name === 'slot B' && ref === target && this.pkg.type === 'full') tapLine = this.observer?.blockLine(c.firstDifference);
      if (tapLine === undefined && firstFault) tapLine = this.observer?.lineBefore(firstFault.t);
      if (tapLine !== undefined && name === 'slot A' && firstFault) tapLine = `${tapLine}, the last line before fault ${firstFault.fault}`;
    }
    return {
      address,
      size: flash.length,
      holds,
      identified,
      identity,
      against: `${ref.version} (${ref === target ? 'target' : 'from'})`,
      firstDifference,
      comparison: describeComparison(c),
      ...(tapLine ? { tapLine } : {}),
    };
  }

  // ---- the record -----------------------------------------------------------------------------------

  private finish(error: unknown): DutRun {
    const { station, opts, log } = this;
    const obs = this.observer as DutObserver | undefined;
    const info = error === undefined ? undefined : errorInfo(error);
    const verdict = judgeDut({
      expected: this.expect,
      fromVersion: opts.from.version,
      targetVersion: this.pkg.version,
      decision: obs?.decision,
      moduleResult: obs?.moduleResult,
      lastReport: obs?.lastReport,
      silentAfterStart: obs?.silentStart(log.now()) !== undefined,
      trialSeen: obs?.trialSeen ?? false,
      downloadRejected: obs?.downloadRejected,
      installRequested: obs?.installAt !== undefined,
      installedBadDownload: obs?.installedBadDownload,
      downloadNotRestarted: obs?.downloadNotRestarted,
      planNotAnswered: obs?.planNotAnswered,
      slotA: this.slotA,
      slotB: this.slotB,
      bootRecord: this.bootAfter,
      error: info,
    });
    // A run that ended early but still got a verdict from the flash says how it ended.
    if (info && !verdict.failure) verdict.summary += ` (the run ended early: ${info.message.split('\n')[0]})`;
    // Nothing observed: the run never got to the image (arranging the flash or the plan failed), whatever the
    // flash shows now says nothing about it.
    const verdictOf = this.plan === undefined && info ? fail({ expected: this.expect }, info.kind === 'internal' ? 'internal' : info.kind === 'config' || info.kind === 'usage' ? 'config' : 'infrastructure', info.kind === 'internal' || info.kind === 'config' || info.kind === 'usage' ? info.kind : 'infrastructure', `the run never reached the MCU's upgrade: ${info.message.split('\n')[0]}`) : verdict;
    log.measurePhases();
    const spec = 'id' in opts.plan ? undefined : opts.plan;
    const a = this.slotA;
    const readback: ReadbackResult | null = a
      ? { address: a.address, size: a.size, identified: a.identified, identity: a.identity, matchesTarget: a.holds === 'target', matchesCurrent: a.holds === 'from', firstDifference: a.firstDifference, comparison: a.comparison }
      : null;
    const blocks = obs?.blocks ?? [];
    const announced = obs?.announced;
    const img = (i: Image) => ({ version: i.version, size: i.size, sha256: i.sha256 });
    const dut: DutRecordPart = {
      from: img(opts.from),
      target: img(this.target),
      bootloader: opts.bootloader ? img(opts.bootloader) : null,
      layout: this.mcu.layout,
      bootRecordDecoder: this.mcu.bootRecord,
      arrange: this.arrange,
      bootRecord: { before: this.bootBefore ?? null, after: this.bootAfter ?? null },
      slots: { a: this.slotA ?? null, b: this.slotB ?? null },
      tap: obs?.tap ?? [],
      console: obs?.console ?? [],
      reports: (obs?.reports ?? []).map((r) => ({ t: r.t, version: r.version })),
      starts: (obs?.starts ?? []).map((s) => ({ ...s })),
      moduleEvents: obs?.moduleEvents ?? [],
      module: { state: this.moduleState, urcPort: this.urcPort },
      settled: this.settledWhy ?? null,
      options: { reportWithinMs: this.reportWithinMs, settleMs: this.settleMs, consoleStart: this.consoleStart.source, fresh: this.fresh },
    };
    const bare: RunRecord = {
      format: RUN_RECORD_FORMAT,
      version: RUN_RECORD_VERSION,
      flow: 'dut',
      mode: 'dut',
      startedAt: log.startedAt,
      durationMs: log.now(),
      station: recordedStation(station),
      ...recordedUpgrade(station, this.plan, this.pkg, spec),
      current: img(opts.from),
      options: {
        // The MCU's own readings and block size: what the record can say of them is what was tapped.
        battery: 0,
        blockSize: blocks.reduce((m, b) => Math.max(m, b.length), 0) || 1024,
        crcAlgorithm: this.plan?.expected.crcAlgorithm ?? 'crc-32',
        expect: this.expect,
        maxRecoveries: 0,
      },
      faults: this.faults.map(formatFault),
      cloudFaults: (opts.cloudFaults ?? []).map((c) => ({ kind: c.kind, ...(c.params ? { params: c.params } : {}) })),
      fired: log.fired,
      events: log.events,
      transcript: log.transcript,
      phases: [...log.phases].sort((x, y) => x.start - y.start),
      read: { bytes: obs?.blockBytes ?? 0, blocks: blocks.length, ms: Math.round(obs?.readSpanMs ?? 0), bytesPerSecond: obs && obs.readSpanMs > 0 ? Math.round((obs.blockBytes * 1000) / obs.readSpanMs) : 0 },
      progress: thin(blocks.map((b) => ({ t: obs!.tap[b.line]!.t, offset: b.start + b.length }))),
      download: announced ? { verified: obs?.downloadRejected === undefined, problems: obs?.downloadRejected ? [`the MCU: ${obs.downloadRejected}`] : [], announced: { size: announced.size, md5: announced.md5, crc: announced.crc, ...(announced.sha256 ? { sha256: announced.sha256 } : {}) } } : null,
      refusal: obs?.decision === 'refused' ? 'the MCU refused the plan (AT+QIOTUPDATE=0)' : null,
      readback,
      verdict: verdictOf,
      errors: log.errors,
      dut,
    };
    // A dut record carries its images whatever the manifests hold (a defect image shares its version with the
    // good one, and dut images are a few KB): `rig repro` needs no manifest to run it again.
    const fw = recordedFirmware(this.pkg, opts.from, undefined);
    const bootloaderBytes = opts.bootloader ? { component: opts.bootloader.component, version: opts.bootloader.version, base64: Buffer.from(opts.bootloader.bytes).toString('base64') } : undefined;
    bare.fired = landFaults(bare);
    const record = completeRecord(bare, { entry: station.entry, firmware: { ...fw, ...(bootloaderBytes ? { bootloader: bootloaderBytes } : {}) } }) as DutRun;
    this.recorder.attach('tap transcript (both directions and the console)', dut.tap.map(formatTapLine).join('\n'), 'text/plain');
    if (dut.console.length > 0) this.recorder.attach('MCU console', dut.console.map((l) => `${(l.t / 1000).toFixed(3).padStart(9)} ${l.text}`).join('\n'), 'text/plain');
    this.recorder.attach('boot record before/after', `before: ${dut.bootRecord.before?.summary ?? 'not decoded'}\nafter:  ${dut.bootRecord.after?.summary ?? 'not decoded'}\n`, 'text/plain');
    publishRecord(this.recorder, record, this.schedule);
    return record;
  }
}
