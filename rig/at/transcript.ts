// The AT transcript: every line sent and received, in the `[TX]`/`[RX]` form of Quectel's examples, with
// a monotonic timestamp. Binary data is summarised (length and SHA-256) so a transcript stays readable and
// small, and the ProductSecret never leaves the process: it is masked before an entry exists at all.
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

/**
 * Masks the ProductSecret in `AT+QIOTCFG="productinfo","<pk>","<ps>"` (set command, and its echo) and in
 * the query answer `+QIOTCFG: "productinfo","<pk>","<ps>","<ver>"`. The product key stays visible: it
 * identifies the product and is needed to read a report.
 */
export function maskSecrets(line: string): string {
  if (!/productinfo/i.test(line)) return line;
  return line.replace(/("productinfo"\s*,\s*"[^"]*"\s*,\s*)("[^"]*"|[^,]*)/gi, (_m, head: string) => `${head}"${MASK}"`);
}

export function binarySummary(data: Buffer): { text: string; length: number; sha256: string } {
  const sha256 = createHash('sha256').update(data).digest('hex');
  return { text: `<${data.length} bytes sha256=${sha256}>`, length: data.length, sha256 };
}

/** `   12.345 [TX]AT+QIOTREG=1`: seconds since start, then the line as Quectel's examples print it. */
export function formatEntry(e: TranscriptEntry): string {
  return `${(e.t / 1000).toFixed(3).padStart(9)} [${e.dir}]${e.text}`;
}

/** The whole transcript as text, one entry per line (an Allure attachment, a run record). */
export function formatTranscript(entries: readonly TranscriptEntry[]): string {
  return entries.map(formatEntry).join('\n') + (entries.length > 0 ? '\n' : '');
}

export class Transcript {
  private readonly origin = performance.now();
  private readonly entries: TranscriptEntry[] = [];

  /** @param limit entries kept in memory (oldest dropped first); listeners still see every entry. */
  constructor(
    private readonly onEntry: (e: TranscriptEntry) => void,
    private readonly limit = 10_000,
  ) {}

  tx(line: string): void {
    this.add('TX', maskSecrets(line));
  }

  rx(line: string): void {
    this.add('RX', maskSecrets(line));
  }

  rxBinary(data: Buffer): void {
    const s = binarySummary(data);
    this.add('RX', s.text, { length: s.length, sha256: s.sha256 });
  }

  note(text: string): void {
    this.add('--', maskSecrets(text));
  }

  /** Entries still held (at least the last `limit`), oldest first. */
  all(): readonly TranscriptEntry[] {
    return this.entries;
  }

  /** The last `n` received lines, newest last, for error messages. */
  lastReceived(n = 5): string[] {
    const out: string[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < n; i--) {
      const e = this.entries[i]!;
      if (e.dir === 'RX') out.push(e.text);
    }
    return out.reverse();
  }

  private add(dir: Direction, text: string, binary?: TranscriptEntry['binary']): void {
    const now = performance.now();
    const e: TranscriptEntry = { t: now - this.origin, at: performance.timeOrigin + now, dir, text, ...(binary ? { binary } : {}) };
    this.entries.push(e);
    // Trimming in batches keeps adding O(1) amortised on long runs.
    if (this.entries.length > this.limit + (this.limit >> 2)) this.entries.splice(0, this.entries.length - this.limit);
    this.onEntry(e);
  }
}
