// The suites' fixtures (vitest test.extend) and their Allure glue.
//
//   const { test, budget, retry } = await sotaSuite({ feature: 'Full package' });
//   test('v1_0_0 → v2_0_0', { timeout: budget.upgrade, retry }, async ({ sota, images }) => {
//     await sota.baseline(images.image('1_0_0'));
//     const run = await sota.upgrade({ plan: sota.spec(images.package('full_2_0_0')), current: images.image('1_0_0') });
//     expectOutcome(run, 'upgraded');
//     await sota.readback(images.image('2_0_0'));                    // every test ends with an SWD verdict
//   });
//
// Lifetimes: the station (RIG_STATION, default `virtual`) is opened once per file and closed when the file
// ends — always, also after a failed or timed-out test: station.close() is the safe state (power lines at
// their safe levels, OpenOCD gone, ports closed, sim stopped, lock released). Before each attempt of a
// test a hook checks the run's health ledger (a broken station fails at once) and reopens a station an
// infrastructure failure left unusable; after it, another hook tells the ledger how the attempt ended.
// The `station` fixture records the AT transcript and the OpenOCD log, and afterwards drives every power
// line to its safe level, restores the radio (AT+CFUN=1) and ends the test's plans.
// Every rig call gets the test's `signal`, aborted by vitest on timeout.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as allure from 'allure-js-commons';
import { getCurrentTest } from '@vitest/runner';
import { inject, test as base } from 'vitest';
import type { TestError } from 'vitest';
import type { TranscriptEntry } from '../rig/at/transcript.ts';
import { BoundedLog, formatTranscript } from '../rig/at/transcript.ts';
import { RUN_TRANSCRIPT_MAX_BYTES } from '../rig/sota/run-log.ts';
import { ConfigError, InfrastructureError } from '../rig/errors.ts';
import { loadManifest } from '../rig/images/index.ts';
import type { FirmwareSet, Image, Package } from '../rig/images/index.ts';
import type { SafeStateLine } from '../rig/power/line.ts';
import type { Probe } from '../rig/probe/index.ts';
import type { QuecThing } from '../rig/quecthing/index.ts';
import { ensureBaseline, runDutUpgrade, runProxyUpgrade } from '../rig/sota/index.ts';
import type { BaselineResult, DutRun, DutUpgradeOptions, ProxyRun, ProxyUpgradeOptions } from '../rig/sota/index.ts';
import { openStation } from '../rig/station/index.ts';
import type { OpenedStation, PlanSource, UpgradeSpec } from '../rig/station/index.ts';
import { AllureRecorder, allureResultsDir, labelFailureReason } from './support/allure.ts';
import { chartFromRecord, readPhaseChart } from './support/chart.ts';
import { timelineFromRecord } from './support/timeline.ts';
import { readbackVerdict, runFailure } from './support/evidence.ts';
import { HealthLedger, stationScope } from './support/health.ts';
import { MANIFEST, ROOT, suiteStation, testBudget } from './support/station-config.ts';
import type { SuiteStation, SuiteStationOptions } from './support/station-config.ts';
import { STATION_LABEL } from '../scripts/report-lib/environments.ts';
import { writeStationRecord } from '../scripts/report-lib/stations.ts';
import { readIdentity } from '../rig/station/identity.ts';
import { hostName, readLastHealth } from '../rig/station/inventory.ts';
import { simSettings } from '../rig/station/virtual.ts';

export interface SuiteOptions extends SuiteStationOptions {
  /** Allure feature of every test in the file ("Full package"). */
  feature: string;
  /**
   * The image a fresh virtual station starts with in its slot (default: the manifest's first, 1_0_0), so
   * that the file's first baseline finds it there instead of programming it.
   */
  startImage?: string;
  /** The firmware set of the file (default RIG_MANIFEST or fixtures/manifest.json); dut suites use fixtures/mcu. */
  manifest?: string;
}

/** Retry only what is not the firmware's or the protocol's fault, and never a station marked broken. */
export function isRetryable(e: TestError): boolean {
  const x = e as TestError & { kind?: string; stationBroken?: boolean };
  if (x.stationBroken === true || x.name === 'AbortedError') return false;
  return x.kind === 'infrastructure' || x.name === 'InfrastructureError';
}

/**
 * vitest 4.1.12 strips a function `retry.condition` from every test when it reports the collected tests
 * (vitest/dist/chunks/index.*.js, sanitizeRetryConditions mutates the task itself), and a test without a
 * condition is retried on every error. A RegExp survives, and vitest calls its `test()` with the failed
 * attempt's message; this one decides on the whole error of the current attempt instead.
 */
class InfrastructureOnly extends RegExp {
  constructor() {
    super('(infrastructure errors only)');
  }

  override test(message: string): boolean {
    const last = getCurrentTest()?.result?.errors?.at(-1);
    return last !== undefined && (last.message ?? '') === message && isRetryable(last);
  }
}

export const retry = { count: 2, condition: new InfrastructureOnly() };

const PACKAGE_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The station of one suite file: opened on first use, reopened after an infrastructure failure. */
class StationHolder {
  private station: OpenedStation | undefined;
  private scope: string | undefined;
  private ledger_: HealthLedger | undefined;
  /** Set when a test attempt ended in an infrastructure failure: the next test starts on a fresh station. */
  reopen = false;

  constructor(
    readonly suite: SuiteStation,
    private readonly runDir: string,
  ) {}

  get name(): string {
    return this.suite.name;
  }

  /** Called by every test with its file: the run's records of this station are kept under stationScope(). */
  inFile(testFile: string): this {
    this.scope ??= stationScope(this.name, this.suite.entry.kind === 'virtual', testFile);
    return this;
  }

  get ledger(): HealthLedger {
    if (!this.scope) throw new InfrastructureError('the suite station is used before its beforeEach hook ran', { station: this.name });
    return (this.ledger_ ??= new HealthLedger(this.runDir, this.name, this.scope));
  }

  /** The open station; only between ready() and the end of the test. */
  get current(): OpenedStation {
    if (!this.station) throw new InfrastructureError('the suite has no open station (its beforeEach hook did not run or failed)', { station: this.name });
    return this.station;
  }

  async ready(signal: AbortSignal, recorder: AllureRecorder): Promise<OpenedStation> {
    if (this.station && (this.reopen || !(await this.healthy(this.station, signal)))) {
      await recorder.step(`${this.name}: reopen the station after an infrastructure failure`, () => this.close());
    }
    this.reopen = false;
    if (!this.station) {
      this.station = await openStation(this.name, { config: this.suite.config, signal, recorder });
      await recorder.step(`${this.name}: station identity (for the report)`, () => this.environmentInfo(this.station!, signal));
    }
    return this.station;
  }

  private async healthy(s: OpenedStation, signal: AbortSignal): Promise<boolean> {
    if (s.closed || !s.probe.alive || !s.module.at.isOpen) return false;
    try {
      await s.module.qt.at({ timeoutMs: s.timeouts.commandMs + s.timeouts.marginMs, signal });
      return true;
    } catch {
      return false;
    }
  }

  /** The station's record for the report's per-station table (scripts/report-lib/stations.ts). */
  private async environmentInfo(s: OpenedStation, signal: AbortSignal): Promise<void> {
    const entry = this.suite.entry;
    writeStationRecord(allureResultsDir(ROOT), {
      station: s.name,
      kind: entry.kind === 'virtual' ? 'virtual' : 'hardware',
      host: hostName(),
      scope: this.scope ?? s.name,
      identity: await readIdentity(s, signal),
      ...(entry.kind === 'virtual' ? { sim: simSettings(entry) } : {}),
      ...(readLastHealth(s.name) ? { health: readLastHealth(s.name)! } : {}),
      rig: PACKAGE_VERSION,
      node: process.version,
    });
  }

  async close(): Promise<void> {
    const s = this.station;
    this.station = undefined;
    await s?.close();
  }
}

/** What a test drives the station with; every call carries the test's signal and recorder. */
export interface Sota {
  readonly station: OpenedStation;
  readonly recorder: AllureRecorder;
  readonly signal: AbortSignal;
  /** Command options: the station's command bound plus margin, and the signal. */
  readonly cmd: { timeoutMs: number; signal: AbortSignal };
  /** The known state a test starts from: `image` in the slot, module registered and told its version. */
  baseline(image: Image): Promise<BaselineResult>;
  /** An upgrade of this station's component to `pkg`, with plan options. */
  spec(pkg: Package, extra?: Omit<UpgradeSpec, 'component' | 'package'>): UpgradeSpec;
  /** The Allure parameters of an upgrade: source and target version, package type. */
  describeUpgrade(pkg: Package, current: Image): Promise<void>;
  /**
   * runProxyUpgrade with the test's recorder and signal; attaches the read-phase chart and the figures. A run
   * that ended in a failure (not one of the protocol's outcomes) throws its root-cause error here, before any
   * assertion of the test can stand in front of it (support/evidence.ts runFailure).
   */
  upgrade(o: Omit<ProxyUpgradeOptions, 'recorder' | 'signal'>): Promise<ProxyRun>;
  /** The SWD readback verdict every test ends with. */
  readback(image: Image): Promise<void>;
  /**
   * runDutUpgrade with the test's recorder and signal: the MCU image under test drives; attaches the
   * timeline picture of phases, MCU starts and faults, and the figures.
   */
  dut(o: Omit<DutUpgradeOptions, 'recorder' | 'signal'>): Promise<DutRun>;
  /** A ConfigError "station X cannot …" when the station lacks what the test needs. */
  require(what: string, ok: boolean, detail: string): void;
}

export async function sotaSuite(opts: SuiteOptions) {
  const images = await loadManifest(opts.manifest ? path.resolve(ROOT, opts.manifest) : MANIFEST);
  const startImage = opts.startImage ? images.image(opts.startImage) : images.images.values().next().value;
  const baselineFile = startImage ? path.resolve(path.dirname(images.manifestPath), images.entries.images[opts.startImage ?? startImage.version]!.file) : undefined;
  const suite = await suiteStation(opts, baselineFile);
  const largest = Math.max(...[...images.images.values()].map((i) => i.size), ...[...images.packages.values()].map((p) => p.size));
  const slotBytes = suite.entry.layout.slotSize;
  const baudRate = suite.entry.kind === 'virtual' ? suite.entry.baud : suite.entry.module.baudRate;
  const b = testBudget(suite.timeouts, { imageBytes: largest, slotBytes, baudRate });
  const budget = {
    /** Module and probe checks with at most one programming. */
    smoke: b.module + b.baseline,
    /** One upgrade from a baseline. */
    upgrade: b.baseline + b.upgrade,
    /** An upgrade with recoveries (a restarted download, a reboot): twice the work. */
    disturbed: b.baseline + 2 * b.upgrade,
    /** The flow's limit on one piece's download, held whole by `upgrade` (see testBudget). */
    downloadLimitMs: b.downloadLimitMs,
  };

  const test = base
    .extend('images', { scope: 'file' }, async (): Promise<FirmwareSet> => images)
    // eslint-disable-next-line no-empty-pattern -- vitest requires a destructuring pattern as the first argument
    .extend('stationHolder', { scope: 'file' }, async ({}, { onCleanup }) => {
      const holder = new StationHolder(suite, inject('sotaRunDir'));
      // The file's station is closed whatever happened in its tests: the station's safe state.
      onCleanup(() => holder.close());
      return holder;
    })
    .extend('recorder', async (): Promise<AllureRecorder> => new AllureRecorder())
    .extend('station', async ({ stationHolder, recorder }, { onCleanup }) => {
      // Opened (or found broken) by the beforeEach hook below, once per attempt.
      const station = stationHolder.current;
      // A whole test's transcript, bounded as the port's own is: a module spewing garbage costs a fixed amount.
      const transcript = new BoundedLog<TranscriptEntry>(RUN_TRANSCRIPT_MAX_BYTES);
      const openocd: string[] = [];
      const off = [station.module.at.on('transcript', (e) => transcript.push(e)), station.probe.log.onLine((l) => openocd.push(l))];
      onCleanup(async () => {
        for (const f of off) f();
        const problems = await safeBetweenTests(station);
        if (problems.length > 0) {
          stationHolder.reopen = true;
          recorder.attach('teardown problems', `${problems.join('\n')}\n`, 'text/plain');
        }
        recorder.attach('AT transcript (whole test)', formatTranscript(transcript.all(), transcript.dropped) || '(nothing sent or received)\n', 'text/plain');
        recorder.attach('OpenOCD log', openocd.length > 0 ? `${openocd.join('\n')}\n` : '(OpenOCD logged nothing during this test)\n', 'text/plain');
      });
      return station;
    })
    .extend('module', async ({ station }) => station.module)
    .extend('qt', async ({ station }): Promise<QuecThing> => station.module.qt)
    .extend('probe', async ({ station }): Promise<Probe> => station.probe)
    .extend('plans', async ({ station }): Promise<PlanSource> => station.plans)
    .extend('sota', async ({ station, recorder, signal }): Promise<Sota> => {
      const T = station.timeouts;
      const sota: Sota = {
        station,
        recorder,
        signal,
        cmd: { timeoutMs: T.commandMs + T.marginMs, signal },
        baseline: (image) => ensureBaseline(station, image, { signal, recorder }),
        spec: (pkg, extra = {}) => ({ component: station.component, package: pkg, ...extra }),
        async describeUpgrade(pkg, current) {
          await allure.parameter('source version', current.version);
          await allure.parameter('target version', pkg.version);
          await allure.parameter('package type', pkg.type);
        },
        async upgrade(o) {
          const pkg = 'id' in o.plan ? o.package : o.plan.package;
          if (pkg) await sota.describeUpgrade(pkg, o.current);
          // The flow's download limit fits the test's budget: a stalled download ends in the flow's verdict.
          const run = await runProxyUpgrade(station, { downloadLimitMs: budget.downloadLimitMs, ...o, recorder, signal });
          recorder.attach('read phase (chart)', readPhaseChart(chartFromRecord(run)), 'image/svg+xml');
          recorder.flushFigures('figures (measured)');
          const failure = runFailure(run);
          if (failure) throw failure;
          return run;
        },
        readback: (image) => readbackVerdict(station, image, { signal, recorder }),
        async dut(o) {
          const pkg = 'id' in o.plan ? o.package : o.plan.package;
          if (pkg) await sota.describeUpgrade(pkg, o.from);
          await allure.parameter('mode', 'dut');
          const run = await runDutUpgrade(station, { ...o, recorder, signal });
          recorder.attach('timeline (phases, MCU starts, faults)', timelineFromRecord(run), 'image/svg+xml');
          recorder.flushFigures('figures (measured)');
          return run;
        },
        require(what, ok, detail) {
          if (!ok) throw new ConfigError(`station ${station.name} cannot ${what}`, { station: station.name, expected: `a station that can ${what}`, seen: detail });
        },
      };
      return sota;
    });

  // The station is opened in a hook, not in the `station` fixture: vitest 4.1.12 marks a test fixture as
  // resolved before its setup runs, so a fixture whose setup threw is not set up again on retry (the
  // retry then sees `undefined`). Hooks run again for every attempt.
  test.beforeEach(async ({ stationHolder, recorder, task, signal }) => {
    await allure.feature(opts.feature);
    await allure.story(task.name);
    await allure.label(STATION_LABEL, stationHolder.name);
    await allure.parameter('station', stationHolder.name);
    await allure.parameter('baud rate', String(baudRate));
    stationHolder.inFile(task.file.filepath).ledger.check();
    await stationHolder.ready(signal, recorder);
  });
  // Every attempt, also one whose station did not open: the health ledger counts infrastructure failures.
  test.afterEach(async ({ stationHolder, task }) => {
    stationHolder.inFile(task.file.filepath);
    recordHealth(stationHolder, task.name, task.result?.state === 'fail' ? task.result.errors?.at(-1) : undefined);
    await labelFailureReason(task, stationHolder.name);
  });

  return { test, budget, retry, suite };
}

/** Between tests: every line at its safe level, the radio on, the test's plans ended. Problems are listed. */
async function safeBetweenTests(station: OpenedStation): Promise<string[]> {
  const problems: string[] = [];
  const bound = station.timeouts.commandMs + station.timeouts.marginMs;
  // The test's own signal may be aborted (a timeout): teardown gets bounds of its own.
  const opts = () => ({ timeoutMs: bound, signal: AbortSignal.timeout(bound * 2) });
  const bounded = async (what: string, fn: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new InfrastructureError(`${what}: no result within ${bound * 2} ms`, { station: station.name })), bound * 2);
        }),
      ]);
    } catch (err) {
      problems.push(`${what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  };
  for (const line of station.power.lines.lines.values()) {
    const safe = (line as Partial<SafeStateLine>).safe;
    if (typeof safe === 'boolean') await bounded(`${line.name} to its safe level`, () => line.set(safe));
  }
  if (station.module.at.isOpen) {
    await bounded('radio on (AT+CFUN=1)', async () => {
      if ((await station.module.qt.functionality(opts())) !== 1) await station.module.qt.setFunctionality(1, false, opts());
    });
  }
  await bounded('end the test plans', () => station.plans.clear({ signal: AbortSignal.timeout(bound * 2) }));
  return problems;
}

function recordHealth(holder: StationHolder, test: string, error: TestError | undefined): void {
  if (!error) {
    holder.ledger.passed();
    return;
  }
  const e = error as TestError & { kind?: string; stationBroken?: boolean };
  // A rig bug says nothing about the station, either way.
  if (e.stationBroken || e.kind === 'internal') return;
  if (isRetryable(error) || e.name === 'AbortedError') {
    holder.reopen = true;
    holder.ledger.infrastructureFailure(test, e.message ?? String(e));
  } else {
    holder.ledger.otherFailure();
  }
}

