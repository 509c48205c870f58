// The Allure side of the suites (docs/architecture.md §2: rig/ never imports Allure). A Recorder whose steps are Allure
// steps and whose attachments are Allure attachments (long text lines wrapped for the report's code view);
// figures are collected and attached as one table; a failed test's reason label. What each station is goes
// into the report as its environment's table (scripts/report-lib/stations.ts), not into
// environment.properties, which Allure shows whatever environment is selected.
import path from 'node:path';
import * as allure from 'allure-js-commons';
import * as allureSync from 'allure-js-commons/sync';
import type { Recorder } from '../../rig/sota/index.ts';
import { REASON_LABEL, reasonCode } from '../../scripts/report-lib/triage.ts';

/** What labelFailureReason needs of vitest's task: its result as an afterEach hook sees it. */
interface FinishedTask {
  result?: { state?: string; errors?: readonly { name?: string; message?: string; station?: unknown }[] } | undefined;
}

/**
 * Gives a failed test its `reason` label (scripts/report-lib/triage.ts), which the report's categories group
 * by. From an afterEach hook: allure-vitest shows the first attempt's error as the status message, so the
 * reason is that error's too, whichever attempt this is.
 */
export async function labelFailureReason(task: FinishedTask, station: string): Promise<void> {
  const first = task.result?.state === 'fail' ? task.result.errors?.[0] : undefined;
  if (!first) return;
  await allure.label(REASON_LABEL, reasonCode({ name: first.name, message: first.message, station: typeof first.station === 'string' ? first.station : station }));
}

/**
 * Characters of a text attachment's line that the report shows without scrolling: its code view (about 840 px
 * of 13 px monospace at the default width) wraps at spaces, and clips a longer run without one (10701's MD5,
 * CRC and SHA-256 are one comma-separated word of 130 characters).
 */
export const ATTACHMENT_WIDTH = 96;

/**
 * Breaks every line longer than `width` into continuation lines, preferably after a comma or a space, each
 * indented under the line's text and marked "↳ ", so that no part of a transcript line is out of sight in the
 * report. The run record (JSON) keeps every line whole.
 */
export function wrapLongLines(text: string, width = ATTACHMENT_WIDTH): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= width) return line;
      // Continuations start under the text: after a transcript line's "  1.234 [RX]" stamp, else the indent.
      const stamp = /^\s*\d+\.\d+ \[(?:TX|RX|--)\]\s?/.exec(line)?.[0] ?? /^\s*/.exec(line)![0];
      const indent = `${' '.repeat(Math.min(stamp.length, width / 2))}↳ `;
      const out: string[] = [];
      let rest = line;
      let room = width;
      while (rest.length > room) {
        const window = rest.slice(0, room);
        const at = Math.max(window.lastIndexOf(','), window.lastIndexOf(' '));
        const cut = at > room / 2 ? at + 1 : room;
        out.push(rest.slice(0, cut).trimEnd());
        rest = rest.slice(cut).trimStart();
        room = width - indent.length;
      }
      out.push(rest);
      return out.map((l, i) => (i === 0 ? l : `${indent}${l}`)).join('\n');
    })
    .join('\n');
}

export class AllureRecorder implements Recorder {
  readonly figures: { name: string; value: number; unit: string }[] = [];

  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    return allure.step(name, () => body());
  }

  attach(name: string, content: string | Uint8Array, contentType: string): void {
    const body = typeof content === 'string' && contentType === 'text/plain' ? wrapLongLines(content) : content;
    allureSync.attachment(name, typeof body === 'string' ? body : Buffer.from(body), contentType);
  }

  measure(name: string, value: number, unit: string): void {
    this.figures.push({ name, value, unit });
  }

  /** Attaches the figures measured since the last call as one table, and forgets them. */
  flushFigures(title = 'figures'): void {
    if (this.figures.length === 0) return;
    const width = Math.max(...this.figures.map((f) => f.name.length));
    const text = this.figures.map((f) => `${f.name.padEnd(width)}  ${f.value} ${f.unit}`).join('\n');
    this.figures.length = 0;
    this.attach(title, `${text}\n`, 'text/plain');
  }
}

/** Where allure-vitest writes: its `resultsDir` in vitest.config.ts (RIG_ALLURE_RESULTS, as nightly sets it). */
export function allureResultsDir(root: string): string {
  return path.resolve(root, process.env.RIG_ALLURE_RESULTS ?? path.join('reports', 'allure-results'));
}
