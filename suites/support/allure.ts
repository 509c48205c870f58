// The Allure side of the suites (DESIGN.md §2: rig/ never imports Allure). A Recorder whose steps are Allure
// steps and whose attachments are Allure attachments; figures are collected and attached as one table; and
// the Allure environment info (sota-rig, Node, OpenOCD, module revision, station) written next to the
// results as environment.properties, merged with what other stations of the same run wrote.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as allure from 'allure-js-commons';
import * as allureSync from 'allure-js-commons/sync';
import type { Recorder } from '../../rig/sota/index.ts';

export class AllureRecorder implements Recorder {
  readonly figures: { name: string; value: number; unit: string }[] = [];

  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    return allure.step(name, () => body());
  }

  attach(name: string, content: string | Uint8Array, contentType: string): void {
    allureSync.attachment(name, typeof content === 'string' ? content : Buffer.from(content), contentType);
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

/** Where allure-vitest writes: its `resultsDir` in vitest.config.ts. */
export function allureResultsDir(root: string): string {
  return path.join(root, 'reports', 'allure-results');
}

function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim().replace(/\\\\/g, '\\'));
  }
  return out;
}

const escapeValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\r?\n/g, ' ');

interface EnvironmentPart {
  common: Record<string, string>;
  station: string;
  values: Record<string, string>;
}

function merge(dir: string, parts: readonly EnvironmentPart[]): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'environment.properties');
  const props = existsSync(file) ? parseProperties(readFileSync(file, 'utf8')) : new Map<string, string>();
  for (const { common, station, values } of parts) {
    for (const [k, v] of Object.entries(common)) props.set(k, v);
    const stations = new Set((props.get('stations') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0));
    stations.add(station);
    props.set('stations', [...stations].sort().join(', '));
    for (const [k, v] of Object.entries(values)) props.set(`${station}.${k}`, v);
  }
  const text = [...props].map(([k, v]) => `${k.replace(/[^A-Za-z0-9_.-]/g, '_')}=${escapeValue(v)}`).join('\n');
  // Replaced whole: parallel test files may read it while another writes.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${text}\n`);
  renameSync(tmp, file);
}

/**
 * Adds `values` to environment.properties in `dir`. Keys that are the same for every station (sota-rig,
 * Node) are plain; a station's own keys carry its name ("virtual.module-revision"; a virtual station's carry
 * its suite file too, see stationScope), so a run over several stations into one results directory keeps
 * each station's facts. Keys are kept to [A-Za-z0-9_.-], which a Java properties reader takes as they are.
 *
 * Parallel suite files write the same file: one may read it just before another replaces it and drop what
 * that one wrote. With `partsDir` (the run's directory) each writer also leaves its own part there, and
 * mergeEnvironmentParts (the run's global teardown, once every file is done) puts every part back.
 */
export function writeEnvironmentInfo(dir: string, common: Record<string, string>, station: string, values: Record<string, string>, partsDir?: string): void {
  const part: EnvironmentPart = { common, station, values };
  if (partsDir !== undefined) {
    mkdirSync(partsDir, { recursive: true });
    writeFileSync(path.join(partsDir, `${station.replace(/[^A-Za-z0-9_.-]/g, '_')}.environment.json`), `${JSON.stringify(part)}\n`);
  }
  merge(dir, [part]);
}

/** Every part written under `partsDir` into `dir`'s environment.properties, in one write. */
export function mergeEnvironmentParts(partsDir: string, dir: string): void {
  const names = existsSync(partsDir) ? readdirSync(partsDir).filter((n) => n.endsWith('.environment.json')).sort() : [];
  if (names.length === 0) return;
  merge(dir, names.map((n) => JSON.parse(readFileSync(path.join(partsDir, n), 'utf8')) as EnvironmentPart));
}
