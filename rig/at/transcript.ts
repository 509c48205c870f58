// The AT transcript: every line sent and received, in the `[TX]`/`[RX]` form of Quectel's examples, with
// a monotonic timestamp. Binary data is summarised (length and SHA-256) so a transcript stays readable and
// small, and the ProductSecret and DeviceSecret never leave the process: they are masked before an entry
// exists at all.
import { createHash } from 'node:crypto';

export type Direction = 'TX' | 'RX' | '--';

export interface TranscriptEntry {
  /** Milliseconds since the transcript started, from the monotonic clock (`performance.now()`). */
  readonly t: number;
  /** The same instant as epoch milliseconds (timeOrigin + monotonic clock), to line up with other logs. */
  readonly at: number;
  /** TX: sent to the module; RX: received from it; `--`: a note from the port (timeout, overflow, close). */
  readonly dir: Direction;
  /** The line as sent or received (terminator stripped, secrets masked), or a summary of binary data. */
  readonly text: string;
  /** For binary data: its length and SHA-256. */
  readonly binary?: { readonly length: number; readonly sha256: string };
}

const MASK = '********';

// The secret is the third field of both keys (protocol §2.1); the first field after the key names the
// product or the device and stays visible, as a report needs it.
const SECRET_FIELD = /("(?:productinfo|dk_ds)"\s*,\s*"[^"]*"\s*,\s*)("[^"]*"|[^,]*)/gi;

/**
 * Masks the ProductSecret in `AT+QIOTCFG="productinfo","<pk>","<ps>"` and the DeviceSecret in
 * `AT+QIOTCFG="dk_ds","<dk>","<ds>"` (set commands, their echoes) and in the query answers
 * `+QIOTCFG: "productinfo","<pk>","<ps>","<ver>"` and `+QIOTCFG: "dk_ds","<dk>","<ds>"`. This only
 * recognises well-formed lines: a line garbled on the wire is masked by `Secrets`, which knows the values.
 */
export function maskSecrets(line: string): string {
  if (!/productinfo|dk_ds/i.test(line)) return line;
  return line.replace(SECRET_FIELD, (_m, head: string) => `${head}"${MASK}"`);
}

/**
 * Secret values masked wherever they appear, whatever the line around them looks like: a quote lost from
 * an echo, a garbled answer or a note cannot show them. `maskSecrets` still applies on top.
 */
export class Secrets {
  private values: string[] = [];

  constructor(values: Iterable<string> = []) {
    for (const v of values) this.add(v);
  }

  add(value: string): void {
    if (value === '' || this.values.includes(value)) return;
    this.values.push(value);
    // Longest first, so a secret that contains another is masked whole.
    this.values.sort((a, b) => b.length - a.length);
  }

  /** Registers the secret of a well-formed productinfo or dk_ds line (a command the rig sends, an answer). */
  learn(line: string): void {
    if (!/productinfo|dk_ds/i.test(line)) return;
    for (const m of line.matchAll(SECRET_FIELD)) {
      const raw = m[2]!.trim();
      this.add(raw.startsWith('"') ? raw.slice(1, -1) : raw);
    }
  }

  mask(text: string): string {
    let out = text;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(MASK);
    return maskSecrets(out);
  }
}

/** `sha256`: the data's hash when it is known already (the framer hashes blocks as they arrive). */
export function binarySummary(data: Buffer, known?: string): { text: string; length: number; sha256: string } {
  const sha256 = known ?? createHash('sha256').update(data).digest('hex');
  return { text: `<${data.length} bytes sha256=${sha256}>`, length: data.length, sha256 };
}

/** `   12.345 [TX]AT+QIOTREG=1`: seconds since start, then the line as Quectel's examples print it. */
export function formatEntry(e: TranscriptEntry): string {
  return `${(e.t / 1000).toFixed(3).padStart(9)} [${e.dir}]${e.text}`;
}

/** The whole transcript as text, one entry per line (an Allure attachment, a run record), saying first what was dropped. */
export function formatTranscript(entries: readonly TranscriptEntry[], dropped?: DroppedEntries): string {
  const lines = entries.map(formatEntry);
  if (dropped) lines.unshift(droppedNote(dropped));
  return lines.join('\n') + (lines.length > 0 ? '\n' : '');
}

/** What a bounded log let go of to stay within its budget: oldest first, so always a prefix of the run. */
export interface DroppedEntries {
  entries: number;
  /** Their estimated size (entryBytes). */
  bytes: number;
  /** Times (`t`) of the first and last entry dropped. */
  from: number;
  to: number;
}

/**
 * Bytes of heap an entry holds, estimated: its text as UTF-16 (garbage that decodes to U+FFFD makes V8 store
 * a string two bytes a character) plus the object around it, and a binary summary's hash.
 */
export function entryBytes(e: { text: string; binary?: unknown }): number {
  return 2 * e.text.length + 64 + (e.binary ? 200 : 0);
}

export const DEFAULT_TRANSCRIPT_MAX_BYTES = 1024 * 1024;

/**
 * Entries kept within a byte budget and a count, oldest dropped first, with a tally of what was dropped: a
 * module that sends kilobyte lines of garbage for hours costs a bounded amount of memory, and whoever reads
 * the log learns what is missing.
 */
export class BoundedLog<T extends { t: number; text: string; binary?: unknown }> {
  /** Entries from `start` on are held; the slots before it are emptied as they are dropped. */
  private items: (T | undefined)[] = [];
  private start = 0;
  private held = 0;
  private droppedSoFar: DroppedEntries | undefined;

  constructor(
    readonly maxBytes: number,
    readonly maxEntries = Number.POSITIVE_INFINITY,
  ) {}

  push(e: T): void {
    this.items.push(e);
    this.held += entryBytes(e);
    while (this.held > this.maxBytes || this.items.length - this.start > this.maxEntries) {
      const old = this.items[this.start]!;
      // Emptied at once, not at the next compaction: a dropped entry must not stay in memory.
      this.items[this.start++] = undefined;
      const n = entryBytes(old);
      this.held -= n;
      const d = (this.droppedSoFar ??= { entries: 0, bytes: 0, from: old.t, to: old.t });
      d.entries++;
      d.bytes += n;
      d.to = old.t;
    }
    // Compacting in batches keeps adding O(1) amortised.
    if (this.start > 1024 && this.start * 2 > this.items.length) this.compact();
  }

  /** Entries held, oldest first: a copy, which later entries (and what they make it drop) leave alone. */
  all(): readonly T[] {
    return this.items.slice(this.start) as T[];
  }

  /** Entries held, newest first, without copying. */
  *newestFirst(): Generator<T> {
    for (let i = this.items.length - 1; i >= this.start; i--) yield this.items[i]!;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.held;
  }

  /** What was dropped so far; undefined when nothing was. */
  get dropped(): Readonly<DroppedEntries> | undefined {
    return this.droppedSoFar;
  }

  private compact(): void {
    if (this.start === 0) return;
    this.items = this.items.slice(this.start);
    this.start = 0;
  }
}

/** The line a transcript printed without its oldest entries starts with. */
export function droppedNote(d: DroppedEntries): string {
  return `[--]… ${d.entries} earlier entries (about ${Math.ceil(d.bytes / 1024)} KiB, ${(d.from / 1000).toFixed(3)}–${(d.to / 1000).toFixed(3)} s) dropped to keep the transcript within its memory budget`;
}

export class Transcript {
  private readonly origin = performance.now();
  private readonly entries: BoundedLog<TranscriptEntry>;

  /**
   * @param limit entries kept in memory (oldest dropped first); listeners still see every entry.
   * @param secrets values masked in every entry, shared with the port so its errors mask the same
   * @param maxBytes estimated heap the entries kept may take (entryBytes), oldest dropped first
   */
  constructor(
    private readonly onEntry: (e: TranscriptEntry) => void,
    limit = 10_000,
    readonly secrets = new Secrets(),
    maxBytes = DEFAULT_TRANSCRIPT_MAX_BYTES,
  ) {
    this.entries = new BoundedLog<TranscriptEntry>(maxBytes, limit);
  }

  tx(line: string): void {
    this.add('TX', this.secrets.mask(line));
  }

  rx(line: string): void {
    this.add('RX', this.secrets.mask(line));
  }

  rxBinary(data: Buffer, sha256?: string): void {
    const s = binarySummary(data, sha256);
    this.add('RX', s.text, { length: s.length, sha256: s.sha256 });
  }

  note(text: string): void {
    this.add('--', this.secrets.mask(text));
  }

  /** Entries still held (the newest, within the entry limit and the byte budget), oldest first. */
  all(): readonly TranscriptEntry[] {
    return this.entries.all();
  }

  /** What the budget made the transcript drop (oldest first); undefined when nothing was. */
  get dropped(): Readonly<DroppedEntries> | undefined {
    return this.entries.dropped;
  }

  /** The last `n` received lines, newest last, for error messages. */
  lastReceived(n = 5): string[] {
    const out: string[] = [];
    for (const e of this.entries.newestFirst()) {
      if (out.length >= n) break;
      // An error message quotes a line, not four kilobytes of garbage.
      if (e.dir === 'RX') out.push(e.text.length > 200 ? `${e.text.slice(0, 200)}…` : e.text);
    }
    return out.reverse();
  }

  private add(dir: Direction, text: string, binary?: TranscriptEntry['binary']): void {
    const now = performance.now();
    const e: TranscriptEntry = { t: now - this.origin, at: performance.timeOrigin + now, dir, text, ...(binary ? { binary } : {}) };
    this.entries.push(e);
    this.onEntry(e);
  }
}
