// `rig upgrade <station> --package … | --plan …`: the proxy flow of rig/sota (or, with --mode dut, the dut
// flow: the MCU image under test upgrades itself while the rig observes) with live progress, faults from the
// command line, and the run record written for `rig repro`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { identifyContent } from '../../images/identify.ts';
import type { Image } from '../../images/image.ts';
import { loadManifest, type FirmwareSet } from '../../images/manifest.ts';
import type { Package } from '../../images/package.ts';
import { ConfigError } from '../../errors.ts';
import { loadConfig } from '../../config/load.ts';
import type { PlansConfig, StationConfig } from '../../config/schema.ts';
import { ensureBaseline } from '../../sota/baseline.ts';
import { parseFault, type Fault } from '../../sota/faults.ts';
import { CRC_ALGORITHMS, crcParams } from '../../images/crc.ts';
import { API_CLOUD_FAULTS } from '../../station/plans.ts';
import { checkRunBeforeOpening } from '../../station/preflight.ts';
import { runDutUpgrade } from '../../sota/dut.ts';
import { withVirtualMcu } from '../../station/virtual.ts';
import { dutBootloader } from '../../sota/dut-firmware.ts';
import { runProxyUpgrade } from '../../sota/proxy.ts';
import type { Recorder } from '../../sota/recorder.ts';
import { OUTCOMES as ALL_OUTCOMES } from '../../sota/verdict.ts';
import type { Outcome } from '../../sota/verdict.ts';
import type { OpenedStation } from '../../station/open.ts';
import type { UpgradeSpec } from '../../station/station.ts';
import type { CloudFault, RunRecord } from '../../sota/record.ts';
import { ExitCode, packageRoot } from '../main.ts';
import { COMMON_OPTIONS, intOption, paint, parse, UsageError } from '../output.ts';
import { readWithProgress } from '../flashio.ts';
import { CliRecorder } from '../progress.ts';
import { describeRun, unfiredFaults, watchDownload, writeRecord } from '../runs.ts';
import { checkStationName, requireStationName, runCommand, withStation } from '../station.ts';
import { didYouMean } from '../suggest.ts';

/** What a proxy run can end in; a dut run may also find the image rolled back, the device bricked or inconsistent. */
const PROXY_OUTCOMES: readonly Outcome[] = ['upgraded', 'refused', 'failed-intact'];

export function parseFaults(texts: readonly string[]): Fault[] {
  return texts.map((t) => {
    try {
      return parseFault(t);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`--fault: ${err.summary}`, { expected: err.expected, seen: err.seen });
      throw err;
    }
  });
}

/** Cloud faults whose admin API kind takes a count (`kind=<count>`); the one that must have it. */
const COUNTED_CLOUD_FAULTS = ['corrupt-next-download', 'download-error', 'drop-uart-bytes'];
const COUNT_REQUIRED = ['drop-uart-bytes'];

/** `--cloud-fault <kind>[=<count>]`: a kind the plan API knows, with the count it needs. */
export function parseCloudFaults(texts: readonly string[]): CloudFault[] {
  return texts.map((text) => {
    const [kind = '', count] = text.split('=', 2);
    if (!(API_CLOUD_FAULTS as readonly string[]).includes(kind)) {
      throw new UsageError(`--cloud-fault: no cloud fault "${kind}"`, { expected: `one of ${API_CLOUD_FAULTS.join(', ')}`, seen: text });
    }
    if (count === undefined) {
      if (COUNT_REQUIRED.includes(kind)) throw new UsageError(`--cloud-fault: ${kind} needs a count`, { expected: `${kind}=<count> (bytes to drop)`, seen: text });
      return { kind };
    }
    if (!COUNTED_CLOUD_FAULTS.includes(kind) || !/^[1-9]\d{0,6}$/.test(count)) {
      throw new UsageError(`--cloud-fault: ${text} is not a kind with a count`, { expected: `a count only for ${COUNTED_CLOUD_FAULTS.join(', ')}: a whole number from 1`, seen: text });
    }
    return { kind, params: { count: Number(count) } };
  });
}

/** `--crc` names an algorithm the rig knows. */
function checkCrc(crc: string | undefined): void {
  if (crc === undefined) return;
  try {
    crcParams(crc);
  } catch (err) {
    throw new UsageError('--crc: unknown CRC algorithm', { expected: `one of ${CRC_ALGORITHMS.join(', ')}`, seen: crc, cause: err });
  }
}

function parseExpect(text: string | undefined, mode: 'proxy' | 'dut'): Outcome[] {
  if (text === undefined) return ['upgraded'];
  const allowed = mode === 'dut' ? ALL_OUTCOMES : PROXY_OUTCOMES;
  const list = text.split(',').map((s) => s.trim());
  const bad = list.filter((o) => !allowed.includes(o as Outcome));
  if (bad.length > 0 || list.length === 0) {
    throw new UsageError(`--expect: unknown outcome${bad[0] !== undefined ? ` '${bad[0]}'${didYouMean(bad[0], allowed)}` : ''}${mode === 'proxy' ? ' for a proxy run' : ''}`, { expected: `comma-separated ${allowed.join(', ')}`, seen: text });
  }
  return list as Outcome[];
}

/**
 * --bootloader, else the set's one bootloader without planted defects, else none (a bench keeps its own);
 * an unknown key is a usage error.
 */
export function chooseBootloader(firmware: FirmwareSet, key: string | undefined): Image | undefined {
  try {
    return dutBootloader(firmware, key);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`--bootloader: ${err.summary}`, { expected: err.expected, seen: err.seen });
    throw err;
  }
}

/** The firmware set dut runs take their images from by default: the virtual MCU's fixtures, when present. */
export function dutManifestPath(root: string): string | undefined {
  const p = path.join(root, 'fixtures', 'mcu', 'manifest.json');
  return existsSync(p) ? p : undefined;
}


export function packageByName(firmware: FirmwareSet, name: string): Package {
  if (!firmware.packages.has(name)) throw new UsageError(`--package: no package ${name}${didYouMean(name, firmware.packages.keys())}`, { expected: `one of ${[...firmware.packages.keys()].join(', ')} (${firmware.manifestPath})`, seen: name });
  return firmware.package(name);
}

/** --plan: a plan an operator created in Developer Center and declared in the station's config. */
export function specFromPlan(station: Pick<OpenedStation, 'name' | 'component'> & { config: Pick<OpenedStation['config'], 'plans'> }, firmware: FirmwareSet, planName: string): UpgradeSpec {
  const plans = station.config.plans;
  if (plans.kind !== 'declared') {
    throw new UsageError(`--plan: ${station.name} creates its plans through an API`, { station: station.name, expected: '--package <name> (the plan is made for it)', seen: `--plan ${planName}` });
  }
  const plan = plans.plans.find((p) => p.name === planName);
  if (!plan) throw new ConfigError(`no declared plan "${planName}"`, { station: station.name, expected: `one of ${plans.plans.map((p) => `"${p.name}"`).join(', ') || '(none declared under plans.plans)'}`, seen: planName });
  let pkg: Package | undefined;
  if (typeof plan.package === 'string') pkg = packageByName(firmware, plan.package);
  else {
    const sha = plan.package.sha256;
    pkg = [...firmware.packages.values()].find((p) => p.sha256 === sha);
    // A plan whose package qualify wrote (--write-packages) is run by qualify, which has the new image to
    // judge the read-back by; here only the manifest knows a package's images.
    if (!pkg) {
      throw new ConfigError(`plan "${planName}": its package is not in the manifest`, {
        station: station.name,
        expected: `a manifest package with sha256 ${sha} (a plan for a package written by qualify --write-packages is run with npm run qualify -- --image <the new image>)`,
        seen: `none in ${firmware.manifestPath}`,
      });
    }
  }
  return { component: plan.component ?? station.component, package: pkg, minBattery: plan.minBattery, minSignal: plan.minSignal };
}

/** The image the target starts from when the command line or the package says it: --from, else a delta's source. */
function declaredStartingImage(firmware: FirmwareSet, pkg: Package, from: string | undefined): Image | undefined {
  const byVersion = (v: string, why: string): Image => {
    if (!firmware.images.has(v)) throw new UsageError(`${why}: no image ${v}${didYouMean(v, firmware.images.keys())}`, { expected: `one of ${[...firmware.images.keys()].join(', ')}`, seen: v });
    return firmware.image(v);
  };
  if (from !== undefined) return byVersion(from, '--from');
  if (pkg.sourceVersion !== undefined) return byVersion(pkg.sourceVersion, `the delta's source`);
  return undefined;
}

/** Otherwise what the slot holds, when the manifest knows it: read over SWD, the one thing that needs the station. */
async function imageInSlot(station: OpenedStation, firmware: FirmwareSet, recorder: Recorder, signal: AbortSignal): Promise<Image> {
  // As many bytes as the longest release has: an image is known by its bytes, not by a header.
  const slot = station.layout;
  const longest = Math.max(0, ...[...firmware.images.values()].map((i) => i.size));
  const seen = await readWithProgress(station.probe, slot.slotAddress, Math.min(slot.slotSize, longest), recorder, 'identify the slot', signal);
  const id = identifyContent(seen, { known: firmware.images.values(), locator: firmware.locator });
  if (!id.image) {
    throw new UsageError('which image does the target start from?', {
      station: station.name,
      expected: `--from <version> (${[...firmware.images.keys()].join(', ')}): the slot holds no image the manifest knows`,
      seen: id.text,
    });
  }
  return id.image;
}

/** --plan before the station opens: a virtual station's plans always come from its API. */
function stationForPlan(name: string, entry: StationConfig): Parameters<typeof specFromPlan>[0] {
  const plans: PlansConfig = entry.kind === 'virtual' ? { kind: 'api', url: 'http://127.0.0.1/' } : entry.plans;
  return { name, component: entry.component, config: { plans } };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    package: { type: 'string' },
    plan: { type: 'string' },
    from: { type: 'string' },
    fault: { type: 'string', multiple: true },
    'cloud-fault': { type: 'string', multiple: true },
    expect: { type: 'string' },
    battery: { type: 'string' },
    'block-size': { type: 'string' },
    crc: { type: 'string' },
    record: { type: 'string', short: 'o' },
    mode: { type: 'string' },
    bootloader: { type: 'string' },
    manifest: { type: 'string' },
    'report-within': { type: 'string' },
    'settle-within': { type: 'string' },
  });
  const json = values.json === true;
  return runCommand(json, async () => {
    const name = requireStationName(positionals[0], 'upgrade');
    if (positionals.length > 1) throw new UsageError('rig upgrade: too many arguments', { expected: 'rig upgrade <station> --package <name> | --plan <name>', seen: positionals.join(' ') });
    if ((values.package === undefined) === (values.plan === undefined)) {
      throw new UsageError('rig upgrade: what to deliver?', { expected: 'exactly one of --package <name> or --plan <declared plan>', seen: values.package ? 'both' : 'neither' });
    }
    const mode = values.mode ?? 'proxy';
    if (mode !== 'proxy' && mode !== 'dut') throw new UsageError('--mode: unknown mode', { expected: 'proxy (the rig plays the MCU) or dut (the MCU image under test drives)', seen: mode });
    if (mode === 'dut') {
      // The MCU under test has its own battery, block size and CRC check: the rig only observes them.
      for (const o of ['battery', 'block-size', 'crc'] as const) {
        if (values[o] !== undefined) throw new UsageError(`--${o} is the MCU's own in dut mode`, { expected: `--${o} with --mode proxy only`, seen: `--${o} ${values[o]}` });
      }
    } else {
      for (const o of ['bootloader', 'report-within', 'settle-within'] as const) {
        if (values[o] !== undefined) throw new UsageError(`--${o} is for dut mode`, { expected: `--${o} with --mode dut`, seen: `--${o} ${values[o]}` });
      }
    }
    const faults = parseFaults(values.fault ?? []);
    const expect = parseExpect(values.expect, mode);
    const battery = intOption('battery', values.battery, 100, 0, 100);
    const blockSize = intOption('block-size', values['block-size'], 1024, 1, 1_000_000);
    const reportWithinMs = values['report-within'] === undefined ? undefined : intOption('report-within', values['report-within'], 0, 1);
    const settleMs = values['settle-within'] === undefined ? undefined : intOption('settle-within', values['settle-within'], 0, 1);
    const manifestPath = values.manifest ?? (mode === 'dut' ? dutManifestPath(packageRoot()) : undefined);
    const firmware = await loadManifest(...(manifestPath !== undefined ? [manifestPath] : []));
    // Everything the command line names is resolved before the station opens: a typo must not start a sim,
    // switch power lines or start OpenOCD.
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    checkStationName(name, config);
    const entry = config.stations[name]!;
    const declared = values.plan !== undefined ? specFromPlan(stationForPlan(name, entry), firmware, values.plan) : undefined;
    const pkg = declared?.package ?? packageByName(firmware, values.package!);
    const declaredFrom = declaredStartingImage(firmware, pkg, values.from);
    if (mode === 'dut' && !declaredFrom) {
      throw new UsageError('rig upgrade --mode dut: which release does the MCU start from?', { expected: `--from <version> (${[...firmware.images.keys()].join(', ')})`, seen: 'no --from and a full package' });
    }
    const bootloader = mode === 'dut' ? chooseBootloader(firmware, values.bootloader) : undefined;
    const cloudFaults = parseCloudFaults(values['cloud-fault'] ?? []);
    checkCrc(values.crc);
    checkRunBeforeOpening(name, entry, { pkg, byDeclaredPlan: declared !== undefined, faults, cloudFaults, console: mode === 'dut' });
    const recorder = new CliRecorder({ quiet: json });
    // A virtual station runs dut mode with its virtual MCU (taps, console, bootloader model).
    const loaded = mode === 'dut' ? withVirtualMcu(config, name) : config;
    return withStation(name, { loaded, recorder, attach: values.attach }, async ({ station, signal }) => {
      const spec: UpgradeSpec = declared ?? { component: station.component, package: pkg };
      if (mode === 'dut') {
        const run = await runDutUpgrade(station, {
          plan: spec,
          from: declaredFrom!,
          ...(bootloader ? { bootloader } : {}),
          faults,
          cloudFaults,
          recorder,
          signal,
          expect,
          ...(reportWithinMs !== undefined ? { reportWithinMs } : {}),
          ...(settleMs !== undefined ? { settleMs } : {}),
        });
        recorder.stopBar();
        return report(run, values.record, json);
      }
      const current = declaredFrom ?? (await imageInSlot(station, firmware, recorder, signal));
      await ensureBaseline(station, current, { signal, recorder });
      const unwatch = watchDownload(station, recorder);
      const run = await runProxyUpgrade(station, {
        plan: spec,
        current,
        faults,
        cloudFaults,
        recorder,
        signal,
        battery,
        expect,
        blockSize,
        firmware,
        ...(values.crc !== undefined ? { crcAlgorithm: values.crc } : {}),
      }).finally(unwatch);
      recorder.stopBar();
      return report(run, values.record, json);
    });
  });
}

/** The verdict and evidence on stdout, the record written; the exit code from both. */
function report(run: RunRecord, recordFile: string | undefined, json: boolean): number {
  const file = writeRecord(run, recordFile);
  const unfired = unfiredFaults(run);
  if (json) {
    const dut = run.dut ? { slots: run.dut.slots, bootRecord: run.dut.bootRecord, settled: run.dut.settled } : undefined;
    process.stdout.write(`${JSON.stringify({ station: run.station.name, mode: run.mode ?? run.flow, verdict: run.verdict, download: run.download, readback: run.readback, ...(dut ? { dut } : {}), fired: run.fired, unfired, record: file }, null, 2)}\n`);
  } else process.stdout.write(`${describeRun(run, file, paint(process.stdout))}\n`);
  if (!run.verdict.ok) return ExitCode.failure;
  return unfired.length > 0 ? ExitCode.faultNotFired : ExitCode.ok;
}
