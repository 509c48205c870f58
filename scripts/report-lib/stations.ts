// The report's table of each station: what the module, probe and target are (read live, rig/station/
// identity.ts), the virtual station's sim options, the rig and Node versions, and the last health check.
// Allure 3 shows a report's `variables` per environment (the overview's "Variables", which follows the
// Environment selector), so each station's table is its environment's variables: a reader filtering on one
// station sees that station's table and no other's.
//
// Two sources, in the same shape (rig/station/inventory.ts InventoryEntry):
//   - the suites write one record per station (per suite file for a virtual station, whose sims differ)
//     under <allure-results>/stations/ (Allure reads only the files at the top of a results directory);
//   - `rig inventory --json` files, which the farm's merge job collects from every host.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Inventory, InventoryEntry } from '../../rig/station/inventory.ts';
import type { StationEnvironment } from './environments.ts';

/** The subdirectory of an allure-results directory where the suites leave their station records. */
export const STATION_RECORDS_DIR = 'stations';

export interface StationRecord extends InventoryEntry {
  /** A virtual station's suite file ("virtual.full-package"): each file runs its own sim. */
  scope?: string;
  rig?: string;
  node?: string;
}

/** Writes a station record into `resultsDir`/stations/ (replaced whole: parallel suite files write there). */
export function writeStationRecord(resultsDir: string, record: StationRecord): string {
  const dir = path.join(resultsDir, STATION_RECORDS_DIR);
  mkdirSync(dir, { recursive: true });
  const name = `${record.host}.${record.scope ?? record.station}`.replace(/[^A-Za-z0-9_.@-]/g, '_');
  const file = path.join(dir, `${name}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Every station record the suites left in these results directories (missing ones are skipped). */
export async function readStationRecords(resultsDirs: readonly string[]): Promise<StationRecord[]> {
  const out: StationRecord[] = [];
  for (const results of resultsDirs) {
    const dir = path.join(results, STATION_RECORDS_DIR);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
    } catch {
      continue;
    }
    for (const n of names) out.push((await readJson(path.join(dir, n))) as StationRecord);
  }
  return out;
}

/** The stations of `rig inventory --json` files, each with its host's rig and Node versions. */
export async function readInventories(files: readonly string[]): Promise<StationRecord[]> {
  const out: StationRecord[] = [];
  for (const file of files) {
    const inv = (await readJson(file)) as Partial<Inventory>;
    if (!Array.isArray(inv.stations) || typeof inv.host !== 'string') {
      throw new Error(`${file}: not a rig inventory (expected {"host": …, "stations": [...]} as rig inventory --json writes it)`);
    }
    for (const s of inv.stations) out.push({ ...s, host: s.host ?? inv.host, ...(inv.rig ? { rig: inv.rig } : {}), ...(inv.node ? { node: inv.node } : {}) });
  }
  return out;
}

/** "--baud 115200 --flash-image /tmp/x/STM32_1_0_0.bin" → ["baud=115200", "flash-image=STM32_1_0_0.bin"]. */
export function simPairs(args: readonly string[]): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) continue;
    const next = args[i + 1];
    if (next === undefined || next.startsWith('--')) {
      pairs.push(a.slice(2));
      continue;
    }
    pairs.push(`${a.slice(2)}=${next.includes('/') ? path.basename(next) : next}`);
    i++;
  }
  return pairs;
}

function distinct(values: readonly (string | undefined)[]): string | undefined {
  const seen = [...new Set(values.filter((v): v is string => v !== undefined && v !== ''))];
  return seen.length === 0 ? undefined : seen.join(' / ');
}

/** The suite file part of a scope: "virtual.full-package" → "full-package". */
function scopeFile(r: StationRecord): string {
  return r.scope && r.scope.startsWith(`${r.station}.`) ? r.scope.slice(r.station.length + 1) : (r.scope ?? r.station);
}

/**
 * One station's table from its records (an inventory entry, the suites' records of each file): short keys,
 * short values, identity first. Values the records disagree on are joined with " / "; a virtual station's
 * sim options common to all its files are one row, and each file's own options a row of their own.
 */
export function stationRows(records: readonly StationRecord[]): Record<string, string> {
  const rows: Record<string, string> = {};
  const put = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') rows[key] = value;
  };
  const ids = records.map((r) => r.identity).filter((i) => i !== undefined);
  put('station', distinct(records.map((r) => r.station)));
  put('host', distinct(records.map((r) => r.host)));
  put('module', distinct(ids.map((i) => i.module.model)));
  put('firmware', distinct(ids.map((i) => i.module.firmware)));
  put('IMEI', distinct(ids.map((i) => i.module.imei)));
  put('QuecThing', distinct(ids.map((i) => i.module.quecthing)));
  put('probe', distinct(ids.map((i) => [i.probe.adapter, i.probe.serial].filter(Boolean).join(' '))));
  put('target', distinct(ids.map((i) => [i.target.family, i.target.idcode ? `IDCODE ${i.target.idcode}` : undefined].filter(Boolean).join(', '))));
  put('OpenOCD', distinct(ids.map((i) => i.probe.openocd.replace(/^Open On-Chip Debugger\s+/i, ''))));
  put('baud', distinct(ids.map((i) => String(i.module.baudRate))));
  const health = records.map((r) => r.health).filter((h) => h !== undefined).sort((a, b) => a.at.localeCompare(b.at)).at(-1);
  if (health) put('last health', `${health.ok ? 'passed' : 'FAILED'} ${health.at.slice(0, 16).replace('T', ' ')}`);
  const errors = records.map((r) => r.error?.message.split('\n')[0]);
  if (ids.length === 0) put('not read', distinct(errors));
  put('sota-rig', distinct(records.map((r) => (r.rig ? `${r.rig}${r.node ? ` (node ${r.node})` : ''}` : undefined))));
  // The sims the night's tests ran with (records of suite files), not how `rig inventory` would start one.
  const ran = records.filter((r) => r.sim !== undefined && r.scope !== undefined);
  const sims = ran.length > 0 ? ran : records.filter((r) => r.sim !== undefined);
  if (sims.length > 0) {
    const pairs = sims.map((r) => simPairs(r.sim!));
    const common = pairs[0]!.filter((p) => pairs.every((ps) => ps.includes(p)));
    put('sim', common.join(' '));
    for (const [i, r] of sims.entries()) {
      const own = pairs[i]!.filter((p) => !common.includes(p));
      if (own.length > 0) put(`sim: ${scopeFile(r)}`, own.join(' '));
    }
  }
  return rows;
}

/** Whether a record belongs to an environment: its station, and its host where the environment is one host's. */
function recordIn(env: StationEnvironment, r: StationRecord): boolean {
  return r.station === env.station && (env.host === undefined || env.host === r.host);
}

/**
 * The `variables` of each station environment (by environment id), and the report's own: which stations
 * and hosts there are. A station with no record gets no table.
 */
export function reportVariables(envs: readonly StationEnvironment[], records: readonly StationRecord[]): { report: Record<string, string>; byEnvironment: Map<string, Record<string, string>> } {
  const byEnvironment = new Map<string, Record<string, string>>();
  for (const env of envs) {
    if (env.station === undefined) continue;
    const mine = records.filter((r) => recordIn(env, r));
    if (mine.length > 0) byEnvironment.set(env.id, stationRows(mine));
  }
  const stations = envs.filter((e) => e.station !== undefined).map((e) => e.name);
  const hosts = [...new Set(records.map((r) => r.host))].sort();
  const report: Record<string, string> = {};
  // The same keys as a station's own rows: a station's view replaces them with its own values.
  if (stations.length > 0) report.station = `${stations.length}: ${stations.join(', ')} (Environment shows one)`;
  if (hosts.length > 0) report.host = hosts.join(', ');
  return { report, byEnvironment };
}
