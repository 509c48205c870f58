// The proxy upgrade flow (docs/architecture.md §1): the rig plays the MCU's part of Quectel's SOTA example — exactly
// its [TX] lines — checks what it downloads, rebuilds the image, programs it over SWD, reads it back and
// reports the new version. It is the reference implementation of the MCU side of docs/protocol.md §5.
//
//   const run = await runProxyUpgrade(station, { plan: spec, current: images.v1, faults, recorder, signal });
//   run.verdict.outcome   // 'upgraded' | 'refused' | 'failed-intact' | undefined (then run.verdict.failure)
//
// Every wait is event-driven and bounded by the protocol's own timer plus station.timeouts.marginMs. Faults
// (faults.ts) are executed at their trigger; the flow then carries on as a real MCU would: after a module
// reboot it registers again (QIOTREG=1 does not survive a boot, §2.2), announces its version only while no
// OTA is in flight (§4.3), requests again, and restarts the download from byte 0 (§4.4); in UPDATING it
// waits for the 10704 the module re-emits at boot and never re-announces the old version.
//
// Giving up on a bad download: the flow does not program it. It reports the version it really runs with
// AT+QIOTMCUVER while the module is in DOWNLOAD_OK; §4.3 says any version report for the component under
// OTA settles it, and one that differs from the target settles it as a failure (10706), at once and with the
// cloud told (status 12, so its Retry Times strategy applies). The alternatives are worse: AT+QIOTUPDATE=0
// is only accepted in RECEIVED_PLAN, silence costs the 60 s read-inactivity timer and reports nothing
// meaningful, and AT+QIOTUPDATE=3 would claim the MCU is installing.
import type { TranscriptEntry } from '../at/transcript.ts';
import { ConfigError, FirmwareError, ProtocolError, RigError } from '../errors.ts';
import { DEFAULT_CRC_ALGORITHM, crcParams, formatCrc } from '../images/crc.ts';
import { locateVersion } from '../images/locator.ts';
import type { Image } from '../images/image.ts';
import { loadManifest } from '../images/manifest.ts';
import type { FirmwareSet } from '../images/manifest.ts';
import type { Package } from '../images/package.ts';
import { describeVerification, verifyPackage } from '../images/verify.ts';
import { EventFailedError, EventTimeoutError } from '../quecthing/cursor.ts';
import type { EventCursor } from '../quecthing/cursor.ts';
import { isEvent } from '../quecthing/events.ts';
import type { ModuleEvent, OtaDownloadStartEvent, OtaPlanEvent } from '../quecthing/events.ts';
import { UpdateAction } from '../quecthing/quecthing.ts';
import type { OtaBlock, QuecThing } from '../quecthing/quecthing.ts';
import type { PreparedPlan, Station, UpgradeSpec } from '../station/station.ts';
import { Disturbance, FaultExecutor } from './fault-exec.ts';
import { formatFault } from './faults.ts';
import type { Fault } from './faults.ts';
import { silentRecorder } from './recorder.ts';
import type { Recorder } from './recorder.ts';
import { completeRecord, landFaults, publishRecord, recordedFirmware, recordedStation, recordedUpgrade, RUN_RECORD_FORMAT, RUN_RECORD_VERSION, thin } from './record.ts';
import type { CloudFault, RunRecord } from './record.ts';
import { DownloadAssembly } from './pieces.ts';
import { ProtocolTimerError, RunLog, errorInfo } from './run-log.ts';
import { FaultSchedule, checkFaults } from './schedule.ts';
import { describeReadback, judgeReadback } from './readback.ts';
import { programProgress } from './recorder.ts';
import { reviveProbe } from './slots.ts';
import { judge } from './verdict.ts';
import type { Evidence, Outcome, ReadbackResult } from './verdict.ts';
import { ensureRegistered } from './module.ts';

export { ProtocolTimerError } from './run-log.ts';

export interface ProxyUpgradeOptions {
  /** The plan to expect: prepared already, or a spec the flow prepares through station.plans. */
  plan: PreparedPlan | UpgradeSpec;
  /** The package behind a PreparedPlan (a spec carries its own): needed to rebuild the image from a delta. */
  package?: Package;
  /** What the target holds now: the source of a delta, and the image that must stay intact on failure. */
  current: Image;
  faults?: readonly Fault[];
  /** Cloud-side faults injected once the plan is prepared (e.g. { kind: 'corrupt-next-download' }). */
  cloudFaults?: readonly CloudFault[];
  recorder?: Recorder;
  signal?: AbortSignal;
  /** The proxy MCU's own battery reading, percent (checked against 10700's minimum); default 100. */
  battery?: number;
  /** Outcomes that count as a pass; default 'upgraded'. */
  expect?: Outcome | readonly Outcome[];
  /** AT+QIOTOTARD length; default 1024 (the SDK's buffer). */
  blockSize?: number;
  /**
   * CRC algorithm for 10701's CRC (protocol §9.6 leaves it open); default the prepared plan's (the one the
   * station's plan source says its cloud uses), else CRC-32/IEEE.
   */
  crcAlgorithm?: string;
  /** Recoveries (module reboots, restarted downloads, re-programming) before the flow gives up; default 5. */
  maxRecoveries?: number;
  /**
   * Longest download of one piece, from the first wait to its 10703; default the URL wait plus
   * DOWNLOAD_NOTIFY_LIMIT periods of 10702 plus the margin (10 minutes on a real module).
   */
  downloadLimitMs?: number;
  /**
   * The firmware set the package and the starting image come from; what is not in it under the same name
   * is embedded in the record (a suite's temporary build), so `rig repro` has the bytes once it is gone.
   * Default: the project's manifest (fixtures/manifest.json); without one, both are embedded.
   */
  firmware?: FirmwareSet;
}

/** 10702 periods a piece's download may take by default (5 s each on a real module: 10 minutes). */
export const DOWNLOAD_NOTIFY_LIMIT = 120;

/** The MCU refused the download (digests, rebuilt image): the reasons, one per line, as the step's failure. */
class PackageRejected extends FirmwareError {
  constructor(readonly problems: readonly string[]) {
    super(`package rejected: ${problems.join('; ') || 'the download check failed'}`, { expected: 'the downloaded file to match 10701 and the plan, and to rebuild the target image' });
  }
}

/** A proxy run is its record: save it with serializeRunRecord for `rig repro`. */
export type ProxyRun = RunRecord;

type Phase = 'prepare' | 'register' | 'plan' | 'download' | 'updating' | 'reporting' | 'done';

/** The module settled the OTA with 10706 where the flow did not expect it. */
class ModuleFailed extends Error {
  constructor(readonly raw: string) {
    super(`module reported ${raw}`);
  }
}

const isOta7 = (code: number) => (e: ModuleEvent) => e.kind !== 'reboot' && e.kind !== 'urc' && e.kind !== 'malformed' && e.type === 7 && e.code === code;
const is10706 = isOta7(10706);

/**
 * Runs one upgrade and returns its record, whatever the outcome (see `verdict`). Throws only a ConfigError,
 * before anything is sent, when the run cannot be made as asked: a fault the station has no line for, a
 * cloud fault its plan source cannot inject, a prepared plan without its package, an image larger than the
 * slot, a bad block size or CRC name.
 */
export async function runProxyUpgrade(station: Station, options: ProxyUpgradeOptions): Promise<ProxyRun> {
  return new ProxyFlow(station, options).run();
}

class ProxyFlow {
  private readonly log: RunLog;
  private readonly recorder: Recorder;
  private readonly signal: AbortSignal | undefined;
  private readonly blockSize: number;
  private crcAlgorithm: string;
  private readonly battery: number;
  private readonly expect: Outcome[];
  private readonly maxRecoveries: number;
  private readonly faults: readonly Fault[];
  /** What the module said that the protocol allows and the examples never show: worth a look, not a failure. */
  private readonly warnings: string[] = [];
  private readonly schedule: FaultSchedule;
  private readonly executor: FaultExecutor;

  private pkg: Package | undefined;
  private plan: PreparedPlan | undefined;
  private ev: EventCursor | undefined;
  private unsubscribe: (() => void)[] = [];
  private wake: AbortController | undefined;
  /** While the image is written: runs a fault that comes due then alongside the write. */
  private duringWrite: (() => void) | undefined;
  private rebootAcks = 0;
  private reboots = 0;
  private failures10706 = 0;
  private recoveries = 0;
  /** When the module's update wait started (the 10704 the flow last took), performance.now(). */
  private updatingSince: number | undefined;
  /** When the latest 10704 arrived: the module arms its update wait then, not when the flow gets to it. */
  private last10704At: number | undefined;
  /** When the module's read-inactivity timer last restarted (a 10703, an answered block read). */
  private lastReadAt: number | undefined;

  // Download state: the whole file, assembled at absolute offsets.
  private announced: OtaDownloadStartEvent | undefined;
  private download: DownloadAssembly | undefined;

  // Evidence.
  private decision: Evidence['decision'];
  private moduleResult: 10705 | 10706 | undefined;
  private downloadVerified: boolean | undefined;
  private downloadProblems: string[] = [];
  private refusal: string | undefined;
  private updating = false;
  private programmed = false;
  private readback: ReadbackResult | undefined;
  private firmware: FirmwareSet | undefined;
  private image: Image | undefined;

  // Record (the rest is in the log).
  private readonly progress: { t: number; offset: number }[] = [];
  private readBytes = 0;
  private readBlocks = 0;
  private readMs = 0;

  constructor(
    private readonly station: Station,
    private readonly opts: ProxyUpgradeOptions,
  ) {
    this.recorder = opts.recorder ?? silentRecorder;
    this.signal = opts.signal;
    this.blockSize = opts.blockSize ?? 1024;
    this.crcAlgorithm = crcParams(opts.crcAlgorithm ?? DEFAULT_CRC_ALGORITHM).name;
    this.battery = opts.battery ?? 100;
    this.expect = opts.expect === undefined ? ['upgraded'] : typeof opts.expect === 'string' ? [opts.expect] : [...opts.expect];
    this.maxRecoveries = opts.maxRecoveries ?? 5;
    this.faults = opts.faults ?? [];
    this.schedule = new FaultSchedule(this.faults);
    this.log = new RunLog(this.recorder);
    this.executor = new FaultExecutor(
      {
        station,
        log: this.log,
        signal: this.signal,
        rebootAcknowledged: () => this.rebootAcks++,
        reattach: () => this.reattach(),
      },
      this.schedule,
    );
  }

  private get phase(): Phase {
    return this.log.phase as Phase;
  }

  private set phase(p: Phase) {
    this.log.phase = p;
  }

  private get qt(): QuecThing {
    return this.station.module.qt;
  }

  private get T() {
    return this.station.timeouts;
  }

  // ---- the run --------------------------------------------------------------------------------------

  async run(): Promise<ProxyRun> {
    // Not a run at all: nothing is sent, the caller gets the ConfigError (the CLI's exit code 2).
    this.checkBeforeStart();
    // The releases the run's images belong to: they name what the flash holds and carry the version locator.
    this.firmware = await this.firmwareSet();
    let error: unknown;
    this.attach();
    try {
      await this.main();
    } catch (err) {
      error = err;
      this.log.noteError(err, false);
    } finally {
      this.schedule.stop();
    }
    await this.executor.restoreNetwork();
    // The verdict rests on the flash: read it back unless the run was aborted or the probe is the problem.
    const aborted = this.signal?.aborted === true;
    // Read again when a target fault came after the read-back: the verdict rests on the last word of the flash.
    if ((!this.readback || this.executor.targetDisturbed) && !aborted && !(error instanceof ConfigError) && this.pkg) {
      try {
        await this.log.step('read back', () => this.readBack());
      } catch (err) {
        this.log.noteError(err, false);
        error ??= err;
      }
    }
    this.detach();
    return this.finish(error, this.firmware);
  }

  /** The set the record's firmware is matched against; a missing or broken manifest means "embed". */
  private async firmwareSet(): Promise<FirmwareSet | undefined> {
    if (this.opts.firmware) return this.opts.firmware;
    try {
      return await loadManifest();
    } catch {
      return undefined;
    }
  }

  private checkBeforeStart(): void {
    const { station, opts } = this;
    const { plan } = opts;
    this.pkg = 'package' in plan && !('id' in plan) ? plan.package : opts.package;
    if (!this.pkg) {
      throw new ConfigError('a prepared plan needs its package', { station: station.name, expected: 'options.package (the package behind the plan)', seen: 'none' });
    }
    if (!Number.isInteger(this.blockSize) || this.blockSize <= 0) {
      throw new ConfigError('invalid block size', { station: station.name, expected: 'a whole number of bytes > 0', seen: String(this.blockSize) });
    }
    checkFaults(station.name, this.faults, station.power);
    for (const cf of opts.cloudFaults ?? []) {
      if (!station.plans.cloudFaults.includes(cf.kind)) {
        throw new ConfigError(`the plan source cannot inject cloud fault '${cf.kind}'`, {
          station: station.name,
          expected: station.plans.cloudFaults.length > 0 ? `one of ${station.plans.cloudFaults.join(', ')}` : 'no cloud faults (this plan source has none)',
          seen: cf.kind,
        });
      }
    }
    if (this.pkg.target.size > station.layout.slotSize) {
      throw new ConfigError(`image ${this.pkg.version} does not fit the slot`, {
        station: station.name,
        expected: `at most ${station.layout.slotSize} bytes`,
        seen: `${this.pkg.target.size} bytes`,
      });
    }
  }

  private async main(): Promise<void> {
    const { station, opts } = this;
    this.plan = await this.log.step('prepare plan', async () => {
      const p = 'id' in opts.plan ? opts.plan : await station.plans.prepare(opts.plan, { signal: this.signal });
      for (const cf of opts.cloudFaults ?? []) await station.plans.injectCloudFault(cf.kind, cf.params);
      return p;
    });
    // The download is checked with the algorithm the cloud computes 10701's CRC with.
    if (opts.crcAlgorithm === undefined && this.plan.expected.crcAlgorithm !== undefined) this.crcAlgorithm = crcParams(this.plan.expected.crcAlgorithm).name;
    this.schedule.start(() => (this.duringWrite ? this.duringWrite() : this.wake?.abort(new Error('a fault is due'))));

    this.phase = 'register';
    // The module may have restarted since the station set its echo (a fault of an earlier run, a power line
    // at its safe level between tests): the run talks the way the station is configured to from its start.
    if (station.module.echoSetting !== 'keep') await this.log.step(`echo ${station.module.echoSetting}`, () => this.applyEcho());
    await this.log.step('register', () => ensureRegistered(station, { signal: this.signal, recorder: this.recorder }));
    // No OTA of ours is in flight yet, so announcing the running version is safe (§4.3) and needed (FAQ 10).
    await this.log.step('set version', () => this.qt.setMcuVersion(station.component, opts.current.version, this.cmd()));

    this.ev = this.qt.events();
    this.phase = 'plan';
    const plan = await this.planPhase();
    if (!plan) return;

    this.phase = 'download';
    await this.downloadPhase();

    // A rejected download is a failed check (✘ with its reasons in the step), not an error of the run: the
    // MCU's answer to it is to report the version it runs (giveUp).
    const rejected = await this.log.step('verify package', async () => {
      if (this.verifyDownload()) return undefined;
      throw new PackageRejected(this.downloadProblems.filter((p) => !p.startsWith('note:')));
    }).catch((err: unknown) => {
      if (err instanceof PackageRejected) return err;
      throw err;
    });
    if (rejected) {
      await this.giveUp();
      return;
    }

    await this.log.step('update', async () => {
      await this.qt.otaUpdate(UpdateAction.updating, this.cmd());
      this.phase = 'updating';
      this.schedule.at('after-update3');
      await this.untilSettled(async () => {
        if (this.updating) return;
        // The module may report to the cloud before it says 10704; what bounds the wait is its own update
        // wait, armed by AT+QIOTUPDATE=3, after which it ends the OTA with 10706 (protocol §4.2).
        await this.waitFor(isEvent('ota-updating'), this.T.updateWaitMs + this.T.marginMs, '+QIOTEVT: 7,10704 within the update wait after AT+QIOTUPDATE=3');
        this.updating = true;
        this.updatingSince = this.last10704At ?? performance.now();
      });
    });

    await this.programPhase();
    const rb = await this.log.step('read back', () => this.withinUpdateWait('reading back', () => this.readBack()));
    if (!rb.matchesTarget) {
      // The MCU does not claim a version its flash does not hold.
      throw new FirmwareError('the image read back is not the image programmed', {
        station: station.name,
        expected: `${this.pkg!.version} at 0x${station.layout.slotAddress.toString(16)}`,
        seen: rb.comparison,
      });
    }

    this.schedule.at('before-version-report');
    await this.untilSettled(async () => {
      await this.executor.checkpoint();
    });
    this.phase = 'reporting';
    await this.log.step('report version', async () => {
      await this.untilSettled(async () => {
        await this.qt.setMcuVersion(station.component, this.pkg!.version, this.cmd());
        // 10705 may follow the module's report to the cloud: a round trip, not a command's answer.
        await this.waitFor(isEvent('ota-success'), this.T.resultWaitMs + this.T.marginMs, '+QIOTEVT: 7,10705 after the version report');
      });
      this.moduleResult = 10705;
    });
    this.phase = 'done';
  }

  // ---- plan -------------------------------------------------------------------------------------------

  /** Requests the plan, checks it, refuses or confirms. Returns undefined when refused. */
  private async planPhase(): Promise<OtaPlanEvent | undefined> {
    for (;;) {
      try {
        const e = await this.log.step('request plan', async () => {
          await this.qt.otaRequest({ sha256: true, ...this.cmd() });
          return this.waitFor(
            (x): x is OtaPlanEvent => x.kind === 'ota-plan' && x.component === this.station.component,
            this.T.planWaitMs + this.T.marginMs,
            `+QIOTEVT: 7,10700,"${this.station.component}",…`,
          );
        });
        const refusal = await this.checkPlan(e);
        if (refusal !== undefined) {
          await this.log.step('refuse', () => this.qt.otaUpdate(UpdateAction.refuse, this.cmd()));
          this.decision = 'refused';
          this.refusal = refusal;
          this.recorder.measure('refused', 1, 'count');
          return undefined;
        }
        await this.log.step('confirm', () => this.qt.otaUpdate(UpdateAction.confirm, this.cmd()));
        this.decision = 'upgrade';
        return e;
      } catch (err) {
        if (!(err instanceof Disturbance)) throw err;
        await this.recover(err);
        await this.qt.setMcuVersion(this.station.component, this.opts.current.version, this.cmd());
      }
    }
  }

  /** The MCU's own checks (a real MCU makes them), then the rig's expectation. Returns a refusal reason. */
  private async checkPlan(e: OtaPlanEvent): Promise<string | undefined> {
    const { current } = this.opts;
    const ex = this.plan!.expected;
    const mismatch: string[] = [];
    if (e.target !== ex.targetVersion) mismatch.push(`target ${JSON.stringify(e.target)} instead of ${JSON.stringify(ex.targetVersion)}`);
    if (e.source !== ex.sourceVersion) mismatch.push(`source ${JSON.stringify(e.source)} instead of ${JSON.stringify(ex.sourceVersion)}`);
    // The last field is the "disk space required" (protocol §3, 10700): equal to the file size in every
    // example, not promised to be. A different value is worth a look, not a refusal.
    if (e.size !== ex.size) this.warnings.push(`10700 says ${e.size} bytes of disk space required; the package is ${ex.size} bytes (${e.raw})`);
    if (e.minBattery !== ex.minBattery) mismatch.push(`battery minimum ${e.minBattery} instead of ${ex.minBattery}`);
    if (e.minSignal !== ex.minSignal) mismatch.push(`signal minimum ${e.minSignal} instead of ${ex.minSignal}`);

    let refusal: string | undefined;
    if (e.source !== '' && e.source !== current.version) refusal = `a delta from ${e.source}, and the MCU runs ${current.version}`;
    else if (e.target === current.version) refusal = `target ${e.target} is the version the MCU runs`;
    else if (e.minBattery > 0 && this.battery < e.minBattery) refusal = `battery ${this.battery}% below the plan's minimum ${e.minBattery}%`;
    else if (e.minSignal !== 0) {
      const csq = await this.qt.signalQuality(this.cmd());
      if (csq.dbm === undefined || csq.dbm < e.minSignal) {
        refusal = `signal ${csq.dbm === undefined ? 'unknown (AT+CSQ 99)' : `${csq.dbm} dBm`} below the plan's minimum ${e.minSignal} dBm`;
      }
    }
    if (mismatch.length > 0) {
      // A plan the rig did not prepare: leave the device clean, then fail the run.
      await this.qt.otaUpdate(UpdateAction.refuse, this.cmd());
      this.decision = 'refused';
      throw new ProtocolError('the plan in 10700 is not the one prepared', { station: this.station.name, expected: `plan ${this.plan!.id}`, seen: `${e.raw} (${mismatch.join(', ')})` });
    }
    return refusal;
  }

  // ---- download ---------------------------------------------------------------------------------------

  private async downloadPhase(): Promise<void> {
    const dl = new DownloadAssembly(this.station.name, this.station.component, this.plan!.expected.size);
    this.download = dl;
    let attempt = 0;
    for (;;) {
      try {
        if (!dl.piece) await this.log.step(this.log.numbered('download', attempt), () => this.awaitPiece(dl));
        await this.log.step(this.log.numbered('read blocks', attempt), () => this.readPiece(dl));
        if (dl.complete) return;
        dl.next();
        await this.qt.otaUpdate(UpdateAction.nextPiece, this.cmd());
      } catch (err) {
        if (!(err instanceof Disturbance)) throw err;
        attempt++;
        await this.recover(err);
      }
    }
  }

  /**
   * Waits for 10703 (the next piece), accepting 10701/10702 (download running) and a re-delivered 10700.
   * Each event re-arms the wait (the module's URL wait or a few 10702 periods); the whole piece is bounded
   * too, so a module that reports 10702 forever cannot hold the run.
   */
  private async awaitPiece(dl: DownloadAssembly): Promise<void> {
    const size = this.plan!.expected.size;
    const quiet = Math.max(this.T.urlWaitMs, 2 * this.T.downloadNotifyMs) + this.T.marginMs;
    const limitMs = this.opts.downloadLimitMs ?? this.T.urlWaitMs + DOWNLOAD_NOTIFY_LIMIT * this.T.downloadNotifyMs + this.T.marginMs;
    const until = performance.now() + limitMs;
    for (;;) {
      const left = Math.round(until - performance.now());
      if (left <= 0) {
        throw new EventTimeoutError(`no piece (10703) within ${limitMs} ms of download`, {
          station: this.station.name,
          expected: '+QIOTEVT: 7,10703 once the module has downloaded the piece',
          seen: `only ${this.log.events.slice(-3).map((x) => JSON.stringify(x.raw)).join(', ')}`,
        });
      }
      const e = await this.waitFor(isEvent('ota-plan', 'ota-download-start', 'ota-downloading', 'ota-piece-ready'), Math.min(quiet, left), '+QIOTEVT: 7,10701/10702/10703');
      switch (e.kind) {
        case 'ota-plan':
          // After a reboot the cloud may deliver the plan again instead of re-issuing the URL: confirm again.
          if (e.component === this.station.component) {
            const refusal = await this.checkPlan(e);
            if (refusal !== undefined) throw new ProtocolError('the plan delivered again no longer passes the MCU checks', { station: this.station.name, expected: 'the same plan as confirmed', seen: `${e.raw}: ${refusal}` });
            await this.qt.otaUpdate(UpdateAction.confirm, this.cmd());
          }
          break;
        case 'ota-download-start': {
          this.announced = e;
          const ex = this.plan!.expected;
          if (e.component !== this.station.component || e.size !== size) {
            throw new ProtocolError('10701 announces another file', { station: this.station.name, expected: `"${this.station.component}",${size},…`, seen: e.raw });
          }
          const diff: string[] = [];
          if (e.md5 !== ex.md5) diff.push(`md5 ${e.md5} instead of ${ex.md5}`);
          if (e.crc >>> 0 !== ex.crc >>> 0) diff.push(`crc ${formatCrc(e.crc)} instead of ${formatCrc(ex.crc)}`);
          if (e.sha256 !== undefined && e.sha256 !== ex.sha256) diff.push(`sha256 ${e.sha256} instead of ${ex.sha256}`);
          for (const d of diff) if (!this.downloadProblems.includes(`10701: ${d}`)) this.downloadProblems.push(`10701: ${d}`);
          // Worth a note, not a rejection: MD5 and CRC still come from 10701 and SHA-256 from the prepared plan.
          const note = 'note: 10701 carried no sha256 although AT+QIOTOTAREQ=1 asked for it';
          if (e.sha256 === undefined && !this.downloadProblems.includes(note)) this.downloadProblems.push(note);
          break;
        }
        case 'ota-downloading':
          break;
        case 'ota-piece-ready':
          dl.accept(e);
          this.lastReadAt = performance.now();
          return;
      }
    }
  }

  private async readPiece(dl: DownloadAssembly): Promise<void> {
    const size = dl.size;
    const bitsPerByte = 10;
    const blockMs = Math.ceil(((this.blockSize + 64) * bitsPerByte * 1000) / Math.max(1, this.station.info.baudRate));
    const timeoutMs = this.T.commandMs + blockMs + this.T.marginMs;
    const reboots = this.reboots;
    const fails = this.failures10706;
    let retried = false;
    let ahead: ReadAhead | undefined;
    try {
      for (let len = dl.nextBlock(this.blockSize); len > 0; len = dl.nextBlock(this.blockSize)) {
        const offset = dl.readOffset;
        const queued = ahead;
        ahead = undefined;
        const t = performance.now();
        let request: Promise<OtaBlock | undefined>;
        if (queued?.sent && queued.offset === offset && queued.length === len) {
          // Already on the wire: the faults due at this boundary were looked at as it left (readAhead).
          request = queued.block;
        } else {
          queued?.stop.abort();
          this.schedule.atOffset(offset, len);
          await this.executor.checkpoint();
          this.checkReadInactivity(offset, len);
          request = this.qt.otaRead(offset, len, { timeoutMs, signal: this.signal });
        }
        ahead = this.readAhead(dl, offset, len, timeoutMs);
        let block: OtaBlock | undefined;
        try {
          block = await request;
        } catch (err) {
          if (!(err instanceof RigError) || err.kind !== 'protocol') throw err;
          // The piece may be gone from the module: it rebooted, or it gave up (10706).
          if (this.reboots !== reboots) {
            this.rebootAcks++;
            throw new Disturbance({ rebooted: true }, `module rebooted during the block reads (${err.summary})`);
          }
          if (this.failures10706 !== fails) throw new ModuleFailed('+QIOTEVT: 7,10706');
          if (!retried) {
            // A garbled block (noise, a URC in the wrong place) costs one more read of the same range (§2.7).
            retried = true;
            this.log.noteError(err, true);
            continue;
          }
          // A module that lost power mid-answer may have printed its RDY inside the block it was sending,
          // where no URC is looked for. QIOTREG=1 does not survive a boot (§2.2): a 0 there means it restarted.
          const mode = await this.qt.registration(this.cmd()).catch(() => undefined);
          if (this.reboots !== reboots || mode === 0) {
            if (this.reboots !== reboots) this.rebootAcks++;
            throw new Disturbance({ rebooted: true }, `module restarted during the block reads (${err.summary}; AT+QIOTREG? ${mode ?? 'unanswered'})`);
          }
          throw err;
        }
        if (block === undefined) throw new Error(`internal: the read at ${offset} was withdrawn after it was sent`);
        retried = false;
        this.lastReadAt = performance.now();
        this.readMs += performance.now() - t;
        this.readBytes += block.data.length;
        this.readBlocks++;
        dl.store(block.start, block.data);
        this.progress.push({ t: this.log.now(), offset: dl.readOffset });
        this.recorder.progress?.('read blocks', dl.readOffset, size);
      }
    } finally {
      // Unsent, it never goes out; sent, the port takes its answer and nobody waits for it.
      if (ahead && !ahead.sent) ahead.stop.abort();
    }
  }

  /**
   * The read of the block after [offset, offset+len), queued behind it (QuecThing.otaReadAfter): it leaves
   * as that block's OK arrives, with no turn of the event loop in between, unless a fault is due at the
   * boundary by then (the schedule is asked at that moment, as the loop would ask it), the run is stopping,
   * or the block came back short or failed. Then it is withdrawn and the loop reads the block itself, after
   * the checkpoint. On the virtual wire this is the rig's whole turnaround between blocks (issue 18).
   */
  private readAhead(dl: DownloadAssembly, offset: number, len: number, timeoutMs: number): ReadAhead | undefined {
    const next = offset + len;
    const length = dl.blockAfter(offset, len, this.blockSize);
    if (length <= 0) return undefined;
    const stop = new AbortController();
    const signal = this.signal ? AbortSignal.any([this.signal, stop.signal]) : stop.signal;
    const ahead: ReadAhead = { offset: next, length, sent: false, stop, block: Promise.resolve(undefined) };
    ahead.block = this.qt.otaReadAfter({ start: offset, length: len }, next, length, {
      timeoutMs,
      signal,
      // An aborted read never gets here: the port takes it out of its queue as the signal fires.
      when: () => {
        this.schedule.atOffset(next, length);
        if (this.schedule.pending) return false;
        ahead.sent = true;
        return true;
      },
    });
    // Awaited only when it was sent; a withdrawn or aborted one must not surface as an unhandled rejection.
    ahead.block.catch(() => undefined);
    return ahead;
  }

  /**
   * A recovery between two block reads (a fault, a re-registration) can outlast the module's read-inactivity
   * timer, after which it has dropped the piece and settles the OTA with 10706 (§4.2). Said here, with the
   * timer's name and the gap, rather than as an unexplained 10706 or a failed read later.
   */
  private checkReadInactivity(offset: number, len: number): void {
    if (this.lastReadAt === undefined) return;
    const gap = Math.round(performance.now() - this.lastReadAt);
    if (gap <= this.T.readInactivityMs) return;
    throw new ProtocolTimerError('read-inactivity', `the module's read-inactivity timer ran out between two block reads`, {
      station: this.station.name,
      expected: `AT+QIOTOTARD=${offset},${len} within the read-inactivity time (${this.T.readInactivityMs} ms) of the last read or 10703`,
      seen: `${gap} ms since then (${this.log.fired.at(-1) ? `after fault ${this.log.fired.at(-1)!.fault}` : 'a recovery in between'}); the module drops the piece and reports 10706`,
    });
  }

  private verifyDownload(): boolean {
    const dl = this.download!;
    const file = dl.file;
    const ex = this.plan!.expected;
    const problems = this.downloadProblems;
    if (!dl.complete) problems.push('the pieces read do not cover the whole file');
    const a = this.announced;
    if (a) {
      const v = verifyPackage(file, { size: a.size, md5: a.md5, crc: a.crc, ...(a.sha256 !== undefined ? { sha256: a.sha256 } : {}) }, { crcAlgorithm: this.crcAlgorithm });
      if (!v.ok) problems.push(`download against 10701: ${describeVerification(v)}`);
    } else {
      problems.push('note: no 10701 seen in this run: the download is checked against the prepared plan only');
    }
    const vp = verifyPackage(file, { size: ex.size, md5: ex.md5, crc: ex.crc, sha256: ex.sha256 }, { crcAlgorithm: this.crcAlgorithm });
    if (!vp.ok) problems.push(`download against the prepared plan: ${describeVerification(vp)}`);
    const hashesOk = !problems.some((p) => p.startsWith('download against') || p.startsWith('10701:') || p.startsWith('the pieces'));
    this.downloadVerified = hashesOk;
    let image: Image | undefined;
    const notes: string[] = [];
    try {
      // The rebuilt image must be the package's target byte for byte (apply checks its size and SHA-256):
      // that, not a header, is what makes it the release the plan announced.
      image = this.pkg!.apply(this.opts.current, file);
      const locator = this.firmware?.locator;
      const named = locator ? locateVersion(image.bytes, locator) : undefined;
      if (named?.found && named.version !== this.pkg!.version) notes.push(`note: the rebuilt image's ${named.where} names ${named.version}, the package delivers ${this.pkg!.version}`);
    } catch (err) {
      problems.push(`rebuilt image: ${err instanceof RigError ? err.summary : String(err)}`);
    }
    this.recorder.attach('download check', problems.length === 0 ? [`md5, crc (${this.crcAlgorithm}), sha256 and the rebuilt image (sha256 ${this.pkg!.target.sha256.slice(0, 12)}…) all match`, ...notes].join('\n') : [...problems, ...notes].join('\n'), 'text/plain');
    if (!hashesOk || !image) return false;
    this.image = image;
    return true;
  }

  /** The MCU reports the version it really runs while the module holds the download: 10706 (see the header). */
  private async giveUp(): Promise<void> {
    this.decision = 'download-rejected';
    await this.log.step('report version', async () => {
      await this.qt.setMcuVersion(this.station.component, this.opts.current.version, this.cmd());
      await this.waitFor(isEvent('ota-failed'), this.T.commandMs + this.T.marginMs, '+QIOTEVT: 7,10706', false);
      this.moduleResult = 10706;
    });
  }

  // ---- program and read back --------------------------------------------------------------------------

  private async programPhase(): Promise<void> {
    const { station } = this;
    const image = this.image!;
    await this.log.step('program', () =>
      this.withinUpdateWait('programming', async () => {
        this.schedule.at('programming');
        // Faults "during programming" run alongside the write, as a brown-out would: those due now, and those
        // that come due while it runs (`programming+2000ms`), which a checkpoint after the write would miss.
        // Settled at once into "error or nothing", so a fault that ends before the write is never unhandled.
        const actions: Promise<unknown>[] = [];
        const alongside = () => {
          for (const f of this.schedule.take()) actions.push(this.executor.execute(f).then(() => undefined, (err: unknown) => err));
        };
        alongside();
        this.duringWrite = alongside;
        let lastErr: unknown;
        try {
          for (let attempt = 0; attempt <= this.maxRecoveries; attempt++) {
            try {
              if (this.executor.targetDisturbed || attempt > 0) await reviveProbe(this.station, this.signal);
              this.executor.targetDisturbed = false;
              await station.probe.program(station.layout.slotAddress, image.bytes, { signal: this.signal, ...programProgress(this.recorder) });
              lastErr = undefined;
              break;
            } catch (err) {
              if (this.signal?.aborted || actions.length === 0) throw err;
              lastErr = err;
              this.log.noteError(err, true);
              // Let the fault finish (the supply back on) before writing again.
              await Promise.all(actions);
              this.recoveries++;
            }
          }
        } finally {
          this.duringWrite = undefined;
        }
        if (lastErr) throw lastErr;
        const outcomes = await Promise.all(actions);
        this.programmed = true;
        for (const o of outcomes) {
          if (o instanceof Disturbance) await this.untilSettled(() => this.recover(o));
          else if (o !== undefined) throw o;
        }
      }),
    );
  }

  /**
   * Runs `body` (programming, reading back) against the module's update wait: from 10704 the module gives the
   * MCU that long to report its version, then settles the OTA with 10706 (§4.2). Running out is a
   * ProtocolTimerError naming the timer, before the version report it would make pointless. The flash write
   * itself is not cut short: aborting a probe operation kills OpenOCD mid-write and leaves a torn slot and no
   * read-back to judge by, while the probe's own timeouts already bound it.
   */
  private async withinUpdateWait<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.updatingSince === undefined) return body();
    const ranOut = (when: string): ProtocolTimerError | undefined => {
      // Read at each check, not once: a module that reboots during the body sends 10704 again at boot and
      // restarts its wait, and recover() moves updatingSince with it.
      const since = this.updatingSince;
      if (since === undefined) return undefined;
      const elapsed = Math.round(performance.now() - since);
      if (elapsed <= this.T.updateWaitMs) return undefined;
      return new ProtocolTimerError('update-wait', `the module's update wait ran out while ${what}`, {
        station: this.station.name,
        expected: `programming and read-back done within the update wait (${this.T.updateWaitMs} ms from 10704), then AT+QIOTMCUVER`,
        seen: `${elapsed} ms from 10704 ${when}; the module reports 10706 once it runs out`,
      });
    };
    const before = ranOut(`before ${what}`);
    if (before) throw before;
    const result = await body();
    const after = ranOut(`to the end of ${what}`);
    if (after) throw after;
    return result;
  }

  private async readBack(): Promise<ReadbackResult> {
    const { station, opts } = this;
    const address = station.layout.slotAddress;
    const target = this.pkg!.target;
    const size = Math.min(station.layout.slotSize, Math.max(opts.current.size, target.size));
    if (this.executor.targetDisturbed) await reviveProbe(this.station, this.signal);
    const flash = await station.probe.readRegion(address, size, { signal: this.signal });
    const firmware = this.firmware;
    // Byte comparisons, not a header's word: a header can be intact over a torn body, and real images carry none.
    const result = judgeReadback(flash, {
      address,
      current: opts.current,
      target: { ...target, version: this.pkg!.version },
      targetImage: this.image,
      programmed: this.programmed,
      known: firmware?.images.values(),
      locator: firmware?.locator,
    });
    this.readback = result;
    this.recorder.attach('read-back comparison', describeReadback(result, opts.current, this.pkg!.version), 'text/plain');
    return result;
  }

  // ---- waiting, faults and recovery -------------------------------------------------------------------

  /**
   * Waits on the run's cursor for `match`, bounded by `timeoutMs`. Due faults run first, when a delay fault
   * becomes due during the wait, and after the awaited event; a module reboot the flow did not cause itself becomes a Disturbance; 10706
   * ends the OTA (ModuleFailed) unless `failOn10706` is false (then it is an event like any other).
   */
  private async waitFor<T extends ModuleEvent>(match: (e: ModuleEvent) => e is T, timeoutMs: number, expected: string, failOn10706?: boolean): Promise<T>;
  private async waitFor(match: (e: ModuleEvent) => boolean, timeoutMs: number, expected: string, failOn10706?: boolean): Promise<ModuleEvent>;
  private async waitFor(match: (e: ModuleEvent) => boolean, timeoutMs: number, expected: string, failOn10706 = true): Promise<ModuleEvent> {
    let deadline = performance.now() + timeoutMs;
    for (;;) {
      const c0 = performance.now();
      await this.executor.checkpoint();
      deadline += performance.now() - c0;
      const wake = new AbortController();
      this.wake = wake;
      const signal = this.signal ? AbortSignal.any([this.signal, wake.signal]) : wake.signal;
      let e: ModuleEvent;
      try {
        e = await this.ev!.next((x) => match(x) || x.kind === 'reboot', {
          timeoutMs: Math.max(1, Math.round(deadline - performance.now())),
          signal,
          expected,
          ...(failOn10706 ? { failOn: is10706 } : {}),
        });
      } catch (err) {
        if (wake.signal.aborted && !this.signal?.aborted) continue;
        if (err instanceof EventFailedError && is10706(err.event)) throw new ModuleFailed(err.event.raw);
        throw err;
      } finally {
        this.wake = undefined;
      }
      if (e.kind === 'reboot' && !match(e)) {
        if (this.rebootAcks > 0) {
          this.rebootAcks--;
          continue;
        }
        throw new Disturbance({ rebooted: true }, 'the module rebooted (RDY)');
      }
      // Faults this very event triggers run now, with the event in hand: after a network cut or a reopened
      // port the flow goes on with it; after a reboot it is stale and the caller starts over.
      try {
        await this.executor.checkpoint();
      } catch (err) {
        if (!(err instanceof Disturbance) || err.what.rebooted) throw err;
        await this.recover(err);
      }
      return e;
    }
  }

  /** Runs `body`, recovering from disturbances (faults fired inside it) until it completes. */
  private async untilSettled<T>(body: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await body();
      } catch (err) {
        if (!(err instanceof Disturbance)) throw err;
        await this.recover(err);
      }
    }
  }

  /** Brings the module back to where the current phase can go on (see the header). */
  private async recover(d: Disturbance): Promise<void> {
    this.recoveries++;
    // A disturbance the flow caused itself is in `fired`; one it did not cause (a brown-out) is an error.
    if (!d.ours) this.log.noteError(new ProtocolError(`recovering: ${d.cause_}`, { station: this.station.name }), true);
    if (d.what.rebooted && (this.phase === 'plan' || this.phase === 'download' || this.phase === 'register')) {
      // Everything the module said before it rebooted is stale (a 10703 of an erased piece): start a fresh
      // cursor. The RDY is already behind us. In UPDATING the old cursor is kept: 10704 comes right after RDY.
      this.ev?.close();
      this.ev = this.qt.events();
      this.rebootAcks = 0;
    }
    if (this.recoveries > this.maxRecoveries) {
      throw new ProtocolError(`gave up after ${this.maxRecoveries} recoveries`, { station: this.station.name, expected: 'an upgrade within the recovery budget', seen: d.cause_ });
    }
    const { station } = this;
    await this.log.step('recover', async () => {
      // First: the echo setting does not survive a boot on some modules (protocol §6), and everything the
      // flow sends from here on is meant to go as configured. A reopened port had it applied by reopen().
      if (d.what.rebooted) await this.applyEcho();
      if (d.what.rebooted || d.what.networkRestored) {
        await ensureRegistered(station, { signal: this.signal, recorder: this.recorder });
      }
      switch (this.phase) {
        case 'register':
        case 'plan':
          // planPhase announces the version and requests again.
          return;
        case 'download':
          if (d.what.rebooted) {
            // §4.4: the module erased the download; it restarts from byte 0 when the cloud re-issues it.
            this.download?.restart();
            await this.qt.setMcuVersion(station.component, this.opts.current.version, this.cmd());
            await this.qt.otaRequest({ sha256: true, ...this.cmd() });
          }
          return;
        case 'updating':
        case 'reporting':
          if (d.what.rebooted) {
            // §4.4: UPDATING survives a reboot and 10704 comes again at boot.
            await this.waitFor(isEvent('ota-updating'), this.T.commandMs + this.T.marginMs, '+QIOTEVT: 7,10704 again after the reboot');
            this.updating = true;
            // The module arms its update wait again with the 10704 it re-emits at boot (registering again and
            // the echo setting came between, so its arrival is what counts).
            this.updatingSince = this.last10704At ?? performance.now();
          }
          return;
        default:
          return;
      }
    });
  }

  private async applyEcho(): Promise<void> {
    await this.station.module.applyEcho(this.signal ? { signal: this.signal } : {});
  }

  // ---- record -------------------------------------------------------------------------------------------

  private attach(): void {
    const { module } = this.station;
    this.unsubscribe.push(
      module.qt.on('event', (e) => this.onEvent(e)),
      module.at.on('transcript', (x: TranscriptEntry) => this.log.addTranscript(x)),
    );
  }

  private detach(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.ev?.close();
  }

  /** After the port was reopened: listen to the new one, and wait on a fresh cursor. */
  private reattach(): void {
    this.detach();
    this.attach();
    this.ev = this.qt.events();
  }

  private onEvent(e: ModuleEvent): void {
    this.log.addEvent(e);
    if (e.kind === 'reboot') this.reboots++;
    if (e.kind === 'ota-updating') this.last10704At = performance.now();
    if (is10706(e)) this.failures10706++;
    // Event triggers run at the flow's next checkpoint (right after the wait that takes the event, or before
    // the next block read); only delay triggers wake a wait.
    this.schedule.onEvent(e);
  }

  private cmd(): { timeoutMs: number; signal?: AbortSignal } {
    return { timeoutMs: this.T.commandMs + this.T.marginMs, ...(this.signal ? { signal: this.signal } : {}) };
  }

  private finish(error: unknown, firmware: FirmwareSet | undefined): ProxyRun {
    const { station, opts } = this;
    let endError = error;
    if (endError instanceof ModuleFailed) {
      this.moduleResult = 10706;
      endError = undefined;
    }
    const info = endError === undefined ? undefined : errorInfo(endError);
    const verdict = judge({
      expected: this.expect,
      decision: this.decision,
      moduleResult: this.moduleResult,
      downloadVerified: this.downloadVerified,
      programmed: this.programmed,
      readback: this.readback,
      error: info,
    });
    const pkg = this.pkg;
    const spec = 'id' in opts.plan ? undefined : opts.plan;
    const bytesPerSecond = this.readMs > 0 ? Math.round((this.readBytes * 1000) / this.readMs) : 0;
    if (this.readMs > 0) this.recorder.measure('read bytes/s', bytesPerSecond, 'B/s');
    this.log.measurePhases();
    const { log } = this;
    const bare: RunRecord = {
      format: RUN_RECORD_FORMAT,
      version: RUN_RECORD_VERSION,
      flow: 'proxy',
      mode: 'proxy',
      startedAt: log.startedAt,
      durationMs: log.now(),
      station: recordedStation(station),
      ...recordedUpgrade(station, this.plan, pkg, spec),
      current: { version: opts.current.version, size: opts.current.size, sha256: opts.current.sha256 },
      options: {
        battery: this.battery,
        blockSize: this.blockSize,
        crcAlgorithm: this.crcAlgorithm,
        ...(this.opts.crcAlgorithm !== undefined ? { crcRequested: this.crcAlgorithm } : {}),
        expect: this.expect,
        maxRecoveries: this.maxRecoveries,
      },
      faults: this.faults.map(formatFault),
      cloudFaults: (opts.cloudFaults ?? []).map((c) => ({ kind: c.kind, ...(c.params ? { params: c.params } : {}) })),
      fired: log.fired,
      events: log.events,
      transcript: log.transcript,
      ...(log.transcriptDropped ? { transcriptDropped: log.transcriptDropped } : {}),
      phases: log.phases,
      read: { bytes: this.readBytes, blocks: this.readBlocks, ms: Math.round(this.readMs), bytesPerSecond },
      progress: thin(this.progress),
      download:
        this.downloadVerified === undefined && this.downloadProblems.length === 0
          ? null
          : {
              verified: this.downloadVerified ?? false,
              problems: this.downloadProblems,
              announced: this.announced
                ? { size: this.announced.size, md5: this.announced.md5, crc: this.announced.crc, ...(this.announced.sha256 ? { sha256: this.announced.sha256 } : {}) }
                : null,
            },
      refusal: this.refusal ?? null,
      readback: this.readback ?? null,
      verdict,
      errors: log.errors,
      ...(this.warnings.length > 0 ? { warnings: this.warnings } : {}),
    };
    // What `rig repro` needs beyond the run itself: the station's settings and the bytes no manifest has.
    bare.fired = landFaults(bare);
    const record = completeRecord(bare, { entry: station.entry, firmware: pkg ? recordedFirmware(pkg, opts.current, firmware) : undefined });
    publishRecord(this.recorder, record, this.schedule);
    return record;
  }
}

/** A block read queued to follow the one in flight (ProxyFlow.readAhead). */
interface ReadAhead {
  offset: number;
  length: number;
  /** Set when the port sent it: the read before it came back whole and no fault was due at the boundary. */
  sent: boolean;
  stop: AbortController;
  block: Promise<OtaBlock | undefined>;
}
