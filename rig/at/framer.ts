// Turns the bytes a module sends into lines and counted binary blocks. It works on the Buffers as they
// arrive (Buffer.indexOf finds terminators natively) and never builds strings byte by byte, so it keeps up
// with a UART at line rate. Everything it holds is bounded: a line longer than `maxLineLength` is dropped
// and reported, and a block is only collected when its announced length is within `maxBinaryLength`.

const CR = 0x0d;
const LF = 0x0a;

export type Frame =
  /** A text line, terminator stripped; empty lines are not reported. */
  | { kind: 'line'; text: string }
  /** A header line announcing counted binary data, and exactly that many raw bytes that followed it. */
  | { kind: 'block'; header: string; data: Buffer }
  /** A line exceeded the limit; its bytes up to the next terminator were dropped. */
  | { kind: 'overflow'; head: string; limit: number }
  /** A header announced more binary data than allowed; it was passed on as an ordinary line. */
  | { kind: 'oversize-block'; header: string; length: number; limit: number }
  /**
   * (checkTrailer only) The counted bytes were not followed by CR or LF: the header was not what it seemed
   * (cut short by a power loss: `+QIOTOTARD: 2048,10` of `…,1024`). The bytes are framed again as lines.
   */
  | { kind: 'unterminated-block'; header: string; data: Buffer };

export interface FramerOptions {
  /** Bytes per line, terminator excluded. */
  maxLineLength?: number;
  /** Bytes per counted binary block. */
  maxBinaryLength?: number;
  /**
   * Says whether a line is a header followed by counted binary data, and how many bytes; undefined for
   * ordinary lines. Called synchronously for each line, so binary mode starts at the very next byte.
   */
  binaryLength?: (line: string) => number | undefined;
  /**
   * Hold each block until the next byte and require it to be CR or LF, as every block of the protocol is
   * (§2.7: data, then CR LF, then OK). For a passive tap, which cannot ask again; an AtPort knows the length
   * it asked for and does not need it.
   */
  checkTrailer?: boolean;
}

export const DEFAULT_MAX_LINE_LENGTH = 4096;
export const DEFAULT_MAX_BINARY_LENGTH = 64 * 1024;

/** `+QIOTOTARD: <start>,<len>` and `+QIOTEVT: 5,<code>,<len>` (unbuffered downlink data) carry raw bytes. */
export function quecthingBinaryLength(line: string): number | undefined {
  let m: RegExpExecArray | null;
  if (line.startsWith('+QIOTOTARD:')) {
    m = /^\+QIOTOTARD: ?\d+,(\d+)$/.exec(line);
    return m ? Number(m[1]) : undefined;
  }
  if (line.startsWith('+QIOTEVT:')) {
    m = /^\+QIOTEVT: ?5,(?:10200|10210),(\d+)$/.exec(line);
    return m ? Number(m[1]) : undefined;
  }
  return undefined;
}

function printableHead(bytes: Buffer): string {
  return bytes.subarray(0, 40).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
}

export class AtFramer {
  private readonly maxLine: number;
  private readonly maxBinary: number;
  private readonly binaryLength: (line: string) => number | undefined;

  /** Pieces of the line being assembled (only when a line spans chunks). */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Dropping an overlong line until its terminator. */
  private discarding = false;
  /** The previous line ended in CR: a LF right after it belongs to that terminator. */
  private afterCr = false;
  /** Binary block being filled. */
  private block: { header: string; data: Buffer; filled: number } | undefined;
  private readonly checkTrailer: boolean;
  /** A complete block waiting for the byte after it (checkTrailer). */
  private held: { header: string; data: Buffer } | undefined;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    options: FramerOptions = {},
  ) {
    this.maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.maxBinary = options.maxBinaryLength ?? DEFAULT_MAX_BINARY_LENGTH;
    this.binaryLength = options.binaryLength ?? quecthingBinaryLength;
    this.checkTrailer = options.checkTrailer ?? false;
  }

  /** True while a counted binary block is incomplete (or, with checkTrailer, waits for the byte after it). */
  get inBlock(): boolean {
    return this.block !== undefined || this.held !== undefined;
  }

  /** With checkTrailer: a block complete but for its trailer, when the line went quiet: reported as it is. */
  flushHeld(): boolean {
    const h = this.held;
    if (!h) return false;
    this.held = undefined;
    this.onFrame({ kind: 'block', header: h.header, data: h.data });
    return true;
  }

  /** Bytes the incomplete counted block still waits for; 0 when none is open. */
  get blockRemaining(): number {
    return this.block ? this.block.data.length - this.block.filled : 0;
  }

  /**
   * Ends the incomplete counted block without reporting it and returns its header and the bytes that came;
   * framing goes on with the next byte as the start of a line (a passive tap gives the bytes back as lines).
   */
  takeBlock(): { header: string; data: Buffer } | undefined {
    const b = this.block;
    if (!b) return undefined;
    this.block = undefined;
    return { header: b.header, data: b.data.subarray(0, b.filled) };
  }

  /** Forgets any partial line or block (after a timeout, or when the port is reopened). */
  reset(): void {
    this.pending = [];
    this.pendingLength = 0;
    this.discarding = false;
    this.afterCr = false;
    this.block = undefined;
    this.held = undefined;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    // Positions of the next CR and LF at or after `pos`; -1 once none is left in this chunk. Kept across
    // lines so each byte of the chunk is scanned by indexOf at most once per terminator kind.
    let nextCr = -2;
    let nextLf = -2;
    while (pos < end) {
      if (this.held) {
        const h = this.held;
        this.held = undefined;
        if (chunk[pos] === CR || chunk[pos] === LF) this.onFrame({ kind: 'block', header: h.header, data: h.data });
        else {
          this.onFrame({ kind: 'unterminated-block', header: h.header, data: h.data });
          // Its bytes start where the header's terminator left off: a fresh line.
          this.push(h.data);
        }
        nextCr = nextLf = -2;
      }
      if (this.afterCr) {
        this.afterCr = false;
        if (chunk[pos] === LF) {
          pos++;
          continue;
        }
      }
      if (this.block) {
        const b = this.block;
        const n = Math.min(end - pos, b.data.length - b.filled);
        chunk.copy(b.data, b.filled, pos, pos + n);
        b.filled += n;
        pos += n;
        if (b.filled === b.data.length) {
          this.block = undefined;
          if (this.checkTrailer) this.held = { header: b.header, data: b.data };
          else this.onFrame({ kind: 'block', header: b.header, data: b.data });
        }
        nextCr = nextLf = -2;
        continue;
      }
      if (nextCr !== -1 && nextCr < pos) nextCr = chunk.indexOf(CR, pos);
      if (nextLf !== -1 && nextLf < pos) nextLf = chunk.indexOf(LF, pos);
      const stop = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (stop === -1) {
        this.accumulate(chunk.subarray(pos, end));
        return;
      }
      const piece = chunk.subarray(pos, stop);
      pos = stop + 1;
      if (chunk[stop] === CR) this.afterCr = true;
      this.endLine(piece);
    }
  }

  private accumulate(piece: Buffer): void {
    if (this.discarding || piece.length === 0) return;
    if (this.pendingLength + piece.length > this.maxLine) {
      this.overflow(piece);
      return;
    }
    // The chunk is owned by the stream; copying keeps a partial line from pinning large read buffers.
    this.pending.push(Buffer.from(piece));
    this.pendingLength += piece.length;
  }

  private overflow(lastPiece: Buffer): void {
    const head = this.pending.length > 0 ? Buffer.concat([...this.pending, lastPiece.subarray(0, 40)]) : lastPiece;
    this.pending = [];
    this.pendingLength = 0;
    this.discarding = true;
    this.onFrame({ kind: 'overflow', head: printableHead(head), limit: this.maxLine });
  }

  private endLine(piece: Buffer): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let bytes = piece;
    if (this.pendingLength > 0) {
      if (this.pendingLength + piece.length > this.maxLine) {
        this.overflow(piece);
        this.discarding = false;
        return;
      }
      this.pending.push(piece);
      bytes = Buffer.concat(this.pending, this.pendingLength + piece.length);
      this.pending = [];
      this.pendingLength = 0;
    } else if (piece.length > this.maxLine) {
      this.overflow(piece);
      this.discarding = false;
      return;
    }
    if (bytes.length === 0) return;
    // Invalid UTF-8 (noise at power-on) decodes to U+FFFD: never an exception, never a lost terminator.
    const text = bytes.toString('utf8');
    const length = this.binaryLength(text);
    if (length === undefined) {
      this.onFrame({ kind: 'line', text });
      return;
    }
    if (length > this.maxBinary) {
      this.onFrame({ kind: 'oversize-block', header: text, length, limit: this.maxBinary });
      this.onFrame({ kind: 'line', text });
      return;
    }
    if (length === 0) {
      this.onFrame({ kind: 'block', header: text, data: Buffer.alloc(0) });
      return;
    }
    this.block = { header: text, data: Buffer.allocUnsafe(length), filled: 0 };
  }
}
