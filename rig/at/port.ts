// AtPort: one module's AT interface on a serialport stream. It sends one command at a time, gives each
// the lines that belong to it (information lines by prefix, counted binary, the final result), hands URCs
// to subscribers whenever they arrive, and keeps a transcript. After a timeout or an abort it
// resynchronises before the next command (a bare CR, then a probe), so a late answer, or one to a command
// line left unfinished by a lost byte, can never be taken for the next command's.
import { AbortedError } from '../errors.ts';
import { Emitter } from './emitter.ts';
import { AtCommandError, AtPortError, AtResponseError, AtTimeoutError } from './errors.ts';
import { AtFramer, quecthingBinaryLength } from './framer.ts';
import { guardHangup } from './hangup.ts';
import type { Frame } from './framer.ts';
import { DEFAULT_URC_PREFIXES, REBOOT_URC, matchesPrefix, parseFinalResult } from './lines.ts';
import { Secrets, Transcript } from './transcript.ts';
import type { DroppedEntries, TranscriptEntry } from './transcript.ts';

/**
 * The part of a serialport 13 stream (`SerialPort`, `SerialPortMock`) that AtPort uses. A `close` event
 * carrying an error with `disconnected: true` means the device vanished (serialport's DisconnectedError).
 */
export interface SerialStream {
  readonly path: string;
  readonly isOpen: boolean;
  open(callback?: (err: Error | null) => void): void;
  close(callback?: (err?: Error | null) => void): void;
  write(data: Buffer, callback?: (err: Error | null | undefined) => void): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (err?: Error & { disconnected?: boolean }) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'open', fn: () => void): unknown;
  prependListener(event: 'open', fn: () => void): unknown;
  once(event: 'open', fn: () => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
  off(event: 'open', fn: () => void): unknown;
  off(event: 'error', fn: (err: Error) => void): unknown;
}

/** A probe sent to resynchronise: its answer contains `marker`, which no stale answer can imitate. */
export interface ResyncProbe {
  command: string;
  marker: string;
}

export interface AtPortOptions {
  /** Station name, for every error and log line ("bench-2", "virtual"). */
  station: string;
  /** Device path: AtPort opens it with serialport (exclusive lock). Give either this or `serial`. */
  path?: string;
  baudRate?: number;
  /** An already constructed serialport stream, e.g. a SerialPortMock in tests. */
  serial?: SerialStream;
  /** Per-command timeout unless the command gives its own; default 2000 ms (the protocol says 300 ms). */
  commandTimeoutMs?: number;
  /** Timeout of each resynchronisation probe; default `commandTimeoutMs`. */
  resyncTimeoutMs?: number;
  maxLineLength?: number;
  maxBinaryLength?: number;
  /** Lines the module sends on its own; default DEFAULT_URC_PREFIXES. */
  urcPrefixes?: readonly string[];
  /** Which header lines announce counted binary data; default `+QIOTOTARD:` and `+QIOTEVT: 5,…,<len>`. */
  binaryLength?: (line: string) => number | undefined;
  /** Probes for resynchronisation, the first whose command differs from the one that timed out is used. */
  resyncProbes?: readonly ResyncProbe[];
  /** Transcript entries kept in memory; every entry is also emitted as a `transcript` event. */
  transcriptLimit?: number;
  /** Estimated heap the transcript kept in memory may take (default 1 MiB), oldest entries dropped first. */
  transcriptMaxBytes?: number;
  /**
   * Values masked in the transcript and in every error wherever they appear (the station's ProductSecret,
   * a DeviceSecret); more with `addSecret`. Secrets in productinfo and dk_ds commands are added as sent.
   */
  secrets?: Iterable<string>;
}

export interface CommandOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Information lines to collect: by prefix (e.g. `+QIOTMCUVER:`), or `'all'` for prefix-less answers (ATI, AT+GSN). */
  prefix?: string | readonly string[] | 'all';
  /** The answer carries a counted binary block whose header matches `prefix`. */
  binary?: boolean;
  /** What a correct answer looks like, in the protocol's words, for error messages. */
  expected?: string;
}

/** The command the port answered last, and how: what a follow-on command (`commandAfter`) decides on. */
export interface Answered {
  command: string;
  /** The answer, when the final result was OK and the answer well formed. */
  response?: AtResponse;
  /** Why not, otherwise (ERROR, timeout, a garbled answer, an abort). */
  error?: Error;
}

export interface AtResponse {
  command: string;
  /** Information lines, in order. */
  lines: string[];
  /** The counted binary block, when the command expects one. */
  block?: { header: string; data: Buffer };
}

export interface Urc {
  line: string;
  /** Raw bytes that followed the line (`+QIOTEVT: 5,10200,<len>`). */
  data?: Buffer;
}

export type FramingIssue = Extract<Frame, { kind: 'overflow' | 'oversize-block' | 'misframed-block' | 'discarded' }>;

export type AtPortEvents = {
  urc: [Urc];
  /** The module printed its boot banner `RDY`: volatile state (echo, QIOTREG=1) is gone. */
  reboot: [];
  transcript: [TranscriptEntry];
  framing: [FramingIssue];
  /** A line that is neither a URC nor part of the answer in progress (noise, a stale answer). */
  unsolicited: [string];
  disconnected: [AtPortError];
};

interface Pending {
  command: string;
  opts: CommandOptions;
  timeoutMs: number;
  resolve: (r: AtResponse | undefined) => void;
  reject: (e: Error) => void;
  /** A follow-on command (commandAfter): sent only if this says so when it reaches the head of the queue. */
  sendIf: ((previous: Answered | undefined) => boolean) | undefined;
  sent: boolean;
  echoSeen: boolean;
  lines: string[];
  block: { header: string; data: Buffer } | undefined;
  failure: Error | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  /** Set for the internal resynchronisation probe. */
  probe: ProbeState | undefined;
}

interface ProbeState {
  marker: string;
  /** The probe's marker line has arrived. */
  seen: boolean;
  /** The command whose answer may still arrive. */
  after: string;
  /** The last final result that could be the probe's own answer without its marker (e.g. ERROR). */
  answered: string | undefined;
  /** The last few other lines received while the probe waited, for the error if it gets no answer. */
  lines: string[];
}

export const DEFAULT_RESYNC_PROBES: readonly ResyncProbe[] = [
  { command: 'AT+CSQ', marker: '+CSQ:' },
  { command: 'AT+QIOTSTATE?', marker: '+QIOTSTATE:' },
];

export class AtPort extends Emitter<AtPortEvents> {
  readonly station: string;
  readonly path: string;
  private serial: SerialStream | undefined;
  private readonly baudRate: number;
  private readonly framer: AtFramer;
  private readonly transcriptLog: Transcript;
  private readonly secrets: Secrets;
  private readonly urcPrefixes: readonly string[];
  private readonly probes: readonly ResyncProbe[];
  private readonly commandTimeoutMs: number;
  private readonly resyncTimeoutMs: number;
  private queue: Pending[] = [];
  private inflight: Pending | undefined;
  /** The last command sent and settled, for follow-on commands (commandAfter). */
  private answered: Answered | undefined;
  /** Set after a command was abandoned: its answer may still arrive. */
  private staleAfter: string | undefined;
  private closedByUs = false;
  private echoState: boolean | undefined;

  constructor(opts: AtPortOptions) {
    super();
    if (!opts.serial && !opts.path) throw new TypeError('AtPort needs a path or a serial stream');
    this.station = opts.station;
    this.serial = opts.serial;
    this.path = opts.serial?.path ?? opts.path!;
    this.baudRate = opts.baudRate ?? 115200;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 2000;
    this.resyncTimeoutMs = opts.resyncTimeoutMs ?? this.commandTimeoutMs;
    this.urcPrefixes = opts.urcPrefixes ?? DEFAULT_URC_PREFIXES;
    this.probes = opts.resyncProbes ?? DEFAULT_RESYNC_PROBES;
    this.secrets = new Secrets(opts.secrets);
    this.transcriptLog = new Transcript((e) => this.emit('transcript', e), opts.transcriptLimit, this.secrets, opts.transcriptMaxBytes);
    this.framer = new AtFramer((f) => this.onFrame(f), {
      maxLineLength: opts.maxLineLength,
      maxBinaryLength: opts.maxBinaryLength,
      binaryLength: opts.binaryLength ?? quecthingBinaryLength,
      // Each block is named in the transcript by its hash, computed as its bytes arrive.
      sha256: true,
    });
    if (this.serial) this.attach(this.serial);
  }

  /** Opens (or reopens, after a disconnect or close) the port. Resolves once bytes can flow. */
  async open(): Promise<void> {
    if (!this.serial) {
      const { SerialPort } = await import('serialport');
      this.serial = new SerialPort({ path: this.path, baudRate: this.baudRate, lock: true, autoOpen: false });
      this.attach(this.serial);
    }
    const serial = this.serial;
    if (serial.isOpen) return;
    this.closedByUs = false;
    this.framer.reset();
    // The module may have restarted while the port was closed (a USB module's port vanishes with its supply).
    this.echoState = undefined;
    const opening = (serial as { opening?: boolean }).opening === true;
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) =>
        reject(
          new AtPortError(`could not open ${this.path}${/lock/i.test(err.message) ? ' (held by another process)' : ''}: ${err.message}`, {
            station: this.station,
            port: this.path,
            cause: err,
          }),
        );
      if (opening) {
        const onOpen = () => {
          serial.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          serial.off('open', onOpen);
          fail(err);
        };
        serial.once('open', onOpen);
        serial.once('error', onError);
      } else {
        serial.open((err) => (err ? fail(err) : resolve()));
      }
    });
    this.transcriptLog.note(`port ${this.path} open`);
  }

  get isOpen(): boolean {
    return this.serial?.isOpen === true;
  }

  /**
   * Whether the module echoes commands: learned from the first command it answers after the port opens or
   * after a `RDY` (the echo is volatile, protocol §6), and from ATE0/ATE1 answered OK. Undefined until then.
   * Only what it reports depends on this: echoed lines are recognised either way. Later answers do not
   * change it, so a lost byte of one echo cannot make a module that echoes look as if it did not.
   */
  get echo(): boolean | undefined {
    return this.echoState;
  }

  /** Closes the port; pending commands are rejected. Safe to call twice. */
  async close(): Promise<void> {
    const serial = this.serial;
    if (!serial?.isOpen) {
      this.failAll((cmd) => this.portError(`port ${this.path} closed`, cmd));
      return;
    }
    this.closedByUs = true;
    await new Promise<void>((resolve) => serial.close(() => resolve()));
  }

  /**
   * Sends `command` (without terminator) and resolves with its answer once the final result arrives.
   * Rejects with AtCommandError (ERROR/+CME/+CMS), AtTimeoutError, AtResponseError, AtPortError or
   * AbortedError.
   */
  command(command: string, opts: CommandOptions = {}): Promise<AtResponse> {
    return this.enqueue(command, opts, undefined) as Promise<AtResponse>;
  }

  /**
   * A command that continues the one queued before it (the next block of a read): queued now, it leaves in
   * the same turn of the event loop as the answer before it ends, with no round through the caller's
   * promise chain, but only if `sendIf`, asked at that moment with the command the port answered last,
   * says so. Otherwise it is withdrawn unsent and resolves undefined. One command is still in flight at a
   * time: nothing reaches the module before the previous final result. Rejects as `command` does.
   */
  commandAfter(command: string, sendIf: (previous: Answered | undefined) => boolean, opts: CommandOptions = {}): Promise<AtResponse | undefined> {
    return this.enqueue(command, opts, sendIf);
  }

  private enqueue(command: string, opts: CommandOptions, sendIf: Pending['sendIf']): Promise<AtResponse | undefined> {
    // Before anything can log the command: from here on a garbled echo of it cannot show its secret.
    this.secrets.learn(command);
    return new Promise<AtResponse | undefined>((resolve, reject) => {
      const p: Pending = {
        command,
        opts,
        timeoutMs: opts.timeoutMs ?? this.commandTimeoutMs,
        resolve,
        reject,
        sendIf,
        sent: false,
        echoSeen: false,
        lines: [],
        block: undefined,
        failure: undefined,
        timer: undefined,
        onAbort: undefined,
        probe: undefined,
      };
      if (/[\r\n]/.test(command)) {
        // The terminator is the port's to add; a CR inside would make the module see two commands.
        reject(new RangeError(`AT command ${JSON.stringify(this.mask(command))} contains a line terminator`));
        return;
      }
      if (opts.signal?.aborted) {
        reject(this.abortedError(p, opts.signal));
        return;
      }
      if (!this.isOpen) {
        reject(this.portError(`port ${this.path} is not open`, command));
        return;
      }
      if (opts.signal) {
        const signal = opts.signal;
        p.onAbort = () => this.abort(p, signal);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.pump();
    });
  }

  /** Transcript entries held in memory, oldest first. */
  transcript(): readonly TranscriptEntry[] {
    return this.transcriptLog.all();
  }

  /** What the transcript's memory budget made it drop, oldest first; undefined when nothing was. */
  get transcriptDropped(): Readonly<DroppedEntries> | undefined {
    return this.transcriptLog.dropped;
  }

  /** Masks `value` from now on wherever it appears: in the transcript, its events and every error. */
  addSecret(value: string): void {
    this.secrets.add(value);
  }

  /** Learns the secret a productinfo or dk_ds command carries, without sending it (a line typed, not yet sent). */
  addSecretsOf(command: string): void {
    this.secrets.learn(command);
  }

  /** `text` as the transcript would show it, secrets masked; for errors built from module answers. */
  mask(text: string): string {
    return this.secrets.mask(text);
  }

  /** Adds a note to the transcript (a flow's step, a fault injected), so the log reads as one story. */
  note(text: string): void {
    this.transcriptLog.note(text);
  }

  private attach(serial: SerialStream): void {
    // First in line, ahead of a read the stream may already have queued for `open`: every read is guarded.
    serial.prependListener('open', () => guardHangup((serial as { port?: unknown }).port));
    if (serial.isOpen) guardHangup((serial as { port?: unknown }).port);
    serial.on('data', (chunk) => this.framer.push(chunk));
    serial.on('error', (err) => this.transcriptLog.note(`port error: ${err.message}`));
    serial.on('close', (err) => this.onClose(err));
  }

  private onClose(err?: Error & { disconnected?: boolean }): void {
    const vanished = err?.disconnected === true;
    const wasMidCommand = this.inflight?.sent === true;
    this.transcriptLog.note(vanished ? `port ${this.path} vanished: ${err.message}` : `port ${this.path} closed`);
    // A command sent before the port vanished may still be answered after it is reopened.
    if (vanished && wasMidCommand && this.inflight) this.staleAfter = this.inflight.command;
    const midBlock = this.framer.inBlock;
    this.framer.reset();
    const error = (cmd?: string) =>
      vanished
        ? this.portError(
            `port ${this.path} vanished (disconnected)${cmd ? ` while waiting for the answer to ${cmd}` : ''}${midBlock ? ', in the middle of binary data' : ''}`,
            cmd,
            err,
          )
        : this.portError(`port ${this.path} closed${cmd ? ` before ${cmd} was answered` : ''}`, cmd);
    this.failAll(error);
    if (vanished && !this.closedByUs) this.emit('disconnected', error());
  }

  private failAll(error: (cmd?: string) => Error): void {
    const all = this.inflight ? [this.inflight, ...this.queue] : [...this.queue];
    this.inflight = undefined;
    this.queue = [];
    for (const p of all) this.settle(p, error(p.command));
  }

  private portError(summary: string, command?: string, cause?: unknown): AtPortError {
    return new AtPortError(this.mask(summary), {
      station: this.station,
      port: this.path,
      command: command === undefined ? undefined : this.mask(command),
      lastLines: this.transcriptLog.lastReceived(),
      cause,
    });
  }

  private abortedError(p: Pending, signal: AbortSignal): AbortedError {
    const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
    return new AbortedError(`${this.mask(p.command)} on ${this.path} aborted: ${reason}`, {
      station: this.station,
      lastLines: this.transcriptLog.lastReceived(),
      cause: signal.reason,
    });
  }

  private abort(p: Pending, signal: AbortSignal): void {
    if (p === this.inflight) {
      this.inflight = undefined;
      this.staleAfter = p.command;
      this.transcriptLog.note(`${p.command} aborted; resynchronising`);
      this.settle(p, this.abortedError(p, signal));
      this.pump();
      return;
    }
    const i = this.queue.indexOf(p);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.settle(p, this.abortedError(p, signal));
    }
  }

  /** What follow-on commands decide on: the last command sent, and how it ended. */
  private noteAnswered(p: Pending, result: Error | AtResponse): void {
    if (p.sent) this.answered = { command: p.command, ...(result instanceof Error ? { error: result } : { response: result }) };
  }

  /** A command's own timer and abort listener, gone once it is settled or withdrawn. */
  private release(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.opts.signal?.removeEventListener('abort', p.onAbort);
  }

  private settle(p: Pending, result: Error | AtResponse): void {
    this.noteAnswered(p, result);
    this.release(p);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  private pump(): void {
    if (this.inflight || !this.isOpen) return;
    if (this.staleAfter !== undefined) {
      // Eager, so a late answer is consumed now and the transcript shows where it went.
      this.send(this.makeProbe(this.staleAfter));
      return;
    }
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      if (next.sendIf) {
        let go: boolean;
        try {
          go = next.sendIf(this.answered);
        } catch (err) {
          this.settle(next, err instanceof Error ? err : new Error(String(err)));
          continue;
        }
        if (!go) {
          this.withdraw(next);
          continue;
        }
      }
      this.send(next);
      return;
    }
  }

  /** A follow-on command its condition turned down: never written, resolved undefined. */
  private withdraw(p: Pending): void {
    this.release(p);
    p.resolve(undefined);
  }

  private makeProbe(after: string): Pending {
    const probe = this.probes.find((p) => p.command !== after) ?? this.probes[0]!;
    return {
      command: probe.command,
      opts: { expected: `${probe.marker} … then OK` },
      timeoutMs: this.resyncTimeoutMs,
      resolve: () => {},
      reject: () => {},
      sendIf: undefined,
      sent: false,
      echoSeen: false,
      lines: [],
      block: undefined,
      failure: undefined,
      timer: undefined,
      onAbort: undefined,
      probe: { marker: probe.marker, seen: false, after, answered: undefined, lines: [] },
    };
  }

  private send(p: Pending): void {
    const serial = this.serial!;
    this.inflight = p;
    p.sent = true;
    // A probe starts with a bare CR. When a byte of the abandoned command was lost (its CR above all), the
    // module still holds the rest as an unfinished line: the CR ends that line on its own, so its answer
    // comes first and is discarded as stale, and the probe reaches the module as a command of its own.
    // With nothing pending the CR is an empty line, which a module ignores. The abandoned command may
    // thereby run late; its timeout already told the caller that its outcome is unknown.
    serial.write(Buffer.from(`${p.probe ? '\r' : ''}${p.command}\r`, 'latin1'), (err) => {
      if (!err || this.inflight !== p) return;
      this.inflight = undefined;
      this.settle(p, this.portError(`could not write ${p.command} to ${this.path}: ${err.message}`, p.command, err));
      this.pump();
    });
    // After the write, which reaches the kernel at once (hangup.ts): bookkeeping does not delay the module.
    // Nothing can be received in between, so the transcript still shows the command before its answer.
    this.transcriptLog.tx(p.command);
    p.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
  }

  private expectedOf(p: Pending): string {
    if (p.opts.expected) return p.opts.expected;
    const prefix = p.opts.prefix;
    if (prefix === undefined) return 'OK';
    if (prefix === 'all') return 'information lines then OK';
    const names = typeof prefix === 'string' ? prefix : prefix.join(' or ');
    return p.opts.binary ? `${names} <n> then <n> bytes then OK` : `${names} … then OK`;
  }

  private onTimeout(p: Pending): void {
    if (this.inflight !== p) return;
    const cut = this.framer.cutBlockAtBanner();
    if (cut) {
      // A module that lost power mid-answer and came back: its RDY is among the counted bytes. Framed as the
      // line it is, it reports the reboot and fails this command as a reboot does (onReboot), with no probe.
      this.transcriptLog.note(`the module restarted while sending the block announced by ${cut.header}: ${cut.before} byte(s) of it came, then its boot banner`);
      this.framer.push(cut.rest);
      if (this.inflight !== p) return;
    }
    this.inflight = undefined;
    // The rest of an unfinished block is skipped when it comes late, never read as lines nor taken for a
    // later read's data; if it never comes, an unanswered probe ends the skipping (onProbeTimeout).
    const midBlock = this.framer.discardRestOfBlock();
    const seen = [
      p.echoSeen ? 'the echo' : '',
      p.lines.length ? `${p.lines.length} information line(s)` : '',
      p.block ? 'the binary block' : midBlock ? 'a binary header and part of its data' : '',
    ]
      .filter(Boolean)
      .join(', ');
    if (p.probe) {
      this.onProbeTimeout(p, p.probe);
      return;
    }
    this.staleAfter = p.command;
    this.transcriptLog.note(`no answer to ${p.command} within ${p.timeoutMs} ms; resynchronising`);
    this.settle(
      p,
      // What was already known to be wrong with the answer says more than its missing end.
      p.failure ??
        new AtTimeoutError({
          station: this.station,
          port: this.path,
          command: this.mask(p.command),
          expected: this.expectedOf(p),
          waitedMs: p.timeoutMs,
          seen: seen ? `only ${seen}` : 'nothing',
          lastLines: this.transcriptLog.lastReceived(),
        }),
    );
    this.pump();
  }

  private onProbeTimeout(p: Pending, probe: ProbeState): void {
    if (probe.answered !== undefined) {
      // The module answered, and nothing followed for a whole probe timeout: that answer was the probe's.
      this.resynchronised(p, `the module answered ${probe.answered} to ${p.command}`);
      return;
    }
    // Bytes still being skipped as a block's rest or an oversize block's data are not coming (or the header
    // lied): whatever the probe got back was skipped with them, and the next probe must be read as lines.
    this.framer.endDiscard();
    this.transcriptLog.note(`resynchronisation after ${probe.after} failed: no answer to ${p.command}`);
    const seen = probe.lines.length
      ? `only ${probe.lines.map((l) => JSON.stringify(l)).join(', ')} since ${p.command} was sent, no final result`
      : `nothing since ${p.command} was sent`;
    // The module answers nothing: every queued command would time out the same way. Each is failed with
    // an error of its own, so a flow's failure names the step it was at.
    for (const q of this.queue.splice(0)) {
      this.settle(
        q,
        new AtTimeoutError({
          station: this.station,
          port: this.path,
          command: this.mask(q.command),
          summary: `${this.mask(q.command)} not sent: the module answered neither ${this.mask(probe.after)} nor the resynchronisation probe ${p.command} within ${p.timeoutMs} ms on ${this.path}`,
          expected: `${probe.marker} … then OK to ${p.command}, then ${this.expectedOf(q)} to ${this.mask(q.command)}`,
          waitedMs: p.timeoutMs,
          seen,
          lastLines: this.transcriptLog.lastReceived(),
        }),
      );
    }
  }

  private resynchronised(p: Pending, how?: string): void {
    this.inflight = undefined;
    this.staleAfter = undefined;
    this.settle(p, { command: p.command, lines: [] });
    this.transcriptLog.note(`resynchronised after ${p.probe!.after}${how ? `: ${how}` : ''}`);
    this.pump();
  }

  private onFrame(f: Frame): void {
    switch (f.kind) {
      case 'line':
        this.transcriptLog.rx(f.text);
        this.onLine(f.text);
        return;
      case 'block':
        this.transcriptLog.rx(f.header);
        this.transcriptLog.rxBinary(f.data, f.sha256);
        this.onBlock(f.header, f.data);
        return;
      case 'overflow':
        this.transcriptLog.note(`line longer than ${f.limit} bytes dropped: "${f.head}…"`);
        this.emit('framing', f);
        return;
      case 'discarded':
        this.transcriptLog.note(
          `${f.length} ${f.reason === 'late' ? 'late ' : ''}byte(s) of the block announced by ${f.header} discarded` +
            (f.ended === 'complete' ? '' : f.ended === 'banner' ? ` (the module restarted; ${f.announced - f.length} never came)` : ` (${f.announced - f.length} never came)`),
        );
        this.emit('framing', f);
        return;
      case 'misframed-block':
        this.transcriptLog.note(`the ${f.length} bytes announced by ${f.header} were followed by "${f.next}", not CR LF: bytes lost or spliced in; discarded`);
        this.emit('framing', f);
        if (this.inflight?.opts.binary && !this.inflight.probe) {
          const p = this.inflight;
          p.failure ??= new AtResponseError({
            station: this.station,
            port: this.path,
            command: this.mask(p.command),
            expected: `${this.expectedOf(p)}, the data followed by CR LF`,
            seen: `${f.header} and ${f.length} bytes followed by "${f.next}" (bytes lost, or another answer's spliced in)`,
            lastLines: this.transcriptLog.lastReceived(),
          });
        }
        return;
      case 'oversize-block':
        this.transcriptLog.note(`${f.header} announces ${f.length} bytes, more than the ${f.limit} allowed; its bytes are skipped`);
        this.emit('framing', f);
        if (this.inflight?.opts.binary) {
          const p = this.inflight;
          p.failure = new AtResponseError({
            station: this.station,
            port: this.path,
            command: this.mask(p.command),
            expected: `${this.expectedOf(p)}, with <n> ≤ ${f.limit}`,
            seen: f.header,
            lastLines: this.transcriptLog.lastReceived(),
          });
        }
        return;
    }
  }

  private onLine(line: string): void {
    if (line === REBOOT_URC) {
      this.onReboot();
      return;
    }
    const p = this.inflight;
    if (!p) {
      this.routeUnowned(line);
      return;
    }
    if (!p.echoSeen && line === p.command) {
      p.echoSeen = true;
      return;
    }
    if (p.probe) {
      this.onProbeLine(p, p.probe, line);
      return;
    }
    const final = parseFinalResult(line);
    if (final) {
      this.inflight = undefined;
      this.learnEcho(p, final.result === 'OK');
      let result: Error | AtResponse;
      if (final.result !== 'OK') {
        result = new AtCommandError({
          station: this.station,
          port: this.path,
          command: this.mask(p.command),
          expected: this.expectedOf(p),
          final,
          finalLine: line,
          lastLines: this.transcriptLog.lastReceived(),
        });
      } else if (p.failure) {
        result = p.failure;
      } else if (p.opts.binary && !p.block) {
        result = new AtResponseError({
          station: this.station,
          port: this.path,
          command: this.mask(p.command),
          expected: this.expectedOf(p),
          seen: p.lines.length ? `OK after ${this.mask(JSON.stringify(p.lines))} without binary data` : 'OK without binary data',
          lastLines: this.transcriptLog.lastReceived(),
        });
      } else {
        result = { command: p.command, lines: p.lines, ...(p.block ? { block: p.block } : {}) };
      }
      // The next command leaves first: the rest of this one (its timer, its abort listener, its promise)
      // can wait the few microseconds pump() takes, the module cannot (issue 18: the turnaround per block).
      this.noteAnswered(p, result);
      this.pump();
      this.settle(p, result);
      return;
    }
    if (p.opts.binary && p.block && !p.failure && !matchesPrefix(line, this.urcPrefixes)) {
      // Between a read's data and its final result there is only a blank line: anything else means its
      // bytes were cut short or another answer's were spliced in, and the data cannot be trusted.
      p.failure = new AtResponseError({
        station: this.station,
        port: this.path,
        command: this.mask(p.command),
        expected: `${this.expectedOf(p)}, nothing between the data and OK`,
        seen: `${JSON.stringify(this.mask(line).slice(0, 60))} after ${p.block.header} and its ${p.block.data.length} bytes`,
        lastLines: this.transcriptLog.lastReceived(),
      });
      this.emit('unsolicited', line);
      return;
    }
    const prefix = p.opts.prefix;
    if (prefix === 'all') {
      if (matchesPrefix(line, this.urcPrefixes)) this.emit('urc', { line });
      else p.lines.push(line);
      return;
    }
    if (prefix !== undefined && matchesPrefix(line, typeof prefix === 'string' ? [prefix] : prefix)) {
      p.lines.push(line);
      return;
    }
    this.routeUnowned(line);
  }

  private learnEcho(p: Pending, ok: boolean): void {
    // ATE0 itself is echoed (the module still echoes while it takes the line): its effect is what counts.
    const ate = /^ATE([01]?)$/i.exec(p.command);
    if (ate && ok) this.echoState = ate[1] === '1';
    else this.echoState ??= p.echoSeen;
  }

  private onProbeLine(p: Pending, probe: ProbeState, line: string): void {
    if (line.startsWith(probe.marker)) {
      probe.seen = true;
      return;
    }
    const final = parseFinalResult(line);
    if (final && probe.seen) {
      // After the probe's own marker, a final result can only be the probe's.
      this.resynchronised(p);
      return;
    }
    if (final) {
      // The answer to the line the bare CR ended, a late answer of the abandoned command (a module may echo
      // the probe while that command still runs, so even after the probe's echo an OK can be the old one),
      // or the probe's own ERROR, which has no marker. They look alike: the probe's answer gets a whole
      // probe timeout more to arrive; if nothing follows, this one was it.
      probe.answered = line;
      clearTimeout(p.timer);
      p.timer = setTimeout(() => this.onTimeout(p), p.timeoutMs);
    } else if (matchesPrefix(line, this.urcPrefixes)) {
      this.emit('urc', { line });
      return;
    } else if (probe.lines.push(this.mask(line)) > 5) {
      probe.lines.shift();
    }
    // A late answer to the abandoned command: it belongs to nobody.
    this.emit('unsolicited', line);
  }

  private onBlock(header: string, data: Buffer): void {
    const p = this.inflight;
    if (p && !p.probe && p.opts.binary) {
      const prefix = p.opts.prefix;
      const prefixes = prefix === undefined || prefix === 'all' ? undefined : typeof prefix === 'string' ? [prefix] : prefix;
      if (!prefixes || matchesPrefix(header, prefixes)) {
        // One answer carries one block: a second means another answer's came in between.
        if (p.block && !p.failure) {
          p.failure = new AtResponseError({
            station: this.station,
            port: this.path,
            command: this.mask(p.command),
            expected: `${this.expectedOf(p)}: one block`,
            seen: `${p.block.header} and its ${p.block.data.length} bytes, then ${header} and ${data.length} more`,
            lastLines: this.transcriptLog.lastReceived(),
          });
        }
        p.block ??= { header, data };
        return;
      }
    }
    if (matchesPrefix(header, this.urcPrefixes)) {
      this.emit('urc', { line: header, data });
      return;
    }
    this.emit('unsolicited', header);
  }

  private routeUnowned(line: string): void {
    if (matchesPrefix(line, this.urcPrefixes)) this.emit('urc', { line });
    else this.emit('unsolicited', line);
  }

  private onReboot(): void {
    // Whatever was asked before the reboot will never be answered, and no late answer can follow.
    const p = this.inflight;
    this.staleAfter = undefined;
    // ATE is not saved on some modules (EG91xQ, protocol §6): after a boot the echo is the module's default.
    this.echoState = undefined;
    if (p) {
      this.inflight = undefined;
      if (!p.probe) {
        this.settle(
          p,
          new AtResponseError({
            station: this.station,
            port: this.path,
            command: this.mask(p.command),
            expected: this.expectedOf(p),
            seen: 'RDY: the module rebooted before answering',
            lastLines: this.transcriptLog.lastReceived(),
          }),
        );
      } else {
        this.settle(p, { command: p.command, lines: [] });
      }
    }
    this.emit('urc', { line: REBOOT_URC });
    this.emit('reboot');
    this.pump();
  }
}

/** Creates an AtPort and opens it. */
export async function openAtPort(opts: AtPortOptions): Promise<AtPort> {
  const port = new AtPort(opts);
  await port.open();
  return port;
}
