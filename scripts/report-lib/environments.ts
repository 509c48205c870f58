// One Allure environment per station, worked out from the results themselves at report time, so that a
// station nobody listed in advance still gets its own environment. Allure 3 puts each test result into the
// first environment whose `matcher` accepts its labels, and tells a retry from a second run by
// (test case, parameters, environment) — so two stations that ran the same test must land in two
// environments, or the second run is shown as a retry of the first (LIBRARIES.md §3.4).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** The label the suites put on every result: the station it ran on ("bench-2", "virtual"). */
export const STATION_LABEL = 'station';
/** Added by allure-vitest to every result: `os.hostname()` of the machine (the Pi) that ran it. */
export const HOST_LABEL = 'host';

interface Label { name: string; value?: string }

/** Which station and host one result came from, as its labels say. */
export interface Origin { station: string | undefined; host: string | undefined }

/** An environment to declare in allurerc: Allure's id and display name, and which results belong to it. */
export interface StationEnvironment {
  id: string;
  name: string;
  station: string | undefined;
  /** Set when the environment is one host's share of a station name that several hosts used. */
  host: string | undefined;
}

// Allure 3.18's rules (core-api validateEnvironmentId / validateEnvironmentName).
const MAX_LENGTH = 64;
const DEFAULT_ENVIRONMENT = 'default';

function labelValue(labels: readonly Label[], name: string): string | undefined {
  const value = labels.find((l) => l.name === name)?.value?.trim();
  return value ? value : undefined;
}

export function originOf(labels: readonly Label[]): Origin {
  return { station: labelValue(labels, STATION_LABEL), host: labelValue(labels, HOST_LABEL) };
}

/** Reads the origin of every `*-result.json` in the given allure-results directories (missing ones are skipped). */
export async function scanOrigins(resultsDirs: readonly string[]): Promise<Origin[]> {
  const origins: Origin[] = [];
  for (const dir of resultsDirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const name of names.filter((n) => n.endsWith('-result.json')).sort()) {
      const file = path.join(dir, name);
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(file, 'utf8'));
      } catch (e) {
        throw new Error(`${file}: not a readable Allure result (${(e as Error).message})`, { cause: e });
      }
      const labels = (parsed as { labels?: unknown }).labels;
      origins.push(originOf(Array.isArray(labels) ? (labels as Label[]) : []));
    }
  }
  return origins;
}

function displayName(raw: string): string {
  // A name must not look like a path and must not hold control characters.
  // eslint-disable-next-line no-control-regex
  const cleaned = raw.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').replace(/[/\\]/g, '∕').trim();
  const name = cleaned === '.' || cleaned === '..' ? `station ${cleaned}` : cleaned;
  return name.slice(0, MAX_LENGTH);
}

function idFrom(raw: string): string {
  const id = raw.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_LENGTH);
  return id || 'station';
}

/**
 * The environments for a set of results, in matcher order. A station name seen on one host is one
 * environment named after the station. A station name seen on several hosts (every Pi has a "virtual"
 * station) is split per host, "virtual@pi-3". Results without a station label stay in Allure's default
 * environment, unless they came from several hosts: then each host gets one ("no station@pi-3").
 */
export function planEnvironments(origins: readonly Origin[]): StationEnvironment[] {
  const hostsByStation = new Map<string | undefined, Set<string | undefined>>();
  for (const { station, host } of origins) {
    const hosts = hostsByStation.get(station) ?? new Set<string | undefined>();
    hosts.add(host);
    hostsByStation.set(station, hosts);
  }
  const wanted: Array<{ name: string; station: string | undefined; host: string | undefined }> = [];
  const stations = [...hostsByStation.keys()].filter((s): s is string => s !== undefined).sort();
  for (const station of stations) {
    const hosts = [...(hostsByStation.get(station) ?? [])];
    if (hosts.length === 1) {
      wanted.push({ name: station, station, host: undefined });
    } else {
      for (const host of hosts.sort(compareOptional)) {
        wanted.push({ name: `${station}@${host ?? 'unknown host'}`, station, host: host ?? '' });
      }
    }
  }
  const unlabelledHosts = [...(hostsByStation.get(undefined) ?? [])];
  if (unlabelledHosts.length > 1) {
    for (const host of unlabelledHosts.sort(compareOptional)) {
      wanted.push({ name: `no station@${host ?? 'unknown host'}`, station: undefined, host: host ?? '' });
    }
  }

  const ids = new Set<string>([DEFAULT_ENVIRONMENT]);
  const names = new Set<string>([DEFAULT_ENVIRONMENT]);
  return wanted.map(({ name, station, host }) => {
    const id = unique(idFrom(name), ids);
    const shown = unique(displayName(name), names);
    return { id, name: shown, station, host };
  });
}

function compareOptional(a: string | undefined, b: string | undefined): number {
  return (a ?? '').localeCompare(b ?? '');
}

function unique(candidate: string, taken: Set<string>): string {
  let value = candidate;
  for (let n = 2; taken.has(value); n++) {
    const suffix = `-${n}`;
    value = candidate.slice(0, MAX_LENGTH - suffix.length) + suffix;
  }
  taken.add(value);
  return value;
}

/** Whether a result with these labels belongs to the environment (the allurerc matcher). */
export function belongsTo(env: StationEnvironment, labels: readonly Label[]): boolean {
  const origin = originOf(labels);
  if (origin.station !== env.station) return false;
  // host '' stands for "no host label" in a per-host split.
  return env.host === undefined || (origin.host ?? '') === env.host;
}

type Matcher = (payload: { labels: Label[] }) => boolean;

/** The `environments` entry of an Allure 3 config, with each environment's variables (its station's table). */
export function environmentsConfig(
  envs: readonly StationEnvironment[],
  variables: ReadonlyMap<string, Record<string, string>> = new Map(),
): Record<string, { name: string; matcher: Matcher; variables?: Record<string, string> }> {
  const config: Record<string, { name: string; matcher: Matcher; variables?: Record<string, string> }> = {};
  for (const env of envs) {
    const own = variables.get(env.id);
    config[env.id] = { name: env.name, matcher: ({ labels }) => belongsTo(env, labels), ...(own ? { variables: own } : {}) };
  }
  return config;
}
