// Framing one direction of a UART the rig only listens to (a tap on the MCU↔module lines, dut mode): it
// never sends, so it cannot ask what a line means; it decides from the bytes alone, as a logic analyser's
// AT decoder would. MCU → module carries commands; module → MCU carries the echo of those commands (when the
// echo is on), information answers, final results, URCs and `+QIOTOTARD: <start>,<n>` headers followed by
// exactly n raw bytes (protocol §2.7), which are counted, never read as text.
//
// A tap may start listening in the middle of a line or of a binary block, and a line may carry noise (a
// module booting, a cable plugged in): the first line before any terminator is reported as noise, and so is
// every line that is not printable text. A block whose bytes stop coming (the module lost power mid-answer)
// would swallow what follows; `abandonBlock()` (the tap calls it when the line stays quiet longer than the
// rest of the block needs at its baud) gives its bytes back to the line framing, so nothing is lost.
import { AtFramer, quecthingBinaryLength } from './framer.ts';
import type { Frame } from './framer.ts';
import { DEFAULT_URC_PREFIXES, matchesPrefix, parseFinalResult } from './lines.ts';

/** Which wire: the MCU's TX line (to the module) or the module's TX line (to the MCU). */
export type TapDirection = 'mcu' | 'module';

export type TapFrameKind =
  /** MCU → module: an AT command line. */
  | 'command'
  /** Module → MCU: the module echoing a command. */
  | 'echo'
  /** Module → MCU: OK, ERROR, +CME ERROR: … */
  | 'final'
  /** Module → MCU: an information line answering the command in flight. */
  | 'answer'
  /** Module → MCU: an unsolicited line (+QIOTEVT, RDY …). */
  | 'urc'
  /** Module → MCU: `+QIOTOTARD: <start>,<n>` and its n bytes. */
  | 'block'
  /** Not a line either side sends: a partial line at the start, garbled bytes, an abandoned block. */
  | 'noise';

export interface TapFrame {
  /** performance.now() of the chunk that completed the frame. */
  t: number;
  dir: TapDirection;
  kind: TapFrameKind;
  /** The line (terminator stripped), a block's header, or a printable rendering of noise. */
  text: string;
  /** A block's bytes. */
  data?: Buffer;
  /** A block's file offset and length, from its header. */
  block?: { start: number; length: number };
}

export interface PassiveFramerOptions {
  /** URC prefixes (default: the AT port's). */
  urcPrefixes?: readonly string[];
  maxLineLength?: number;
  maxBinaryLength?: number;
}

/** Printable ASCII and tabs, no control bytes, no U+FFFD from invalid UTF-8: what an AT line is made of. */
function printable(text: string): boolean {
  return /^[\x20-\x7e\t]*$/.test(text);
}

function render(text: string): string {
  const shown = text.slice(0, 60).replace(/[^\x20-\x7e]/g, '.');
  return text.length > 60 ? `${shown}…` : shown;
}

/** The prefix of an information answer a command expects: `AT+QIOTSTATE?` → `+QIOTSTATE:`. */
function answerPrefix(command: string): string | undefined {
  const m = /^AT([+&$%#^][A-Z0-9]+)/i.exec(command);
  return m ? `${m[1]!.toUpperCase()}:` : undefined;
}

export class PassiveFramer {
  private readonly framer: AtFramer;
  private readonly urcPrefixes: readonly string[];
  /** No line seen yet: the first may have begun before the tap listened. */
  private synced = false;
  private now = 0;
  /** The command the module is answering, learned from its echo or told by the other direction. */
  private inFlight: string | undefined;

  constructor(
    readonly dir: TapDirection,
    private readonly onFrame: (frame: TapFrame) => void,
    options: PassiveFramerOptions = {},
  ) {
    this.urcPrefixes = options.urcPrefixes ?? DEFAULT_URC_PREFIXES;
    this.framer = new AtFramer((f) => this.frame(f), {
      ...(options.maxLineLength !== undefined ? { maxLineLength: options.maxLineLength } : {}),
      ...(options.maxBinaryLength !== undefined ? { maxBinaryLength: options.maxBinaryLength } : {}),
      // Only the module sends counted data. A header cannot be the tail of another line (nothing a module
      // sends has `+QIOTOTARD:` inside it), so even the tap's first line may open a block.
      binaryLength: dir === 'module' ? quecthingBinaryLength : () => undefined,
    });
  }

  /** True while a counted block is incomplete. */
  get inBlock(): boolean {
    return this.framer.inBlock;
  }

  /** Bytes a block still waits for (0 when none is open). */
  get blockRemaining(): number {
    return this.framer.blockRemaining;
  }

  /** The MCU sent `command` (seen on the other direction): the module's next answers belong to it. */
  commandSent(command: string): void {
    this.inFlight = command;
  }

  push(chunk: Buffer, t = performance.now()): void {
    this.now = t;
    this.framer.push(chunk);
  }

  /**
   * Gives up the block in progress: its header and bytes are framed again as lines (the header as noise,
   * since what it announced never came). Called when the line went quiet before the block was complete.
   */
  abandonBlock(t = performance.now()): void {
    this.now = t;
    const partial = this.framer.takeBlock();
    if (!partial) return;
    this.now = t;
    this.onFrame({ t, dir: this.dir, kind: 'noise', text: `${partial.header} (only ${partial.data.length} of its bytes came)` });
    // The bytes begin inside the data: their first line is judged as a tap's first line is.
    this.synced = false;
    this.framer.push(partial.data);
  }

  private frame(f: Frame): void {
    const t = this.now;
    const dir = this.dir;
    switch (f.kind) {
      case 'overflow':
        this.onFrame({ t, dir, kind: 'noise', text: `${f.head}… (a line longer than ${f.limit} bytes)` });
        return;
      case 'oversize-block':
        this.onFrame({ t, dir, kind: 'noise', text: `${f.header} (announces ${f.length} bytes, more than ${f.limit}: skipped)` });
        return;
      case 'misframed-block':
        // Not followed by CR LF: the header was not what it seemed (cut short by a power loss: `…,10` of
        // `…,1024`). Its bytes are framed again as lines, the first judged as a tap's first line is; the
        // framer goes on with the byte after them.
        this.onFrame({ t, dir, kind: 'noise', text: `${f.header} (not followed by CR LF after its ${f.length} bytes: not a block)` });
        this.synced = false;
        this.framer.push(f.data);
        return;
      case 'discarded':
        // The oversize header was reported already; the count is what the framer skipped.
        return;
      case 'block': {
        this.synced = true;
        const m = /^\+QIOTOTARD: ?(\d+),(\d+)$/.exec(f.header);
        const block = m ? { start: Number(m[1]), length: Number(m[2]) } : { start: -1, length: f.data.length };
        this.onFrame({ t, dir, kind: 'block', text: f.header, data: f.data, block });
        return;
      }
      case 'line':
        break;
    }
    const text = f.text;
    if (!this.synced) {
      this.synced = true;
      // A line that could not have begun mid-way (a whole command, a final result, a URC) is kept.
      if (!this.whole(text)) {
        this.onFrame({ t, dir, kind: 'noise', text: `${render(text)} (partial line)` });
        return;
      }
    }
    if (!printable(text)) {
      this.onFrame({ t, dir, kind: 'noise', text: render(text) });
      return;
    }
    this.onFrame({ t, dir, kind: this.classify(text), text });
  }

  private whole(text: string): boolean {
    if (!printable(text)) return false;
    if (this.dir === 'mcu') return /^AT/i.test(text);
    return /^AT/i.test(text) || parseFinalResult(text) !== undefined || matchesPrefix(text, this.urcPrefixes) !== undefined;
  }

  private classify(text: string): TapFrameKind {
    if (this.dir === 'mcu') return /^AT/i.test(text) ? 'command' : 'noise';
    if (/^AT/i.test(text)) {
      this.inFlight = text;
      return 'echo';
    }
    if (parseFinalResult(text)) {
      this.inFlight = undefined;
      return 'final';
    }
    const urc = matchesPrefix(text, this.urcPrefixes);
    // `+CPIN: READY` answers AT+CPIN? and is also a URC: the command in flight decides.
    if (urc !== undefined && !(this.inFlight !== undefined && answerPrefix(this.inFlight) === urc)) return 'urc';
    return 'answer';
  }
}
