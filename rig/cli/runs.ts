// Where run records go and how a verdict reads on a terminal; shared by upgrade and repro.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { serializeRunRecord } from '../sota/record.ts';
import type { RunRecord } from '../sota/record.ts';
import type { Recorder } from '../sota/recorder.ts';
import type { Verdict } from '../sota/verdict.ts';
import type { Station } from '../station/station.ts';
import { packageRoot } from './main.ts';
import type { Paint } from './output.ts';

/** reports/runs/<station>[-<what>]-<UTC time>.json under the package root (gitignored), or the file given. */
export function writeRecord(record: RunRecord, file: string | undefined, what = ''): string {
  const stamp = record.startedAt.replace(/[:.]/g, '-');
  const out = file ?? path.join(packageRoot(), 'reports', 'runs', `${record.station.name}${what ? `-${what}` : ''}-${stamp}.json`);
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, serializeRunRecord(record));
  return out;
}

/** Faults of the run's schedule whose trigger never came. */
export function unfiredFaults(r: Pick<RunRecord, 'faults' | 'fired'>): string[] {
  return r.faults.filter((f) => !r.fired.some((x) => x.fault === f));
}

/** PASS only when the verdict is expected and every fault asked for fired: otherwise the run did not test what was asked. */
export function formatVerdict(v: Verdict, p: Paint, unfired: readonly string[] = []): string {
  const head = !v.ok ? p.red('FAIL') : unfired.length > 0 ? p.red('FAULT NEVER FIRED') : p.green('PASS');
  return `${head} ${v.summary}`;
}

/** The lines a person reads after a run: verdict, evidence, faults, where the record is. */
export function describeRun(r: RunRecord, recordFile: string, p: Paint): string {
  const lines = [formatVerdict(r.verdict, p, unfiredFaults(r))];
  const about = r.station.description || r.station.probe;
  lines.push(`  station   ${r.station.name} (${about.length > 70 ? `${about.slice(0, 69)}…` : about})`);
  lines.push(`  package   ${r.package.name}: ${r.package.type} ${r.package.sourceVersion ?? ''}${r.package.sourceVersion ? ' → ' : ''}${r.package.version}, ${r.package.size} bytes; from ${r.current.version}`);
  if (r.read.bytes > 0) lines.push(`  read      ${r.read.bytes} bytes in ${r.read.blocks} blocks, ${r.read.bytesPerSecond} B/s`);
  // A rejected package says why: which digest (size, MD5, CRC, SHA-256) or the rebuilt image, expected and seen.
  if (r.download && (!r.download.verified || r.verdict.reason === 'download-rejected')) {
    const problems = r.download.problems.filter((x) => !x.startsWith('note:'));
    lines.push(`  download  ${p.red('rejected')}: ${problems[0] ?? 'the download check failed'}`, ...problems.slice(1).map((x) => `            ${x}`));
  } else if (r.download?.problems.some((x) => !x.startsWith('note:'))) {
    lines.push(`  download  ${r.download.problems.filter((x) => !x.startsWith('note:')).join('; ')}`);
  }
  if (r.dut) {
    lines.push(`  mode      dut: the MCU image under test drove the upgrade (${r.dut.tap.length} tapped lines, ${r.dut.console.length} console lines)`);
    for (const [name, s] of [['slot A', r.dut.slots.a], ['slot B', r.dut.slots.b]] as const) {
      if (s) lines.push(`  ${name.padEnd(9)} ${s.identity}: ${s.holds}${s.firstDifference !== null ? `, first difference at 0x${s.firstDifference.toString(16)} against ${s.against}${s.tapLine ? ` (${s.tapLine})` : ''}` : ''}`);
    }
    lines.push(`  boot rec  before: ${r.dut.bootRecord.before?.summary ?? 'not decoded'}; after: ${r.dut.bootRecord.after?.summary ?? 'not decoded'}`);
    lines.push(`  reports   ${r.dut.reports.map((x) => x.version).join(' → ') || 'none'}${r.dut.settled ? `; settled: ${r.dut.settled}` : ''}`);
  } else if (r.readback) lines.push(`  read-back ${r.readback.identified ? `${r.readback.identified.component} ${r.readback.identified.version}` : r.readback.identity} (${r.readback.comparison})`);
  for (const f of r.faults) {
    const fired = r.fired.find((x) => x.fault === f);
    const landed = fired?.landed ? `; landed ${fired.landed.window ? `in the ${fired.landed.window} window` : 'before the plan'}` : '';
    lines.push(`  fault     ${f}: ${fired ? `fired in ${fired.phase} at ${(fired.t / 1000).toFixed(1)} s, ${fired.effect}${landed}` : p.yellow('never fired (its trigger did not come)')}`);
  }
  for (const w of r.warnings ?? []) lines.push(`  ${p.yellow('warning')}   ${w}`);
  lines.push(`  duration  ${(r.durationMs / 1000).toFixed(1)} s`);
  lines.push(`  record    ${recordFile}  (rig repro ${recordFile})`);
  return lines.join('\n');
}

/**
 * Download progress for the bars: the module says nothing about bytes while it downloads (10702 carries no
 * count), only when a piece is stored (10703: start, length, total), so the bar moves once per piece.
 */
export function watchDownload(station: Pick<Station, 'module'>, recorder: Recorder): () => void {
  const phase = 'download (cloud → module)';
  return station.module.qt.on('event', (e) => {
    if (e.kind === 'ota-download-start' && e.size > 0) recorder.progress?.(phase, 0, e.size);
    else if (e.kind === 'ota-piece-ready' && e.size > 0) recorder.progress?.(phase, e.start + e.length, e.size);
  });
}
