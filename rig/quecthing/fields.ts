// The parameter list of an AT answer or URC: comma-separated, strings in double quotes (which may
// contain commas), integers bare. A token is a number only when it is unquoted (protocol §1).

export type FieldValue = string | number;

export interface Field {
  /** The text without its quotes. */
  readonly text: string;
  readonly quoted: boolean;
}

/** Splits `"STM32","",30,-113` into fields; a quote inside a quoted string ends it (AT has no escapes). */
export function splitFields(s: string): Field[] {
  const out: Field[] = [];
  if (s.length === 0) return out;
  let i = 0;
  for (;;) {
    while (s[i] === ' ') i++;
    if (s[i] === '"') {
      const close = s.indexOf('"', i + 1);
      const end = close < 0 ? s.length : close;
      out.push({ text: s.slice(i + 1, end), quoted: true });
      i = close < 0 ? s.length : close + 1;
      // Anything between the closing quote and the next comma is not part of the string.
      const comma = s.indexOf(',', i);
      if (comma < 0) return out;
      i = comma + 1;
    } else {
      const comma = s.indexOf(',', i);
      const end = comma < 0 ? s.length : comma;
      out.push({ text: s.slice(i, end).trim(), quoted: false });
      if (comma < 0) return out;
      i = comma + 1;
    }
  }
}

/** The value of a field: an unquoted decimal integer becomes a number, everything else stays a string. */
export function fieldValue(f: Field): FieldValue {
  return !f.quoted && /^-?\d+$/.test(f.text) ? Number(f.text) : f.text;
}

export function fieldValues(s: string): FieldValue[] {
  return splitFields(s).map(fieldValue);
}

/** The text after `+NAME:` (and its optional space), or undefined when the line has another prefix. */
export function afterPrefix(line: string, name: string): string | undefined {
  if (!line.startsWith(name)) return undefined;
  const rest = line.slice(name.length);
  return rest.startsWith(' ') ? rest.slice(1) : rest;
}

/** Quotes a string parameter; the AT syntax has no escape for `"`, so such a value cannot be sent. */
export function quote(value: string): string {
  if (/["\r\n\0]/.test(value)) throw new RangeError(`cannot send ${JSON.stringify(value)} as an AT string parameter (contains a quote or a control character)`);
  return `"${value}"`;
}
