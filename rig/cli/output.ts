// Terminal output of the rig command: colours (off with NO_COLOR or when the stream is not a terminal),
// tables, typed errors as one block of text, and the exit code each kind of error maps to.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isRigError, RigError } from '../errors.ts';
import { ExitCode } from './main.ts';
import { didYouMean } from './suggest.ts';

/** A command line the command cannot make sense of: exit code 64. */
export class UsageError extends RigError {
  readonly kind = 'usage' as const;
}

/** NO_COLOR (https://no-color.org): present and not empty disables colour; so does a stream that is no terminal. */
export function colorEnabled(stream: NodeJS.WriteStream): boolean {
  const no = process.env.NO_COLOR;
  if (no !== undefined && no !== '') return false;
  return stream.isTTY === true;
}

const sgr = (open: number, close: number) => (on: boolean, s: string) => (on ? `\x1b[${open}m${s}\x1b[${close}m` : s);
const codes = { green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39), dim: sgr(2, 22), bold: sgr(1, 22), cyan: sgr(36, 39) };

export interface Paint {
  readonly on: boolean;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
  cyan(s: string): string;
}

export function paint(stream: NodeJS.WriteStream): Paint {
  const on = colorEnabled(stream);
  return {
    on,
    green: (s) => codes.green(on, s),
    red: (s) => codes.red(on, s),
    yellow: (s) => codes.yellow(on, s),
    dim: (s) => codes.dim(on, s),
    bold: (s) => codes.bold(on, s),
    cyan: (s) => codes.cyan(on, s),
  };
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string): number => s.replace(ANSI, '').length;

/** A plain-text table: columns padded to their widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], p?: Paint): string {
  const widths = headers.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  const head = line(headers);
  return [p ? p.bold(head) : head, ...rows.map(line)].join('\n');
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(err: unknown): number {
  if (isRigError(err)) {
    switch (err.kind) {
      case 'config':
        return ExitCode.configError;
      case 'usage':
        return ExitCode.usage;
      case 'infrastructure':
        return ExitCode.infrastructure;
      case 'protocol':
      case 'firmware':
        return ExitCode.failure;
    }
  }
  return ExitCode.software;
}

/** Prints an error that ended a command (once, to stderr, or as JSON on stdout) and returns its exit code. */
export function reportError(err: unknown, opts: { json?: boolean } = {}): number {
  const code = exitCodeFor(err);
  if (opts.json) {
    const body = isRigError(err) ? err.toJSON() : { name: (err as Error)?.name ?? 'Error', kind: 'internal', message: err instanceof Error ? err.message : String(err) };
    process.stdout.write(`${JSON.stringify({ ok: false, exitCode: code, error: body }, null, 2)}\n`);
    return code;
  }
  const p = paint(process.stderr);
  if (isRigError(err)) {
    const label = err.kind === 'config' ? 'config error' : err.kind === 'usage' ? 'usage error' : `${err.kind} error`;
    process.stderr.write(`${p.red(`rig: ${label}:`)} ${err.message}\n`);
    if (err.kind === 'usage') process.stderr.write(p.dim('(rig <command> --help shows the options)\n'));
  } else {
    // A bug: the stack is what the maintainer needs.
    process.stderr.write(`${p.red('rig: internal error:')} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  return code;
}

/** --config, --json and --attach (a running virtual station, see rig sim), which every station command takes. */
export const COMMON_OPTIONS = { config: { type: 'string' }, json: { type: 'boolean' }, attach: { type: 'string' } } as const;

/**
 * node:util parseArgs (strict, positionals allowed), with unknown options and missing values as a UsageError;
 * an unknown option names the nearest one the command has.
 */
export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    if (unknown !== undefined) {
      const known = [...Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]), '--help', '-h'];
      throw new UsageError(`unknown option '${unknown}'${didYouMean(unknown, known)}`, { expected: `one of ${known.filter((k) => k.startsWith('--')).join(', ')}`, seen: unknown });
    }
    throw new UsageError(message, { expected: 'the options in --help' });
  }
}

/** An integer option (decimal or 0x hex) within bounds, or a UsageError naming it. */
export function intOption(name: string, raw: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined) return fallback;
  const v = /^0x[0-9a-f]+$/i.test(raw) ? Number.parseInt(raw, 16) : /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new UsageError(`--${name}: not a number in [${min}, ${max}]`, { expected: `an integer from ${min} to ${max}`, seen: raw });
  return v;
}
