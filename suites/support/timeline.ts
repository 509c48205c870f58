// The timeline picture of a dut run: one row per phase the rig saw (version report, plan, download, block
// reads, install, swap, trial boot, confirmation …) as bars along the run's time, the faults that fired as
// red lines, the MCU's starts as grey ticks and the module's results as labelled marks. A small
// hand-written SVG like the read-phase chart, so the report needs no charting library.
import type { RunRecord } from '../../rig/sota/index.ts';
import { escapeXml, niceStep } from './chart.ts';

const W = 900;
const ROW = 18;
const PAD = { left: 190, right: 20, top: 36, bottom: 46 };

export function timelineFromRecord(r: RunRecord): string {
  const phases = r.phases;
  // One row per phase name (numbered repeats share their base name's row), in order of first appearance.
  const rows: string[] = [];
  const rowOf = (name: string) => {
    const base = name.replace(/ #\d+$/, '');
    let i = rows.indexOf(base);
    if (i < 0) i = rows.push(base) - 1;
    return i;
  };
  for (const p of phases) rowOf(p.name);
  const tEnd = Math.max(1, r.durationMs, ...phases.map((p) => p.end));
  const plotW = W - PAD.left - PAD.right;
  const height = PAD.top + rows.length * ROW + PAD.bottom;
  const x = (t: number) => PAD.left + (Math.max(0, Math.min(t, tEnd)) / tEnd) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<text x="${PAD.left}" y="16" font-size="13">${escapeXml(`${r.station.name}: ${r.current.version} → ${r.package.version} (${r.mode ?? r.flow}), ${r.verdict.summary.split(':')[0]}`)}</text>`);
  rows.forEach((name, i) => {
    const y = PAD.top + i * ROW;
    if (i % 2 === 0) out.push(`<rect x="${PAD.left}" y="${y}" width="${plotW}" height="${ROW}" fill="#f5f7fa"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${y + ROW - 5}" text-anchor="end">${escapeXml(name)}</text>`);
  });
  for (const p of phases) {
    const y = PAD.top + rowOf(p.name) * ROW + 3;
    const w = Math.max(2, x(p.end) - x(p.start));
    out.push(`<rect x="${x(p.start).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${ROW - 6}" fill="${p.ok ? '#4a7bd0' : '#d08a4a'}"><title>${escapeXml(`${p.name}: ${(p.start / 1000).toFixed(3)}–${(p.end / 1000).toFixed(3)} s${p.ok ? '' : ' (cut short)'}`)}</title></rect>`);
  }
  const bottom = PAD.top + rows.length * ROW;
  for (const s of r.dut?.starts ?? []) {
    out.push(`<line x1="${x(s.t).toFixed(1)}" x2="${x(s.t).toFixed(1)}" y1="${PAD.top}" y2="${bottom}" stroke="#999" stroke-dasharray="2,3"><title>${escapeXml(`MCU start at ${(s.t / 1000).toFixed(3)} s: ${s.why}${s.reported ? '' : ' (no version report)'}`)}</title></line>`);
  }
  for (const f of r.fired) {
    out.push(`<line x1="${x(f.t).toFixed(1)}" x2="${x(f.t).toFixed(1)}" y1="${PAD.top - 6}" y2="${bottom}" stroke="#c0392b" stroke-width="2"><title>${escapeXml(`fault ${f.fault} at ${(f.t / 1000).toFixed(3)} s: ${f.effect}`)}</title></line>`);
    out.push(`<text x="${x(f.t).toFixed(1)}" y="${PAD.top - 8}" fill="#c0392b" text-anchor="middle">${escapeXml(f.fault.split(':')[1] ?? f.fault)}</text>`);
  }
  const step = niceStep(tEnd / 1000, 8);
  for (let s = 0; s * 1000 <= tEnd; s += step) {
    const xs = x(s * 1000).toFixed(1);
    out.push(`<line x1="${xs}" x2="${xs}" y1="${bottom}" y2="${bottom + 4}" stroke="#333"/><text x="${xs}" y="${bottom + 16}" text-anchor="middle">${Math.round(s * 10) / 10}</text>`);
  }
  out.push(`<text x="${PAD.left + plotW / 2}" y="${bottom + 34}" text-anchor="middle">run time, s (red: faults; dashed: MCU starts; orange: phases cut short)</text>`);
  out.push('</svg>');
  return out.join('\n');
}
