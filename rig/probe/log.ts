// OpenOCD's log (everything it writes to stderr and stdout), kept twice: a small ring of recent lines for
// error messages, and the whole text for the run's report. The whole text is capped because an OpenOCD
// whose target vanished logs a line on every 100 ms poll for as long as it lives (docs/virtual-station.md, OpenOCD §1.4).

export interface ProbeLogOptions {
  /** Lines kept for error messages and `recent()`. */
  ringLines?: number;
  /** Characters kept for the report; later text is dropped and the drop is noted once. */
  maxChars?: number;
  /** Longer lines are cut (OpenOCD echoes Tcl results, which can be megabytes). */
  maxLineChars?: number;
}

export class ProbeLog {
  private readonly ring: string[] = [];
  private readonly ringLines: number;
  private readonly maxChars: number;
  private readonly maxLineChars: number;
  private readonly chunks: string[] = [];
  private chars = 0;
  private truncated = false;
  private lineCount = 0;
  private readonly listeners = new Set<(line: string) => void>();

  constructor(opts: ProbeLogOptions = {}) {
    this.ringLines = opts.ringLines ?? 200;
    this.maxChars = opts.maxChars ?? 8 * 1024 * 1024;
    this.maxLineChars = opts.maxLineChars ?? 2000;
  }

  /** Records one complete line of OpenOCD's output. */
  append(line: string): void {
    this.line(line);
  }

  /** A line of the rig's own (starts, restarts, kills), marked so it is not mistaken for OpenOCD's. */
  note(text: string): void {
    this.line(`[rig] ${text}`);
  }

  private line(raw: string): void {
    // OpenOCD echoes every Tcl result to its log; a bulk read_memory result is one enormous line.
    const line = raw.length > this.maxLineChars ? `${raw.slice(0, this.maxLineChars)}… (${raw.length - this.maxLineChars} more characters)` : raw;
    this.lineCount++;
    this.ring.push(line);
    if (this.ring.length > this.ringLines) this.ring.shift();
    if (!this.truncated) {
      if (this.chars + line.length + 1 <= this.maxChars) {
        this.chunks.push(line);
        this.chars += line.length + 1;
      } else {
        this.truncated = true;
        this.chunks.push(`[rig] log truncated after ${this.chars} characters`);
      }
    }
    for (const fn of this.listeners) fn(line);
  }

  /** The last `n` lines, oldest first. */
  recent(n = 20): string[] {
    return this.ring.slice(-n);
  }

  /** The whole log kept so far, for the report. */
  text(): string {
    return this.chunks.length === 0 ? '' : `${this.chunks.join('\n')}\n`;
  }

  /** A position to pass to `since()`: the lines logged by one operation. */
  mark(): number {
    return this.lineCount;
  }

  /** Lines logged after `mark` that are still in the ring. */
  since(mark: number): string[] {
    const wanted = this.lineCount - mark;
    return wanted <= 0 ? [] : this.ring.slice(-Math.min(wanted, this.ring.length));
  }

  /** Calls `fn` for every complete line; returns the function that stops it. */
  onLine(fn: (line: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
