// The rig command's Recorder (rig/sota/recorder.ts): steps as lines on stderr, progress of long phases
// (downloads, block reads, programming, read-back) as cli-progress bars when stderr is a terminal and as a
// plain line every 10 % when it is not (logs, CI), figures as dim lines. stdout stays free for results.
import cliProgress from 'cli-progress';
import type { Recorder } from '../sota/recorder.ts';
import { paint, type Paint } from './output.ts';

export interface CliRecorderOptions {
  stream?: NodeJS.WriteStream;
  /** Print nothing but progress (--json still shows progress on stderr). */
  quiet?: boolean;
  /** Force bars on or off; default: bars when the stream is a terminal. */
  bars?: boolean;
}

const fmtBytes = (n: number): string => n.toLocaleString('en-US');
const fmtMs = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

export class CliRecorder implements Recorder {
  private readonly stream: NodeJS.WriteStream;
  private readonly p: Paint;
  private readonly bars: boolean;
  private readonly quiet: boolean;
  private depth = 0;
  private bar: { phase: string; total: number; bar: cliProgress.SingleBar } | undefined;
  private plain: { phase: string; total: number; shown: number } | undefined;
  /** Every figure measured, in order (commands print or return them). */
  readonly measures: { name: string; value: number; unit: string }[] = [];
  readonly attachments: { name: string; bytes: number; contentType: string }[] = [];

  constructor(opts: CliRecorderOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.p = paint(this.stream);
    this.bars = opts.bars ?? this.stream.isTTY === true;
    this.quiet = opts.quiet ?? false;
  }

  /** A line of its own, after whatever bar is on screen. */
  line(text: string): void {
    this.stopBar();
    this.stream.write(`${text}\n`);
  }

  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    const indent = '  '.repeat(this.depth);
    if (!this.quiet) this.line(`${indent}${this.p.cyan('▸')} ${name}`);
    const t0 = performance.now();
    this.depth++;
    try {
      const value = await body();
      this.depth--;
      if (!this.quiet) this.line(`${indent}${this.p.green('✔')} ${name} ${this.p.dim(fmtMs(performance.now() - t0))}`);
      return value;
    } catch (err) {
      this.depth--;
      const first = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
      if (!this.quiet) this.line(`${indent}${this.p.red('✘')} ${name} ${this.p.dim(fmtMs(performance.now() - t0))}: ${first}`);
      throw err;
    }
  }

  attach(name: string, content: string | Uint8Array, contentType: string): void {
    this.attachments.push({ name, bytes: typeof content === 'string' ? Buffer.byteLength(content) : content.length, contentType });
  }

  measure(name: string, value: number, unit: string): void {
    this.measures.push({ name, value, unit });
    // Step durations are already on the step's line.
    if (!this.quiet && !name.endsWith(' duration')) this.line(`${'  '.repeat(this.depth)}${this.p.dim(`${name}: ${value.toLocaleString('en-US')} ${unit}`)}`);
  }

  progress(phase: string, done: number, total: number): void {
    if (!(total > 0)) return;
    const value = Math.min(Math.max(done, 0), total);
    if (this.bars) {
      if (!this.bar || this.bar.phase !== phase || this.bar.total !== total) {
        this.stopBar();
        const bar = new cliProgress.SingleBar(
          {
            stream: this.stream,
            format: `${'  '.repeat(this.depth)}${phase} [{bar}] {percentage}% {value}/{total} B {duration_formatted}`,
            hideCursor: true,
            barsize: 30,
            etaBuffer: 20,
            fps: 10,
            formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? fmtBytes(v) : String(v)),
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
        this.bar = { phase, total, bar };
      }
      this.bar.bar.update(value);
      if (value >= total) this.stopBar();
      return;
    }
    // Not a terminal: one line at each 10 % step, so a log shows progress without a line per block.
    if (!this.plain || this.plain.phase !== phase || this.plain.total !== total || value < this.plain.shown) this.plain = { phase, total, shown: -1 };
    const tenth = Math.floor((value / total) * 10);
    if (tenth > this.plain.shown) {
      this.plain.shown = tenth;
      this.stream.write(`${'  '.repeat(this.depth)}${phase}: ${fmtBytes(value)}/${fmtBytes(total)} bytes (${Math.floor((value / total) * 100)} %)\n`);
    }
  }

  /** Ends any bar on screen (before other output, and when a command ends). */
  stopBar(): void {
    if (this.bar) {
      this.bar.bar.stop();
      this.bar = undefined;
    }
  }
}
