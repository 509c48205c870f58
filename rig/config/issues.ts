// Turns zod's issues into sentences an engineer at the bench can act on: the exact key path
// (`stations.bench-2.probe.interface.serial`), what was expected there, and what the file holds instead.
// Values under a secret's key are never shown.
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';

export interface ConfigProblem {
  /** Dotted key path, array indices in brackets: `stations.bench-2.plans.plans[0].package`. */
  path: string;
  expected: string;
  found: string;
}

/** A config that does not validate: one error listing every problem. The CLI maps it to exit code 2. */
export class ConfigValidationError extends ConfigError {
  readonly problems: readonly ConfigProblem[];
  readonly source: string;
  constructor(source: string, problems: readonly ConfigProblem[], station?: string) {
    const lines = problems.map((p) => `  ${p.path || '(top level)'}: expected ${p.expected}, found ${p.found}`);
    super(`invalid config ${source}: ${problems.length === 1 ? '1 problem' : `${problems.length} problems`}\n${lines.join('\n')}`, { station });
    this.problems = problems;
    this.source = source;
  }
}

const SECRET_KEY = /secret|password|token/i;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): { present: boolean; value: unknown } {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as object))) return { present: false, value: undefined };
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return { present: true, value: cur };
}

function describeValue(v: unknown, secret: boolean): string {
  if (v === undefined) return 'nothing (the key is missing)';
  if (secret) return typeof v === 'string' ? 'a string (not shown: secrets come from the environment)' : `a value of type ${typeof v} (not shown)`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list (${truncate(JSON.stringify(v))})`;
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length === 0 ? 'an empty object' : `an object with keys ${keys.join(', ')}`;
  }
  if (typeof v === 'function') return 'a function';
  return truncate(JSON.stringify(v) ?? String(v));
}

function article(noun: string): string {
  return /^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}

function truncate(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The keys an object schema accepts at `path` in `input` (best effort; undefined when it cannot tell). */
function knownKeysAt(schema: z.ZodType, input: unknown, path: readonly PropertyKey[]): string[] | undefined {
  let s: z.ZodType | undefined = schema;
  let value: unknown = input;
  let i = 0;
  for (let guard = 0; s && guard < 200; guard++) {
    const def = defOf(s);
    switch (def.type) {
      case 'default':
      case 'optional':
      case 'nullable':
      case 'prefault':
      case 'readonly':
        s = def.innerType;
        continue;
      case 'pipe':
        s = defOf(def.in!).type === 'transform' ? def.out : def.in;
        continue;
      case 'union': {
        const options = def.options ?? [];
        if (def.discriminator && value !== null && typeof value === 'object') {
          const tag = (value as Record<string, unknown>)[def.discriminator];
          // An entry without its tag was given the first option's (hardware stations leave `kind` out).
          s =
            options.find((o) => {
              const shape = defOf(o).shape;
              const lit = shape?.[def.discriminator!];
              return lit !== undefined && (lit as unknown as { _zod: { def: { values?: unknown[] } } })._zod.def.values?.includes(tag);
            }) ?? (tag === undefined ? options[0] : undefined);
        } else {
          s = options.find((o) => defOf(o).type === 'object');
        }
        continue;
      }
      default:
        break;
    }
    if (i === path.length) return def.type === 'object' ? Object.keys(def.shape ?? {}) : undefined;
    const key = path[i++]!;
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    if (def.type === 'object') s = def.shape?.[String(key)];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return undefined;
  }
  return undefined;
}

type Issue = z.core.$ZodIssue;

function expectedOf(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'int' ? 'an integer' : article(issue.expected);
    case 'invalid_value':
      return issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union': {
      const u = issue as Issue & { discriminator?: string; options?: unknown[] };
      if (u.options) return `one of ${u.options.map((v) => JSON.stringify(v)).join(', ')}`;
      if (issue.message !== 'Invalid input') return issue.message;
      const alternatives = issue.errors.map((branch) => branch.map((b) => `${formatPath(b.path) || 'value'}: ${expectedOf(b)}`).join(' and '));
      return alternatives.length > 0 ? `either ${alternatives.join(' | or ')}` : issue.message;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = Number(small ? issue.minimum : issue.maximum);
      const op = small ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<';
      if (issue.origin === 'string') return `${small ? 'at least' : 'at most'} ${limit} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `${small ? 'at least' : 'at most'} ${limit} items`;
      return `a number ${op} ${limit}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' ? issue.message : `a valid ${issue.format}`;
    case 'invalid_key':
      return issue.issues.map((i) => expectedOf(i)).join(' and ');
    case 'not_multiple_of':
      return `a multiple of ${String(issue.divisor)}`;
    case 'custom':
    default:
      return issue.message;
  }
}

/** One problem per issue; unknown keys name the keys the schema knows there. */
export function describeIssues(schema: z.ZodType, input: unknown, issues: readonly Issue[], prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const full = [...prefix, ...issue.path];
    const secret = full.some((k) => typeof k === 'string' && SECRET_KEY.test(k));
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, input, issue.path);
      for (const key of issue.keys) {
        problems.push({
          path: formatPath([...full, key]),
          expected: known ? `one of the keys ${known.join(', ')}` : 'only known keys',
          found: `the unknown key "${key}"`,
        });
      }
      continue;
    }
    if (issue.code === 'invalid_type' && issue.expected === 'record' && full.length === 0) {
      problems.push({ path: '', expected: 'an object { stations: { … } }', found: describeValue(input, false) });
      continue;
    }
    if (issue.code === 'invalid_key') {
      problems.push({ path: formatPath(full), expected: `a key that is ${expectedOf(issue)}`, found: `the key ${JSON.stringify(String(full.at(-1)))}` });
      continue;
    }
    const { value } = valueAt(input, issue.path);
    problems.push({ path: formatPath(full), expected: expectedOf(issue), found: describeValue(value, secret) });
  }
  return problems;
}

/** Parses `input` with `schema` or throws one ConfigValidationError listing every problem. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, source: string, view: (input: unknown) => unknown = (i) => i): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  // Issue paths refer to the input as the schema's preprocessing left it.
  const problems = describeIssues(schema, view(input), r.error.issues);
  const stations = new Set(r.error.issues.map((i) => (i.path[0] === 'stations' && typeof i.path[1] === 'string' ? i.path[1] : '')));
  const only = stations.size === 1 ? [...stations][0] : '';
  throw new ConfigValidationError(source, problems, only || undefined);
}
