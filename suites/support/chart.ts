// The read-phase chart of a run: file offset over time as the block reads advance, over the run's phases
// (shaded bands, labelled boundaries) and the faults that fired (red markers). A small hand-written SVG, so
// the report needs no charting library and the chart opens anywhere an image does.
import type { RunRecord } from '../../rig/sota/index.ts';

export interface ChartInput {
  /** (run time ms, file offset reached) after each block read. */
  progress: readonly { t: number; offset: number }[];
  phases: readonly { name: string; start: number; end: number; ok: boolean }[];
  faults: readonly { fault: string; t: number }[];
  /** File size in bytes: the top of the y axis. */
  size: number;
  /** Run length in ms: the right end of the x axis. */
  durationMs: number;
  title: string;
}

const W = 900;
const H = 340;
const PAD = { left: 80, right: 20, top: 40, bottom: 40 };
const BANDS = ['#eef3fb', '#f7f7f7'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function fmt(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

/** A round step for `span` split into about `parts` ticks (1, 2 or 5 × a power of ten). */
export function niceStep(span: number, parts: number): number {
  if (!(span > 0)) return 1;
  const raw = span / parts;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

export function chartFromRecord(record: RunRecord): ChartInput {
  return {
    progress: record.progress,
    phases: record.phases,
    faults: record.fired,
    size: record.plan.size || record.package.size,
    durationMs: record.durationMs,
    title: `${record.station.name}: ${record.current.version} → ${record.package.version} (${record.package.type} package ${record.package.name}), read phase (${record.read.bytes} bytes in ${record.read.blocks} blocks, ${record.read.bytesPerSecond} B/s)`,
  };
}

export function readPhaseChart(input: ChartInput): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const height = PAD.top + plotH + 50 + Math.ceil(input.phases.length / 3) * 14;
  const tEnd = Math.max(1, input.durationMs, ...input.progress.map((p) => p.t), ...input.phases.map((p) => p.end));
  const size = Math.max(1, input.size);
  const x = (t: number) => PAD.left + (Math.max(0, t) / tEnd) * plotW;
  const y = (offset: number) => PAD.top + plotH - (Math.min(offset, size) / size) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${escapeXml(input.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${PAD.left}" y="20" font-size="13" font-weight="bold">${escapeXml(input.title)}</text>`);

  // Phases: alternating bands with a boundary line at each start; wide bands are named inside, and every
  // phase is listed, numbered, under the plot (short phases crowd the start of a run).
  input.phases.forEach((p, i) => {
    const x0 = x(p.start);
    const w = Math.max(0.5, x(p.end) - x0);
    out.push(`<rect x="${fmt(x0)}" y="${PAD.top}" width="${fmt(w)}" height="${plotH}" fill="${p.ok ? BANDS[i % 2] : '#fde8e8'}"/>`);
    out.push(`<line x1="${fmt(x0)}" y1="${PAD.top}" x2="${fmt(x0)}" y2="${PAD.top + plotH}" stroke="#9aa5b1" stroke-dasharray="3,3"/>`);
    const label = w >= 60 ? `${i + 1}. ${p.name}` : w >= 14 ? `${i + 1}` : '';
    if (label) out.push(`<text x="${fmt(x0 + 3)}" y="${PAD.top + 12}" fill="${p.ok ? '#555' : '#b00020'}">${escapeXml(label.length * 6 > w ? `${i + 1}` : label)}</text>`);
  });
  const perColumn = Math.ceil(input.phases.length / 3);
  input.phases.forEach((p, i) => {
    const col = Math.floor(i / Math.max(1, perColumn));
    const row = i - col * perColumn;
    const lx = PAD.left + col * (plotW / 3);
    const ly = PAD.top + plotH + 40 + row * 14;
    out.push(`<text x="${fmt(lx)}" y="${ly}" fill="${p.ok ? '#333' : '#b00020'}">${escapeXml(`${i + 1}. ${p.name}: at ${(p.start / 1000).toFixed(2)} s, ${Math.round(p.end - p.start)} ms${p.ok ? '' : ' (failed)'}`)}</text>`);
  });

  // Axes and ticks.
  out.push(`<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${PAD.left + plotW}" y2="${PAD.top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#333"/>`);
  const tStep = niceStep(tEnd / 1000, 8);
  for (let s = 0; s * 1000 <= tEnd + 1e-9; s += tStep) {
    const tx = x(s * 1000);
    out.push(`<line x1="${fmt(tx)}" y1="${PAD.top + plotH}" x2="${fmt(tx)}" y2="${PAD.top + plotH + 5}" stroke="#333"/>`);
    out.push(`<text x="${fmt(tx)}" y="${PAD.top + plotH + 17}" text-anchor="middle">${fmt(s)} s</text>`);
  }
  // Offsets in whole KiB once the file is a few KiB long.
  const oStep = size >= 4096 ? niceStep(size / 1024, 5) * 1024 : niceStep(size, 5);
  for (let o = 0; o <= size; o += oStep) {
    const oy = y(o);
    out.push(`<line x1="${PAD.left - 5}" y1="${fmt(oy)}" x2="${PAD.left}" y2="${fmt(oy)}" stroke="#333"/>`);
    out.push(`<text x="${PAD.left - 8}" y="${fmt(oy + 4)}" text-anchor="end">${o >= 1024 ? `${fmt(o / 1024)} KiB` : `${o} B`}</text>`);
  }
  out.push(`<text x="14" y="${PAD.top + plotH / 2}" transform="rotate(-90 14 ${PAD.top + plotH / 2})" text-anchor="middle">file offset read</text>`);

  // Progress: a step line (an offset holds until the next block arrives), one dot per point.
  if (input.progress.length > 0) {
    const pts: string[] = [];
    let prev = 0;
    for (const p of input.progress) {
      pts.push(`${fmt(x(p.t))},${fmt(y(prev))}`, `${fmt(x(p.t))},${fmt(y(p.offset))}`);
      prev = p.offset;
    }
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#1565c0" stroke-width="1.5"/>`);
    if (input.progress.length <= 400) {
      for (const p of input.progress) out.push(`<circle cx="${fmt(x(p.t))}" cy="${fmt(y(p.offset))}" r="1.8" fill="#1565c0"/>`);
    }
  } else {
    out.push(`<text x="${PAD.left + plotW / 2}" y="${PAD.top + plotH / 2}" text-anchor="middle" fill="#666">no block was read in this run</text>`);
  }

  for (const f of input.faults) {
    const fx = x(f.t);
    out.push(`<line x1="${fmt(fx)}" y1="${PAD.top}" x2="${fmt(fx)}" y2="${PAD.top + plotH}" stroke="#c62828" stroke-width="2"/>`);
    out.push(`<text x="${fmt(fx + 3)}" y="${PAD.top + 12}" fill="#c62828">${escapeXml(f.fault)}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
