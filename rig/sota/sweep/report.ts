// What a sweep found, for people: the matrix (window × action → verdict counts), the failing points with
// the records that replay them, and the heat strip — the calibrated upgrade's timeline with a mark per point
// where its fault landed, coloured by verdict, each failing mark a link to its run record. The strip is a
// small hand-written SVG (the report needs no charting library); the suites attach it to Allure, the CLI
// writes it into the sweep's directory.
import type { PointResult, SweepState } from './model.ts';
import { failingStretches } from './plan.ts';
import type { FailingStretch } from './plan.ts';
import type { Timeline } from './timeline.ts';

/** A point's cell in the matrix: its verdict, or why it says nothing about the image. */
export function cellOf(r: PointResult): string {
  if (r.status === 'not-fired') return 'not fired';
  if (r.status === 'error') return 'error';
  if (r.status === 'fail' && r.next && !r.next.ok) return `${r.verdict}, next failed`;
  return r.verdict;
}

const ORDER = ['upgraded', 'rolled-back', 'failed-intact', 'refused', 'bricked', 'inconsistent'];

function columnRank(c: string): number {
  const i = ORDER.indexOf(c);
  if (i >= 0) return i;
  if (c.endsWith('next failed')) return ORDER.length;
  if (c.startsWith('failure')) return ORDER.length + 1;
  return c === 'not fired' ? ORDER.length + 2 : ORDER.length + 3;
}

export interface MatrixRow {
  /** Where the fault landed (the window it was aimed at, when it never fired). */
  window: string;
  action: string;
  points: number;
  failing: number;
  counts: Record<string, number>;
}

export interface Matrix {
  columns: string[];
  rows: MatrixRow[];
}

/** Window × action → verdict counts, in timeline order of the windows, then the actions as given. */
export function matrixOf(state: Pick<SweepState, 'results' | 'calibration' | 'settings'>): Matrix {
  const windows = state.calibration?.timeline.windows.map((w) => w.name) ?? state.settings.windows;
  const actions = state.settings.actions;
  const rows = new Map<string, MatrixRow>();
  const columns = new Set<string>();
  for (const r of state.results) {
    const window = r.landedWindow ?? r.window;
    const key = `${window}\u0000${r.action}`;
    const row = rows.get(key) ?? { window, action: r.action, points: 0, failing: 0, counts: {} };
    const cell = cellOf(r);
    row.points++;
    if (r.status === 'fail') row.failing++;
    row.counts[cell] = (row.counts[cell] ?? 0) + 1;
    columns.add(cell);
    rows.set(key, row);
  }
  const rank = (w: string) => (windows.indexOf(w) < 0 ? windows.length : windows.indexOf(w));
  return {
    columns: [...columns].sort((a, b) => columnRank(a) - columnRank(b) || a.localeCompare(b)),
    rows: [...rows.values()].sort((a, b) => rank(a.window) - rank(b.window) || actions.indexOf(a.action) - actions.indexOf(b.action)),
  };
}

/** The matrix as rows of cells, header first, for a terminal table. */
export function matrixCells(m: Matrix): string[][] {
  return [['window', 'action', 'points', ...m.columns], ...m.rows.map((r) => [r.window, r.action, String(r.points), ...m.columns.map((c) => String(r.counts[c] ?? 0))])];
}

const COLOURS: Record<string, string> = {
  upgraded: '#2e9e4f',
  'rolled-back': '#4a7bd0',
  'failed-intact': '#8fbf5a',
  refused: '#b0b0b0',
  bricked: '#c0392b',
  inconsistent: '#8e44ad',
};

/** Bricked and inconsistent in their own colours; any other failing point (a failure type, a next upgrade that failed) orange. */
function colourOf(r: PointResult): string {
  if (r.status === 'not-fired') return '#ffffff';
  if (r.status === 'error') return '#999999';
  if (r.status === 'fail') return r.verdict === 'bricked' || r.verdict === 'inconsistent' ? COLOURS[r.verdict]! : '#e67e22';
  return COLOURS[r.verdict] ?? '#2e9e4f';
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const W = 960;
const PAD = { left: 170, right: 20, top: 62, bottom: 92 };
const ROW = 28;

/**
 * The heat strip: the chosen windows side by side (each at least a tenth of the width, so a 1 ms window
 * stays visible; inside a window time is linear), one row per action where each point colours the stretch
 * nearer to it than to its neighbours by its verdict, with a tick where its fault landed; under the rows the
 * marks the triggers name (console lines, block offsets, events). `link(result)` gives a failing point's
 * record URL (relative to where the SVG is written, or absolute), or undefined for none.
 */
export function heatStrip(state: Pick<SweepState, 'results' | 'calibration' | 'settings'>, link: (r: PointResult) => string | undefined = () => undefined): string {
  const tl: Timeline | undefined = state.calibration?.timeline;
  const chosen = tl ? tl.windows.filter((w) => state.settings.windows.includes(w.name)) : [];
  const actions = state.settings.actions;
  const plotW = W - PAD.left - PAD.right;
  const minShare = chosen.length > 0 ? Math.min(0.1, 1 / chosen.length) : 0;
  const lengths = chosen.map((w) => Math.max(w.end - w.start, 0));
  const total = lengths.reduce((a, b) => a + b, 0);
  const shares = lengths.map((l) => Math.max(minShare, total > 0 ? l / total : 1 / chosen.length));
  const norm = shares.reduce((a, b) => a + b, 0) || 1;
  const bands: { name: string; start: number; end: number; x0: number; w: number }[] = [];
  let x0 = PAD.left;
  chosen.forEach((w, i) => {
    const width = (shares[i]! / norm) * plotW;
    bands.push({ name: w.name, start: w.start, end: w.end, x0, w: width });
    x0 += width;
  });
  const x = (t: number): number => {
    if (bands.length === 0) return PAD.left;
    if (t <= bands[0]!.start) return bands[0]!.x0;
    for (const b of bands) if (t <= b.end) return b.x0 + (b.end > b.start ? ((Math.max(t, b.start) - b.start) / (b.end - b.start)) * b.w : b.w / 2);
    const last = bands.at(-1)!;
    return last.x0 + last.w;
  };
  const left = PAD.left;
  const right = PAD.left + plotW;
  const rowsBottom = PAD.top + actions.length * ROW;
  const height = rowsBottom + PAD.bottom;
  const out: string[] = [];
  const fails = state.results.filter((r) => r.status === 'fail').length;
  const s = state.settings;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<text x="${left}" y="16" font-size="13">${escapeXml(`sweep on ${s.station} (${s.mode}): ${s.package.name} from ${s.from.key} — ${state.results.length} points, ${fails} failing`)}</text>`);
  bands.forEach((b, i) => {
    out.push(`<rect x="${b.x0.toFixed(1)}" y="${PAD.top - 4}" width="${b.w.toFixed(1)}" height="${actions.length * ROW + 8}" fill="${i % 2 === 0 ? '#eef2f8' : '#f8f8f8'}"/>`);
    out.push(`<text x="${(b.x0 + b.w / 2).toFixed(1)}" y="${PAD.top - 24}" text-anchor="middle" font-weight="bold">${escapeXml(b.name)}</text>`);
    out.push(`<text x="${(b.x0 + b.w / 2).toFixed(1)}" y="${PAD.top - 10}" text-anchor="middle" fill="#666">${escapeXml(`${Math.round(b.end - b.start)} ms`)}</text>`);
    out.push(`<line x1="${b.x0.toFixed(1)}" x2="${b.x0.toFixed(1)}" y1="${PAD.top - 4}" y2="${rowsBottom + 26}" stroke="#bbb"/>`);
  });
  const stretches: FailingStretch[] = tl ? failingStretches(tl, state.results, actions) : [];
  actions.forEach((action, i) => {
    const y = PAD.top + i * ROW;
    out.push(`<text x="${left - 6}" y="${y + ROW / 2 + 4}" text-anchor="end">${escapeXml(action)}</text>`);
    const pts = state.results.filter((p) => p.action === action).map((r) => ({ r, at: x(r.landed ?? r.at) })).sort((a, b) => a.at - b.at);
    pts.forEach(({ r, at }, k) => {
      // The stretch nearer to this point than to its neighbours: the strip is all colour where points are dense.
      const from = k === 0 ? Math.max(left, at - 6) : (pts[k - 1]!.at + at) / 2;
      const to = k === pts.length - 1 ? Math.min(right, at + 6) : (at + pts[k + 1]!.at) / 2;
      const title = `point ${r.id}: ${r.fault} → ${cellOf(r)}${r.landed === null ? ' (aimed here, never fired)' : ''}: ${r.why}${r.record ? `; record ${r.record}` : ''}`;
      const cell = `<g><title>${escapeXml(title)}</title><rect x="${from.toFixed(1)}" y="${y + 3}" width="${Math.max(1, to - from).toFixed(1)}" height="${ROW - 6}" fill="${colourOf(r)}" fill-opacity="${r.status === 'not-fired' ? 1 : 0.85}" stroke="${r.status === 'not-fired' ? '#999' : 'none'}"/><line x1="${at.toFixed(1)}" x2="${at.toFixed(1)}" y1="${y + 3}" y2="${y + ROW - 3}" stroke="#222" stroke-width="1"/></g>`;
      const href = r.status === 'fail' ? link(r) : undefined;
      out.push(href ? `<a xlink:href="${escapeXml(href)}" href="${escapeXml(href)}">${cell}</a>` : cell);
    });
    for (const st of stretches.filter((f) => f.action === action)) {
      for (const edge of [st.before, st.after]) {
        if (edge) out.push(`<line x1="${x(edge.landed).toFixed(1)}" x2="${x(edge.landed).toFixed(1)}" y1="${y}" y2="${y + ROW}" stroke="#c0392b" stroke-width="2" stroke-dasharray="3,2"><title>${escapeXml(st.text)}</title></line>`);
      }
    }
  });
  // The marks inside the chosen windows: where the triggers are, so a reader sees what the points aimed from.
  for (const m of tl?.marks ?? []) {
    if (!bands.some((b) => m.t >= b.start && m.t <= b.end)) continue;
    const mx = x(m.t).toFixed(1);
    out.push(`<line x1="${mx}" x2="${mx}" y1="${rowsBottom + 8}" y2="${rowsBottom + 18}" stroke="#555"><title>${escapeXml(`${m.trigger} at ${Math.round(m.t)} ms`)}</title></line>`);
  }
  out.push(`<text x="${left - 6}" y="${rowsBottom + 17}" text-anchor="end" fill="#555">triggers</text>`);
  const legend: [string, string][] = [
    ['upgraded', COLOURS.upgraded!],
    ['rolled-back', COLOURS['rolled-back']!],
    ['failed-intact', COLOURS['failed-intact']!],
    ['bricked', COLOURS.bricked!],
    ['inconsistent', COLOURS.inconsistent!],
    ['other failure, next upgrade failed', '#e67e22'],
    ['not fired', '#ffffff'],
    ['rig error', '#999999'],
  ];
  let lx = 20;
  for (const [name, colour] of legend) {
    out.push(`<rect x="${lx}" y="${rowsBottom + 36}" width="10" height="10" fill="${colour}" stroke="#999"/><text x="${lx + 14}" y="${rowsBottom + 45}">${escapeXml(name)}</text>`);
    lx += 26 + name.length * 6;
  }
  out.push(`<text x="${left}" y="${rowsBottom + 66}" fill="#666">${escapeXml('Calibrated run time; each window at least a tenth of the width. A tick is where a fault landed; red dashes: the passing')}</text>`);
  out.push(`<text x="${left}" y="${rowsBottom + 80}" fill="#666">${escapeXml('points around a failing stretch. Hover for the point; a failing point links to its run record (rig repro replays it).')}</text>`);
  out.push('</svg>');
  return out.join('\n');
}
