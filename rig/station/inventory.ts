// A host's stations and what each one is (identity.ts), with the last health check each passed or failed:
// what `rig inventory` prints, what the CI jobs upload next to their results, and what the report's
// per-station table is built from. Health results live in the host's state directory, so that the
// inventory of a Pi says how each station did the last time the nightly checked it, whichever checkout ran.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StationIdentity } from './identity.ts';

/** One health check of a station (suites/health.test.ts): each step, and the verdict. */
export interface HealthResult {
  station: string;
  host: string;
  /** ISO time the check ended. */
  at: string;
  ok: boolean;
  /** One line: "passed: AT, registration, probe examine, power cycle" or the first failed step and why. */
  summary: string;
  steps: { name: string; ok: boolean; ms: number; detail: string }[];
}

/** A station as an inventory lists it: its identity, or why it could not be read; its last health check. */
export interface InventoryEntry {
  station: string;
  kind: 'virtual' | 'hardware';
  host: string;
  identity?: StationIdentity;
  /** The error that kept the identity from being read (the station is in use, a port is gone …). */
  error?: { kind: string; message: string };
  /** A virtual station's sim options (rig/station/virtual.ts simSettings). */
  sim?: string[];
  health?: HealthResult;
}

export interface Inventory {
  host: string;
  /** ISO time. */
  generatedAt: string;
  rig: string;
  node: string;
  stations: InventoryEntry[];
}

/**
 * The name of this host in inventories and results. allure-vitest labels results with ALLURE_HOST_NAME, else
 * os.hostname(); the inventory says the same, so the report can match a station's results with its entry.
 */
export function hostName(): string {
  return process.env.ALLURE_HOST_NAME?.trim() || os.hostname();
}

/** Where a host keeps what outlives one run: $RIG_STATE_DIR, else $XDG_STATE_HOME/sota-rig, else ~/.local/state/sota-rig. */
export function stateDir(): string {
  const explicit = process.env.RIG_STATE_DIR?.trim();
  if (explicit) return path.resolve(explicit);
  const xdg = process.env.XDG_STATE_HOME?.trim();
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.local', 'state'), 'sota-rig');
}

function healthFile(station: string, dir: string): string {
  return path.join(dir, 'health', `${station.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

/** The station's last health check on this host, if one ran. */
export function readLastHealth(station: string, dir = stateDir()): HealthResult | undefined {
  try {
    return JSON.parse(readFileSync(healthFile(station, dir), 'utf8')) as HealthResult;
  } catch {
    return undefined;
  }
}

/** Records a health check as the station's last (replaced whole, so a reader never sees half a record). */
export function writeHealth(result: HealthResult, dir = stateDir()): string {
  const file = healthFile(result.station, dir);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}
