// `rig sweep <station> …`: a power-fail (or any fault) sweep over an upgrade — a clean run calibrates the
// windows, then one full run per point with the fault aimed at a moment of the chosen windows, each judged
// over SWD, then bisection between neighbours that differ. Everything goes into a sweep directory as it
// happens (sweep.json, the calibration's record, the records of every point that did not pass, the heat
// strip), so `--budget` can stop it cleanly and `--resume <dir>` carry on.
import path from 'node:path';
import cliProgress from 'cli-progress';
import { loadConfig } from '../../config/load.ts';
import { ConfigError } from '../../errors.ts';
import type { Image } from '../../images/image.ts';
import { loadManifest, type FirmwareSet } from '../../images/manifest.ts';
import { formatAction, parseFault } from '../../sota/faults.ts';
import type { Recorder } from '../../sota/recorder.ts';
import { checkFaults } from '../../sota/schedule.ts';
import { applyCalibration, calibrate, failingStretches, formatDuration, heatStrip, matrixCells, matrixOf, newSweepState, progressOf, runPoint, runSweep, sweepFlows, SweepDir, WINDOWS } from '../../sota/sweep/index.ts';
import type { PlannedPoint, PointResult, SweepMode, SweepProgress, SweepSettings, SweepState, SweepSubject } from '../../sota/sweep/index.ts';
import { OUTCOMES } from '../../sota/verdict.ts';
import type { Outcome } from '../../sota/verdict.ts';
import type { OpenedStation } from '../../station/open.ts';
import { ExitCode, packageRoot } from '../main.ts';
import { COMMON_OPTIONS, intOption, paint, parse, table, UsageError, type Paint } from '../output.ts';
import { withVirtualMcu } from '../../station/virtual.ts';
import { requireStationName, runCommand, withStation } from '../station.ts';
import { chooseBootloader, dutManifestPath, packageByName } from './upgrade.ts';

const DEFAULT_ALLOW: readonly Outcome[] = ['upgraded', 'rolled-back', 'failed-intact'];

function list(text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Actions in their canonical text (`power-cycle-target=500`), or a UsageError naming the bad one. */
export function parseActions(text: string | undefined, mode: SweepMode): string[] {
  const given = list(text);
  const actions = given.length > 0 ? given : [mode === 'dut' ? 'power-cycle-target' : 'power-cycle-module'];
  return actions.map((a) => {
    try {
      return formatAction(parseFault(`delay=0:${a}`).action);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`--action: ${a} is not an action`, { expected: err.expected, seen: a });
      throw err;
    }
  });
}

export function parseWindows(text: string | undefined, mode: SweepMode): string[] {
  const names = WINDOWS[mode].map((w) => w.name);
  const given = list(text);
  if (given.length === 0) return names;
  const bad = given.filter((w) => !names.includes(w));
  if (bad.length > 0) throw new UsageError(`--window: no window ${bad.join(', ')} in ${mode} mode`, { expected: `comma-separated ${WINDOWS[mode].map((w) => `${w.name} (${w.what})`).join(', ')}`, seen: text ?? '' });
  return names.filter((n) => given.includes(n));
}

function parseAllow(text: string | undefined): Outcome[] {
  if (text === undefined) return [...DEFAULT_ALLOW];
  const given = list(text);
  const bad = given.filter((o) => !OUTCOMES.includes(o as Outcome));
  if (bad.length > 0 || given.length === 0) throw new UsageError('--allow: unknown outcome', { expected: `comma-separated ${OUTCOMES.join(', ')}`, seen: text });
  return given as Outcome[];
}

/** --budget in minutes (decimals allowed: 0.5 = 30 s). */
export function parseBudget(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const min = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(min > 0)) throw new UsageError('--budget: not a number of minutes', { expected: 'minutes > 0, e.g. 90 or 0.5', seen: text });
  return Math.round(min * 60_000);
}

function imageByKey(firmware: FirmwareSet, key: string, option: string): Image {
  if (!firmware.images.has(key)) throw new UsageError(`${option}: no image ${key}`, { expected: `one of ${[...firmware.images.keys()].join(', ')} (${firmware.manifestPath})`, seen: key });
  return firmware.image(key);
}

const keyOf = (firmware: FirmwareSet, img: Image): string => [...firmware.images].find(([, i]) => i === img)?.[0] ?? img.version;

/** The subject of a sweep from its settings, every image checked against the sha256 the settings name. */
async function subjectOf(s: SweepSettings): Promise<SweepSubject> {
  const firmware = await loadManifest(s.manifest);
  const check = (what: string, sha: string, seen: string) => {
    if (sha !== seen) throw new ConfigError(`${what} in ${s.manifest} is not the one the sweep started with`, { expected: `sha256 ${sha}`, seen: `sha256 ${seen}` });
  };
  const pkg = firmware.package(s.package.name);
  check(`package ${s.package.name}`, s.package.sha256, pkg.sha256);
  const from = firmware.image(s.from.key);
  check(`image ${s.from.key}`, s.from.sha256, from.sha256);
  const bootloader = s.bootloader ? firmware.image(s.bootloader.key) : undefined;
  if (s.bootloader && bootloader) check(`bootloader ${s.bootloader.key}`, s.bootloader.sha256, bootloader.sha256);
  return { mode: s.mode, package: pkg, from, bootloader, firmware, allow: s.allow, nextCheck: s.nextCheck, reportWithinMs: s.reportWithinMs ?? undefined, settleMs: s.settleMs ?? undefined };
}

/** A point's result in a few words: the verdict, the next upgrade's when it failed, where the record is. */
function brief(r: PointResult): string {
  if (r.status === 'pass' || r.status === 'not-fired' || r.status === 'error') return r.why.length > 160 ? `${r.why.slice(0, 159)}…` : r.why;
  const next = r.next && !r.next.ok ? `, but the next upgrade (${r.next.package}) ended ${r.next.verdict}` : '';
  return `${r.verdict}${next}${r.record ? `; record ${r.record}` : ''}`;
}

/** The sweep's line on the terminal: a bar with the estimated time left (terminal), a line per point (logs). */
class SweepView implements Recorder {
  private bar: cliProgress.SingleBar | undefined;
  private current = '';
  private readonly p: Paint;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {
    this.p = paint(stream);
  }

  private get tty(): boolean {
    return this.stream.isTTY === true && !this.quiet;
  }

  line(text: string): void {
    if (this.quiet) return;
    if (this.bar) this.stream.write('\r\x1b[2K');
    this.stream.write(`${text}\n`);
    if (this.bar) this.bar.render();
  }

  started(point: PlannedPoint, pr: SweepProgress): void {
    this.current = `point ${point.id}: ${point.fault}`;
    if (!this.tty) return;
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        { stream: this.stream, format: 'sweep [{bar}] {value}/{total} points | {failing} failing | ETA {eta_text} | {what}', hideCursor: true, barsize: 24, fps: 5, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(pr.total, pr.done, this.payload(pr));
    }
    this.bar.setTotal(pr.total);
    this.bar.update(pr.done, this.payload(pr));
  }

  private payload(pr: SweepProgress): Record<string, string | number> {
    return { failing: pr.failing, eta_text: formatDuration(pr.etaMs), what: this.current.length > 70 ? `${this.current.slice(0, 69)}…` : this.current };
  }

  finished(r: PointResult, pr: SweepProgress): void {
    const head = r.status === 'pass' ? this.p.green('pass') : r.status === 'fail' ? this.p.red('FAIL') : this.p.yellow(r.status);
    const where = r.landed !== null ? `${r.landedWindow} @${Math.round(r.landed)} ms` : `${r.window} (aimed @${Math.round(r.at)} ms)`;
    const text = `[${String(pr.done).padStart(String(pr.total).length)}/${pr.total}] ${head} ${where} ${r.fault} → ${brief(r)} (${formatDuration(r.durationMs)}; ETA ${formatDuration(pr.etaMs)})`;
    if (this.tty) {
      // A failing point stays on screen above the bar; the others only move it.
      if (r.status !== 'pass') this.line(text);
      this.bar?.setTotal(pr.total);
      this.bar?.update(pr.done, this.payload(pr));
    } else this.line(text);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  // The flow's own steps only name what the bar shows; their evidence is in the records.
  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    if (this.bar && !name.startsWith('point ')) this.bar.update({ what: `${this.current.slice(0, 40)} · ${name.slice(0, 28)}` });
    return body();
  }

  attach(): void {}

  measure(): void {}
}

/** The lines a person reads at the end: the matrix, what failed and how to replay it, the edges, the time. */
export function describeSweep(state: SweepState, dir: string, p: Paint): string {
  const lines: string[] = [];
  const m = matrixOf(state);
  const pr = progressOf(state);
  const status = state.status === 'complete' ? p.green('complete') : p.yellow(state.status.replace('stopped-', 'stopped: '));
  lines.push(`sweep ${status}${state.stoppedWhy ? `: ${state.stoppedWhy}` : ''} — ${pr.done} of ${pr.total} points run, ${pr.failing} failing`);
  if (m.rows.length > 0) lines.push('', table(matrixCells(m)[0]!, matrixCells(m).slice(1), p));
  const failing = state.results.filter((r) => r.status === 'fail');
  if (failing.length > 0) {
    lines.push('', p.red('failing points (rig repro replays each one):'));
    for (const r of failing) lines.push(`  ${r.id}  ${r.fault}  → ${r.why}`, `      rig repro ${path.join(dir, r.record ?? '')}`);
  }
  const tl = state.calibration?.timeline;
  const stretches = tl ? failingStretches(tl, state.results, state.settings.actions) : [];
  if (stretches.length > 0) {
    lines.push('', p.red('failing windows:'));
    for (const s of stretches) lines.push(`  ${s.text}`);
  }
  const notFired = state.results.filter((r) => r.status === 'not-fired');
  if (notFired.length > 0) lines.push('', p.yellow(`${notFired.length} point${notFired.length > 1 ? 's' : ''} never fired (not tested): ${notFired.map((r) => r.id).join(', ')}`));
  const times = state.results.map((r) => r.durationMs);
  if (times.length > 0) {
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    lines.push('', `time per point ${formatDuration(mean)} (mean of ${times.length}; ${Math.round(3_600_000 / mean)} points per hour)`);
  }
  lines.push(`sweep directory ${dir}  (heat strip: heat-strip.svg; resume: rig sweep --resume ${dir})`);
  return lines.join('\n');
}

function exitCodeOf(state: SweepState): number {
  if (state.results.some((r) => r.status === 'fail')) return ExitCode.failure;
  if (state.status === 'stopped-broken') return ExitCode.infrastructure;
  if (state.results.some((r) => r.status === 'not-fired')) return ExitCode.faultNotFired;
  return state.status === 'complete' ? ExitCode.ok : ExitCode.incomplete;
}

/** The actions need the station's lines: said before the calibration, not at the first point. */
function checkActions(station: OpenedStation, s: SweepSettings): void {
  const faults = s.actions.map((a) => parseFault(`delay=0:${a}`));
  checkFaults(station.name, faults, station.power);
}

async function sweepOn(station: OpenedStation, state: SweepState, dir: SweepDir, o: { signal: AbortSignal; budgetMs: number | undefined; view: SweepView }): Promise<SweepState> {
  const started = performance.now();
  const s = state.settings;
  checkActions(station, s);
  const subject = await subjectOf(s);
  const flows = sweepFlows(station, { signal: o.signal, recorder: o.view });
  if (!state.calibration) {
    o.view.line(`calibrating: ${s.calibrationRuns} clean ${s.mode} run${s.calibrationRuns > 1 ? 's' : ''} of ${s.package.name} from ${s.from.key} on ${station.name}`);
    const t0 = performance.now();
    const cal = await calibrate(station, subject, flows, o.view, s.calibrationRuns, {
      windows: s.windows,
      keep: (record, i) => path.join(dir.path, dir.keep(i === 1 ? 'calibration' : `calibration-${i}`, record)),
    });
    applyCalibration(state, dir, cal);
    const chosen = cal.timeline.windows.filter((w) => s.windows.includes(w.name));
    o.view.line(`calibrated (${formatDuration(performance.now() - t0)}): ${chosen.map((w) => `${w.name} ${Math.round(w.end - w.start)} ms`).join(', ')}; ${state.points.length} points planned${s.mode === 'dut' ? `; each run bounded by ${s.reportWithinMs} ms start → version report, ${s.settleMs} ms in all` : ''}`);
  }
  const calibration = state.calibration!;
  const bounded = { ...subject, reportWithinMs: s.reportWithinMs ?? undefined, settleMs: s.settleMs ?? undefined };
  const tl = calibration.timeline;
  try {
    return await runSweep(state, dir, {
      signal: o.signal,
      budgetMs: o.budgetMs,
      // The budget is the whole command's: calibrating took some of it already.
      spentMs: performance.now() - started,
      runPoint: (p) => runPoint(station, bounded, tl, p, flows, o.view),
      hooks: {
        started: (p, pr) => o.view.started(p, pr),
        finished: (r, pr) => o.view.finished(r, pr),
        refined: (pts, round) => o.view.line(`bisection round ${round}: ${pts.length} point${pts.length > 1 ? 's' : ''} between neighbours that differ`),
      },
    });
  } finally {
    o.view.stop();
    dir.write('heat-strip.svg', heatStrip(state, (r) => r.record ?? undefined));
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...COMMON_OPTIONS,
    mode: { type: 'string' },
    package: { type: 'string' },
    from: { type: 'string' },
    bootloader: { type: 'string' },
    manifest: { type: 'string' },
    action: { type: 'string', multiple: true },
    window: { type: 'string', multiple: true },
    points: { type: 'string' },
    every: { type: 'string' },
    budget: { type: 'string' },
    refine: { type: 'string' },
    allow: { type: 'string' },
    'no-next': { type: 'boolean' },
    calibrate: { type: 'string' },
    'report-within': { type: 'string' },
    'settle-within': { type: 'string' },
    resume: { type: 'string' },
    out: { type: 'string', short: 'o' },
  });
  const json = values.json === true;
  return runCommand(json, async () => {
    const budgetMs = parseBudget(values.budget);
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    let dir: SweepDir;
    let state: SweepState;
    if (values.resume !== undefined) {
      for (const o of ['mode', 'package', 'from', 'bootloader', 'manifest', 'action', 'window', 'points', 'every', 'allow', 'no-next', 'calibrate', 'report-within', 'settle-within', 'out'] as const) {
        if (values[o] !== undefined) throw new UsageError(`--${o} cannot change a sweep being resumed`, { expected: `--resume <dir> with --budget, --refine, --config, --json only (the rest is in ${path.join(values.resume, 'sweep.json')})`, seen: `--${o}` });
      }
      dir = new SweepDir(path.resolve(values.resume));
      state = dir.load();
      if (positionals.length > 0 && positionals[0] !== state.settings.station) {
        throw new UsageError('rig sweep --resume: another station', { expected: `${state.settings.station} (the station the sweep ran on), or no station`, seen: positionals[0] });
      }
      if (values.refine !== undefined) state.settings.refine = intOption('refine', values.refine, 0, 0, 20);
    } else {
      const name = requireStationName(positionals[0], 'sweep');
      if (positionals.length > 1) throw new UsageError('rig sweep: too many arguments', { expected: 'rig sweep <station> --package <name> --from <version> …', seen: positionals.join(' ') });
      const mode = (values.mode ?? 'dut') as SweepMode;
      if (mode !== 'dut' && mode !== 'proxy') throw new UsageError('--mode: unknown mode', { expected: 'dut (the MCU image under test drives) or proxy (the rig plays the MCU)', seen: mode });
      if (values.package === undefined) throw new UsageError('rig sweep: which package?', { expected: '--package <name> from the manifest', seen: 'no --package' });
      if (values.from === undefined) throw new UsageError('rig sweep: which release does the MCU start from?', { expected: '--from <version> (a manifest image key)', seen: 'no --from' });
      if (values.points !== undefined && values.every !== undefined) throw new UsageError('rig sweep: --points or --every?', { expected: 'one of --points <N> or --every <ms>', seen: 'both' });
      if (mode === 'proxy') {
        for (const o of ['bootloader', 'report-within', 'settle-within'] as const) {
          if (values[o] !== undefined) throw new UsageError(`--${o} is for dut mode`, { expected: `--${o} with --mode dut`, seen: `--${o} ${values[o]}` });
        }
      }
      const actions = parseActions(values.action?.join(','), mode);
      const windows = parseWindows(values.window?.join(','), mode);
      const points = values.every === undefined ? intOption('points', values.points, 20, 1, 10_000) : null;
      const everyMs = values.every === undefined ? null : intOption('every', values.every, 0, 1, 3_600_000);
      const refine = intOption('refine', values.refine, 0, 0, 20);
      const allow = parseAllow(values.allow);
      const reportWithinMs = values['report-within'] === undefined ? null : intOption('report-within', values['report-within'], 0, 1);
      const settleMs = values['settle-within'] === undefined ? null : intOption('settle-within', values['settle-within'], 0, 1);
      const manifestPath = values.manifest ?? (mode === 'dut' ? dutManifestPath(packageRoot()) : undefined);
      const firmware = await loadManifest(...(manifestPath !== undefined ? [manifestPath] : []));
      const pkg = packageByName(firmware, values.package);
      const from = imageByKey(firmware, values.from, '--from');
      if (pkg.type === 'delta' && pkg.sourceVersion !== from.version) throw new UsageError(`--from: delta ${pkg.name} starts from ${pkg.sourceVersion}`, { expected: `--from ${pkg.sourceVersion}`, seen: `--from ${values.from}` });
      const bootloader = mode === 'dut' ? chooseBootloader(firmware, values.bootloader) : undefined;
      if (!Object.hasOwn(config.stations, name)) throw new ConfigError(`no station "${name}" in the config${config.source ? ` ${config.source}` : ''}`, { expected: `one of ${Object.keys(config.stations).join(', ')}`, seen: name });
      const settings: SweepSettings = {
        mode,
        station: name,
        manifest: firmware.manifestPath,
        package: { name: pkg.name, sha256: pkg.sha256 },
        from: { key: values.from, version: from.version, sha256: from.sha256 },
        bootloader: bootloader ? { key: keyOf(firmware, bootloader), version: bootloader.version, sha256: bootloader.sha256 } : null,
        actions,
        windows,
        points,
        everyMs,
        refine,
        allow,
        nextCheck: values['no-next'] !== true,
        calibrationRuns: intOption('calibrate', values.calibrate, 3, 1, 9),
        reportWithinMs,
        settleMs,
      };
      dir = values.out !== undefined ? SweepDir.make(path.resolve(values.out)) : SweepDir.create(path.join(packageRoot(), 'reports', 'runs'), name);
      state = newSweepState(settings);
      dir.save(state);
    }
    const view = new SweepView(process.stderr, json);
    if (!json) view.line(`sweep directory ${dir.path}`);
    // A virtual station sweeps dut mode with its virtual MCU (off by default: the proxy bench).
    const loaded = state.settings.mode === 'dut' ? withVirtualMcu(config, state.settings.station) : config;
    const final = await withStation(state.settings.station, { loaded, attach: values.attach }, ({ station, signal }) => sweepOn(station, state, dir, { signal, budgetMs, view }));
    const tl = final.calibration?.timeline;
    if (json) {
      const times = final.results.map((r) => r.durationMs);
      const mean = times.length > 0 ? times.reduce((a, b) => a + b, 0) / times.length : null;
      process.stdout.write(
        `${JSON.stringify(
          {
            dir: dir.path,
            status: final.status,
            stoppedWhy: final.stoppedWhy,
            progress: progressOf(final),
            matrix: matrixOf(final),
            failing: final.results.filter((r) => r.status === 'fail').map((r) => ({ id: r.id, fault: r.fault, verdict: r.verdict, why: r.why, record: r.record && path.join(dir.path, r.record), nextRecord: r.nextRecord && path.join(dir.path, r.nextRecord) })),
            failingWindows: tl ? failingStretches(tl, final.results, final.settings.actions) : [],
            timing: mean === null ? null : { pointMs: Math.round(mean), pointsPerHour: Math.round(3_600_000 / mean) },
            heatStrip: path.join(dir.path, 'heat-strip.svg'),
          },
          null,
          2,
        )}\n`,
      );
    } else process.stdout.write(`${describeSweep(final, dir.path, paint(process.stdout))}\n`);
    return exitCodeOf(final);
  });
}
