// Finding, loading and validating the rig's config, and reading secrets. Where the config comes from, in
// order: the `path` option (the CLI's --config), $RIG_CONFIG, then ./rig.config.ts, .mjs, .js, .json in the
// working directory; with none of them the rig knows only the built-in virtual station. A .ts config is
// loaded through tsx's ESM API, so a bench needs no build step for it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as util from 'node:util';
import { ConfigError } from '../errors.ts';
import { parseOrThrow } from './issues.ts';
import { rigConfigSchema, withImpliedKinds, type RigConfig, type RigConfigInput, type SecretRef } from './schema.ts';

export const CONFIG_FILE_NAMES = ['rig.config.ts', 'rig.config.mjs', 'rig.config.js', 'rig.config.json'] as const;

/** A validated config and where it came from. */
export interface LoadedConfig extends RigConfig {
  /** The file it was read from; undefined when no config exists (only the virtual station). */
  readonly source: string | undefined;
  /** Variables from an untracked `.env`, for secrets; the process environment wins over them. */
  readonly dotenv: Readonly<Record<string, string>>;
}

/** Typed helper for rig.config.ts: `export default defineConfig({ stations: { … } })`. */
export function defineConfig(config: RigConfigInput): RigConfigInput {
  return config;
}

export interface LoadConfigOptions {
  /** An explicit config file (the CLI's --config); relative to `cwd`. */
  path?: string;
  /** Where to look for rig.config.* and .env; default process.cwd(). */
  cwd?: string;
  /** Environment for RIG_CONFIG; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Validates an in-memory config (tests, tools); the built-in virtual station is added. */
export function parseConfig(input: unknown, source = '(inline config)', dotenv: Readonly<Record<string, string>> = {}): LoadedConfig {
  const parsed = parseOrThrow(rigConfigSchema, input, source, withImpliedKinds);
  return { ...parsed, source: undefined, dotenv };
}

function findConfig(opts: LoadConfigOptions): string | undefined {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? (env.RIG_CONFIG ? env.RIG_CONFIG : undefined);
  if (explicit !== undefined) {
    const file = path.resolve(cwd, explicit);
    if (!existsSync(file)) {
      throw new ConfigError(`config file ${file} does not exist`, {
        expected: `a readable rig.config.ts/.mjs/.js/.json (from ${opts.path !== undefined ? '--config' : 'RIG_CONFIG'})`,
        seen: 'no such file',
      });
    }
    return file;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const file = path.join(cwd, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

async function importConfig(file: string): Promise<unknown> {
  const ext = path.extname(file);
  try {
    if (ext === '.json') return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    let mod: Record<string, unknown>;
    if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
    let value = mod.default ?? mod.config;
    // A .ts file outside an ESM package is compiled as CommonJS: its default export arrives one level down.
    if (value !== null && typeof value === 'object' && !('stations' in value) && 'default' in value) value = (value as { default: unknown }).default;
    if (value === undefined) {
      throw new ConfigError(`config file ${file} exports no config`, { expected: '`export default defineConfig({ stations: { … } })`', seen: `exports ${Object.keys(mod).join(', ') || 'nothing'}` });
    }
    return value;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const [msg, ...rest] = (err instanceof Error ? err.message : String(err)).split('\n');
    const where = loadErrorDetail(rest);
    throw new ConfigError(`could not load config file ${file}: ${msg}`, {
      expected: ext === '.json' ? 'valid JSON' : 'a module that loads without errors',
      ...(where ? { seen: where } : {}),
      cause: err,
    });
  }
}

/**
 * Where and why a config failed to load: esbuild's "Transform failed with 1 error:" keeps the file:line:col
 * and the reason on the lines after the first.
 */
function loadErrorDetail(rest: readonly string[]): string | undefined {
  const lines = rest.map((l) => l.trim()).filter(Boolean);
  return lines.length > 0 ? lines.slice(0, 8).join('; ') : undefined;
}

/** util.parseEnv where Node has it (20.12+); the same basic KEY=value syntax otherwise. */
function parseDotenv(text: string): Record<string, string | undefined> {
  const native = (util as { parseEnv?: (content: string) => Record<string, string> }).parseEnv;
  return native ? native(text) : parseDotenvBasic(text);
}

/** KEY=value lines, `export` prefixes, quotes, comments: the subset of .env that util.parseEnv reads alike. */
export function parseDotenvBasic(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m) continue;
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'" || q === '`') && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1);
    else value = value.replace(/\s*#.*$/, '');
    out[m[1]!] = q === '"' ? value.replace(/\\n/g, '\n') : value;
  }
  return out;
}

function readDotenv(dirs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dir of dirs) {
    const file = path.join(dir, '.env');
    if (!existsSync(file)) continue;
    try {
      const vars = parseDotenv(readFileSync(file, 'utf8'));
      for (const [k, v] of Object.entries(vars)) if (v !== undefined && !(k in out)) out[k] = v;
    } catch (err) {
      // The content may be secret: name the file only.
      throw new ConfigError(`could not read ${file}`, { expected: 'KEY=value lines', seen: (err as Error).message.split('\n')[0], cause: undefined });
    }
  }
  return out;
}

/** Finds, loads and validates the config; throws one ConfigError naming every problem. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const file = findConfig(opts);
  const dirs = file ? [...new Set([cwd, path.dirname(file)])] : [cwd];
  const dotenv = readDotenv(dirs);
  if (!file) return parseConfig({}, '(no config file: only the virtual station)', dotenv);
  const input = await importConfig(file);
  const parsed = parseOrThrow(rigConfigSchema, input, path.relative(cwd, file) || file, withImpliedKinds);
  // Paths inside the config are relative to the file, not to wherever the rig was started.
  for (const station of Object.values(parsed.stations)) {
    if (station.kind === 'virtual' && station.flashImage !== undefined) station.flashImage = path.resolve(path.dirname(file), station.flashImage);
  }
  return { ...parsed, source: file, dotenv };
}

/**
 * The value of a secret, from the process environment or the `.env` next to the config. A missing variable
 * is a ConfigError that names the variable and the key that wants it, never a value.
 */
export function resolveSecret(ref: SecretRef, where: { station: string; key: string; dotenv?: Readonly<Record<string, string>>; env?: NodeJS.ProcessEnv }): string {
  const env = where.env ?? process.env;
  const value = env[ref.env] ?? where.dotenv?.[ref.env];
  if (value === undefined || value === '') {
    throw new ConfigError(`secret ${ref.env} is not set`, {
      station: where.station,
      expected: `environment variable ${ref.env} (or a line ${ref.env}=… in an untracked .env) for ${where.key}`,
      seen: value === '' ? `${ref.env} is empty` : `${ref.env} is not in the environment or .env`,
    });
  }
  return value;
}
