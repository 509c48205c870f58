// V.25ter-style command line assembly and QuecThing argument parsing (docs/protocol.md §1).

export interface ParsedCommand {
  /** Upper-cased name: "", "E", "I", "+QIOTREG", … */
  name: string;
  form: 'exec' | 'read' | 'test' | 'set';
  /** The raw text after "=" for the set form. */
  rawArgs: string;
}

export interface Arg {
  quoted: boolean;
  value: string;
}

/**
 * Splits `AT<rest>` into name and form; returns undefined for a line that is not a command we can parse.
 * Basic commands (E, I) take their digits as rawArgs.
 */
export function parseCommand(line: string): ParsedCommand | undefined {
  if (!/^at/i.test(line)) return undefined;
  const rest = line.slice(2);
  if (rest === '') return { name: '', form: 'exec', rawArgs: '' };
  const basic = /^([A-Za-z])(\d*)$/.exec(rest);
  if (basic) return { name: basic[1]!.toUpperCase(), form: basic[2] === '' ? 'exec' : 'set', rawArgs: basic[2]! };
  const ext = /^([+&][A-Za-z][A-Za-z0-9]*)(.*)$/s.exec(rest);
  if (!ext) return undefined;
  const name = ext[1]!.toUpperCase();
  const tail = ext[2]!;
  if (tail === '') return { name, form: 'exec', rawArgs: '' };
  if (tail === '?') return { name, form: 'read', rawArgs: '' };
  if (tail === '=?') return { name, form: 'test', rawArgs: '' };
  if (tail.startsWith('=')) return { name, form: 'set', rawArgs: tail.slice(1) };
  return undefined;
}

/** Comma-separated arguments; strings in double quotes (no escapes), numbers bare. Undefined if malformed. */
export function parseArgs(raw: string): Arg[] | undefined {
  const args: Arg[] = [];
  let i = 0;
  for (;;) {
    while (raw[i] === ' ') i++;
    if (raw[i] === '"') {
      const end = raw.indexOf('"', i + 1);
      if (end < 0) return undefined;
      args.push({ quoted: true, value: raw.slice(i + 1, end) });
      i = end + 1;
      while (raw[i] === ' ') i++;
    } else {
      let end = raw.indexOf(',', i);
      if (end < 0) end = raw.length;
      const value = raw.slice(i, end).trim();
      if (value.includes('"')) return undefined;
      args.push({ quoted: false, value });
      i = end;
    }
    if (i >= raw.length) return args;
    if (raw[i] !== ',') return undefined;
    i++;
  }
}

/** An unquoted decimal integer argument, else undefined. */
export function intArg(a: Arg | undefined): number | undefined {
  if (!a || a.quoted || !/^\d{1,10}$/.test(a.value)) return undefined;
  return Number(a.value);
}

export function strArg(a: Arg | undefined): string | undefined {
  return a && a.quoted ? a.value : undefined;
}

/**
 * Assembles command lines from input bytes: characters before "AT" are ignored, CR or LF ends a line,
 * backspace deletes, a line longer than the limit is discarded up to its terminator and answered ERROR.
 */
export class LineAssembler {
  private buf: number[] = [];
  private overflow = false;

  constructor(
    private readonly maxLength: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  reset(): void {
    this.buf = [];
    this.overflow = false;
  }

  feed(chunk: Uint8Array): void {
    for (const b of chunk) {
      if (b === 0x0d || b === 0x0a) {
        if (this.overflow) {
          this.overflow = false;
          this.buf = [];
          this.onOverflow();
          continue;
        }
        const line = Buffer.from(this.buf).toString('latin1');
        this.buf = [];
        const at = line.search(/at/i);
        if (at >= 0) this.onLine(line.slice(at));
        continue;
      }
      if (this.overflow) continue;
      if (b === 0x08) {
        this.buf.pop();
        continue;
      }
      this.buf.push(b);
      if (this.buf.length > this.maxLength) {
        this.overflow = true;
        this.buf = [];
      }
    }
  }
}
