// The Tcl side of OpenOCD's RPC server: quoting words we send, parsing the lists it sends back, and the
// `catch` envelope that tells success from failure by code rather than by guessing from text
// (docs/virtual-station.md, OpenOCD §5: a failing command and a successful one both answer with plain text).

/** Characters that never need escaping in a Tcl word. */
const PLAIN = /^[A-Za-z0-9_./:+-]+$/;

/**
 * One Tcl word that evaluates to exactly `s`. Control characters are refused rather than encoded: nothing
 * the probe sends (paths, numbers, target names) has a reason to contain them.
 */
export function tclWord(s: string): string {
  if (PLAIN.test(s)) return s;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new RangeError(`refusing a Tcl word with control characters: ${JSON.stringify(s)}`);
  if (s === '') return '{}';
  // A backslash before any non-alphanumeric character stands for that character, inside braces too, and an
  // escaped brace does not count when the braced `catch` body is matched.
  return s.replace(/[^A-Za-z0-9_./:+-]/g, (c) => `\\${c}`);
}

/** True when `s` can sit inside braces unchanged: its unescaped braces balance and never close early. */
function braceSafe(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '\x1a') return false; // the RPC frame terminator may not appear raw
    else if (c === '{') depth++;
    else if (c === '}' && --depth < 0) return false;
  }
  return depth === 0 && !s.endsWith('\\');
}

/** Any script as one Tcl word, control characters included (\uHHHH takes exactly four digits). */
function scriptWord(s: string): string {
  return s.replace(/[^A-Za-z0-9_./:+-]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : `\\${c}`;
  });
}

/**
 * The envelope every RPC call is wrapped in: `<code> <result>`, code 0 meaning success. The command goes in
 * braces (readable in logs) unless its braces do not balance, which would break the envelope itself.
 */
export function catchEnvelope(command: string): string {
  const body = braceSafe(command) ? `{${command}}` : scriptWord(command);
  return `set r [catch ${body} e]; list $r $e`;
}

export interface CatchResult {
  /** 0 on success; OpenOCD's own error codes (-4 ERROR_FAIL, -107 JTAG device error…) or Jim's 1. */
  code: number;
  /** The command's result on success, the error text otherwise. */
  text: string;
}

export function parseCatchResult(reply: string): CatchResult {
  const items = parseTclList(reply);
  const code = items.length === 2 ? Number(items[0]) : NaN;
  if (!Number.isInteger(code)) throw new SyntaxError(`not a catch envelope (expected "<code> <result>"): ${JSON.stringify(reply.slice(0, 200))}`);
  return { code, text: items[1] as string };
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

/** Backslash substitution at s[i] (s[i] === '\\'); returns the text and the index after the sequence. */
function backslash(s: string, i: number): [string, number] {
  const c = s[i + 1];
  if (c === undefined) return ['\\', i + 1];
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return [simple, i + 2];
  if (c === '\n') {
    let j = i + 2;
    while (s[j] === ' ' || s[j] === '\t') j++;
    return [' ', j];
  }
  const hex = (max: number, from: number): [string, number] | undefined => {
    const m = new RegExp(`^[0-9a-fA-F]{1,${max}}`).exec(s.slice(from));
    return m ? [String.fromCodePoint(parseInt(m[0], 16)), from + m[0].length] : undefined;
  };
  if (c === 'x') return hex(2, i + 2) ?? ['x', i + 2];
  if (c === 'u') return hex(4, i + 2) ?? ['u', i + 2];
  if (c === 'U') return hex(8, i + 2) ?? ['U', i + 2];
  const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1));
  if (oct) return [String.fromCharCode(parseInt(oct[0], 8) & 0xff), i + 1 + oct[0].length];
  return [c, i + 2];
}

/** Splits a Tcl list into its elements, undoing brace, quote and backslash quoting. */
export function parseTclList(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = s.length;
  while (true) {
    while (i < n && isSpace(s[i])) i++;
    if (i >= n) return out;
    if (s[i] === '{') {
      let depth = 1;
      let j = i + 1;
      for (; j < n && depth > 0; j++) {
        if (s[j] === '\\') j++;
        else if (s[j] === '{') depth++;
        else if (s[j] === '}') depth--;
      }
      if (depth !== 0) throw new SyntaxError(`unmatched open brace in Tcl list: ${JSON.stringify(s.slice(i, i + 80))}`);
      out.push(s.slice(i + 1, j - 1));
      i = j;
      if (i < n && !isSpace(s[i])) throw new SyntaxError(`list element in braces followed by "${s[i]}" instead of space`);
    } else if (s[i] === '"') {
      let word = '';
      let j = i + 1;
      while (j < n && s[j] !== '"') {
        if (s[j] === '\\') {
          const [t, k] = backslash(s, j);
          word += t;
          j = k;
        } else word += s[j++];
      }
      if (j >= n) throw new SyntaxError(`unmatched quote in Tcl list: ${JSON.stringify(s.slice(i, i + 80))}`);
      out.push(word);
      i = j + 1;
    } else {
      let word = '';
      while (i < n && !isSpace(s[i])) {
        if (s[i] === '\\') {
          const [t, k] = backslash(s, i);
          word += t;
          i = k;
        } else word += s[i++];
      }
      out.push(word);
    }
  }
}
