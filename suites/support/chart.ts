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
const PAD = { left: 80, right: 20 };
const PLOT_H = 260;
const BANDS = ['#eef3fb', '#f7f7f7'];
/** Line height of the 11 px labels. */
const LINE = 14;

/**
 * A label's width in px at `size` px sans-serif, estimated on the wide side (0.62 em a character), so that
 * labels placed by it never overlap whatever the font the viewer substitutes.
 */
export function textWidth(text: string, size = 11): number {
  return text.length * size * 0.62;
}

/** Cuts a label to fit `px` (an ellipsis marks the cut); the full text stays in the element's <title>. */
function fitText(text: string, px: number, size = 11): string {
  if (textWidth(text, size) <= px) return text;
  const chars = Math.max(1, Math.floor(px / (size * 0.62)) - 1);
  return `${text.slice(0, chars)}…`;
}

/**
 * Lanes for labels that start at x positions (sorted or not): each label goes into the first lane whose last
 * label ends left of it, so labels of events close in time stack instead of overlapping. Returns the lane of
 * each label, in input order.
 */
export function assignLanes(items: readonly { x: number; width: number }[], gap = 6): number[] {
  const order = items.map((_, i) => i).sort((a, b) => items[a]!.x - items[b]!.x);
  const laneEnds: number[] = [];
  const lanes = new Array<number>(items.length).fill(0);
  for (const i of order) {
    const { x, width } = items[i]!;
    let lane = laneEnds.findIndex((end) => end + gap <= x);
    if (lane === -1) lane = laneEnds.push(0) - 1;
    laneEnds[lane] = x + width;
    lanes[i] = lane;
  }
  return lanes;
}

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
  const tEnd = Math.max(1, input.durationMs, ...input.progress.map((p) => p.t), ...input.phases.map((p) => p.end));
  const size = Math.max(1, input.size);
  const x = (t: number) => PAD.left + (Math.max(0, t) / tEnd) * plotW;

  // The title's two lines: what ran, then the read phase's figures (a long package name must not run off).
  const [what, figures] = splitTitle(input.title);
  const titleLines = [fitText(what, W - PAD.left - 10, 13), ...(figures ? [fitText(figures, W - PAD.left - 10, 11)] : [])];

  // Fault labels get lanes of their own above the plot: faults close in time stack instead of overlapping
  // each other or the phase names inside the plot. A label near the right edge ends at its marker.
  const faults = input.faults.map((f) => {
    const fx = x(f.t);
    const width = textWidth(f.fault);
    const anchorEnd = fx + 3 + width > W - 4;
    return { fault: f.fault, fx, width, left: anchorEnd ? fx - 3 - width : fx + 3, anchorEnd };
  });
  const faultLanes = assignLanes(faults.map((f) => ({ x: f.left, width: f.width })));
  const lanes = faults.length === 0 ? 0 : Math.max(...faultLanes) + 1;
  const top = 24 + titleLines.length * 16 + lanes * LINE;
  const y = (offset: number) => top + PLOT_H - (Math.min(offset, size) / size) * PLOT_H;

  // The phase legend under the plot: as many columns as its longest entry allows (3, 2 or 1).
  const entries = input.phases.map((p, i) => `${i + 1}. ${p.name}: at ${(p.start / 1000).toFixed(2)} s, ${Math.round(p.end - p.start)} ms${p.ok ? '' : ' (failed)'}`);
  const longest = Math.max(0, ...entries.map((e) => textWidth(e)));
  const columns = [3, 2, 1].find((c) => longest <= plotW / c - 12) ?? 1;
  const columnW = plotW / columns;
  const perColumn = Math.ceil(entries.length / columns);
  const legendTop = top + PLOT_H + 40;
  const height = legendTop + perColumn * LINE + 10;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${escapeXml(input.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${PAD.left}" y="20" font-size="13" font-weight="bold">${escapeXml(titleLines[0]!)}</text>`);
  if (titleLines[1]) out.push(`<text x="${PAD.left}" y="36" fill="#333">${escapeXml(titleLines[1])}</text>`);

  // Phases: alternating bands with a boundary line at each start; a band wide enough for its name is
  // named inside, one just wide enough for its number is numbered, and every phase is in the legend.
  input.phases.forEach((p, i) => {
    const x0 = x(p.start);
    const w = Math.max(0.5, x(p.end) - x0);
    out.push(`<rect x="${fmt(x0)}" y="${top}" width="${fmt(w)}" height="${PLOT_H}" fill="${p.ok ? BANDS[i % 2] : '#fde8e8'}"/>`);
    out.push(`<line x1="${fmt(x0)}" y1="${top}" x2="${fmt(x0)}" y2="${top + PLOT_H}" stroke="#9aa5b1" stroke-dasharray="3,3"/>`);
    const named = `${i + 1}. ${p.name}`;
    const label = textWidth(named) + 6 <= w ? named : textWidth(`${i + 1}`) + 6 <= w ? `${i + 1}` : '';
    if (label) out.push(`<text x="${fmt(x0 + 3)}" y="${top + 12}" fill="${p.ok ? '#555' : '#b00020'}">${escapeXml(label)}</text>`);
  });
  entries.forEach((entry, i) => {
    const col = Math.floor(i / Math.max(1, perColumn));
    const row = i - col * perColumn;
    const text = fitText(entry, columnW - 12);
    const title = text === entry ? '' : `<title>${escapeXml(entry)}</title>`;
    out.push(`<text x="${fmt(PAD.left + col * columnW)}" y="${legendTop + row * LINE}" fill="${input.phases[i]!.ok ? '#333' : '#b00020'}">${title}${escapeXml(text)}</text>`);
  });

  // Axes and ticks: time labels at least their own width apart, offsets in whole KiB once the file is a few KiB.
  out.push(`<line x1="${PAD.left}" y1="${top + PLOT_H}" x2="${PAD.left + plotW}" y2="${top + PLOT_H}" stroke="#333"/>`);
  out.push(`<line x1="${PAD.left}" y1="${top}" x2="${PAD.left}" y2="${top + PLOT_H}" stroke="#333"/>`);
  let tStep = niceStep(tEnd / 1000, 8);
  while ((tStep * 1000 * plotW) / tEnd < textWidth(`${fmt(tEnd / 1000)} s`) + 8) tStep = niceStep(tStep * 2.5, 1);
  for (let s = 0; s * 1000 <= tEnd + 1e-9; s += tStep) {
    const tx = x(s * 1000);
    out.push(`<line x1="${fmt(tx)}" y1="${top + PLOT_H}" x2="${fmt(tx)}" y2="${top + PLOT_H + 5}" stroke="#333"/>`);
    out.push(`<text x="${fmt(tx)}" y="${top + PLOT_H + 17}" text-anchor="middle">${fmt(s)} s</text>`);
  }
  const oStep = size >= 4096 ? niceStep(size / 1024, 5) * 1024 : niceStep(size, 5);
  for (let o = 0; o <= size; o += oStep) {
    const oy = y(o);
    out.push(`<line x1="${PAD.left - 5}" y1="${fmt(oy)}" x2="${PAD.left}" y2="${fmt(oy)}" stroke="#333"/>`);
    out.push(`<text x="${PAD.left - 8}" y="${fmt(oy + 4)}" text-anchor="end">${o >= 1024 ? `${fmt(o / 1024)} KiB` : `${o} B`}</text>`);
  }
  out.push(`<text x="14" y="${top + PLOT_H / 2}" transform="rotate(-90 14 ${top + PLOT_H / 2})" text-anchor="middle">file offset read</text>`);

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
    out.push(`<text x="${PAD.left + plotW / 2}" y="${top + PLOT_H / 2}" text-anchor="middle" fill="#666">no block was read in this run</text>`);
  }

  // Faults: a red line through the plot up to the fault's label in its lane.
  faults.forEach((f, i) => {
    const ly = top - 4 - (lanes - 1 - faultLanes[i]!) * LINE;
    out.push(`<line x1="${fmt(f.fx)}" y1="${ly - 10}" x2="${fmt(f.fx)}" y2="${top + PLOT_H}" stroke="#c62828" stroke-width="2"/>`);
    out.push(`<text x="${fmt(f.anchorEnd ? f.fx - 3 : f.fx + 3)}" y="${ly}" fill="#c62828"${f.anchorEnd ? ' text-anchor="end"' : ''}>${escapeXml(f.fault)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** "virtual: 1_0_0 → 2_0_0 (…), read phase (…)" → the run, and the read phase's figures on a line of their own. */
function splitTitle(title: string): [string, string | undefined] {
  const at = title.indexOf(', read phase');
  return at < 0 ? [title, undefined] : [title.slice(0, at), title.slice(at + 2)];
}
