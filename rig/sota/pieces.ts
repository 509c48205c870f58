// Piece accounting of a SOTA download (protocol §2.7, §4.5, §5): the module announces each piece with 10703
// (total size, absolute start, length); the MCU reads it in blocks with AT+QIOTOTARD from its start to its
// end, asks for the next with AT+QIOTUPDATE=2, and after a module reboot everything starts again from byte 0
// (§4.4). This keeps the file being assembled and refuses anything that would leave a hole or a seam in it.
import { ProtocolError } from '../errors.ts';

export interface PieceAnnouncement {
  component: string;
  size: number;
  start: number;
  length: number;
  raw: string;
}

export interface Piece {
  start: number;
  length: number;
  end: number;
}

export class DownloadAssembly {
  readonly file: Buffer;
  private current: Piece | undefined;
  private offset = 0;
  /** Where the next piece must start (0 after a restart). */
  private nextStart = 0;
  /** Bytes [0, contiguous) are in `file`, read in order from the start. */
  private contiguous = 0;

  constructor(
    readonly station: string,
    readonly component: string,
    readonly size: number,
  ) {
    this.file = Buffer.alloc(size);
  }

  get piece(): Piece | undefined {
    return this.current;
  }

  /** The offset of the next block read. */
  get readOffset(): number {
    return this.offset;
  }

  /** A 10703: the piece must be ours, of this file, and start at 0 (a restart) or where the last one ended. */
  accept(e: PieceAnnouncement): Piece {
    const fits = e.length > 0 && e.start + e.length <= this.size;
    const where = e.start === 0 || e.start === this.nextStart;
    if (e.component !== this.component || e.size !== this.size || !fits || !where) {
      throw new ProtocolError('10703 announces a piece the MCU cannot use', {
        station: this.station,
        expected: `"${this.component}",${this.size},${this.nextStart === 0 ? '0' : `0 or ${this.nextStart}`},<length ≥ 1, ending by ${this.size}>`,
        seen: e.raw,
      });
    }
    if (e.start === 0) this.contiguous = 0;
    this.current = { start: e.start, length: e.length, end: e.start + e.length };
    this.offset = e.start;
    return this.current;
  }

  /** Length of the next block read, at most `blockSize`, never past the piece's end; 0 when the piece is read. */
  nextBlock(blockSize: number): number {
    return this.blockAfter(this.offset, 0, blockSize);
  }

  /** The block after [start, start+length) of the current piece, had that one come back whole: 0 at its end. */
  blockAfter(start: number, length: number, blockSize: number): number {
    const p = this.current;
    if (!p) return 0;
    return Math.max(0, Math.min(blockSize, p.end - (start + length)));
  }

  /** A block's bytes as AT+QIOTOTARD returned them, at the offset it was asked for. */
  store(start: number, data: Uint8Array): void {
    const p = this.current;
    if (!p || start !== this.offset || data.length === 0 || start + data.length > p.end) {
      throw new ProtocolError('a block does not continue the piece being read', {
        station: this.station,
        expected: p ? `bytes from ${this.offset} up to ${p.end}` : 'no block: no piece announced',
        seen: `${data.length} bytes at ${start}`,
      });
    }
    this.file.set(data, start);
    this.offset = start + data.length;
    if (start === this.contiguous) this.contiguous = this.offset;
  }

  /** The current piece is read to its end. */
  get pieceDone(): boolean {
    return this.current !== undefined && this.offset >= this.current.end;
  }

  /** Every byte of the file has been read, in order. */
  get complete(): boolean {
    return this.contiguous >= this.size;
  }

  /** After AT+QIOTUPDATE=2: the next piece starts where this one ended. */
  next(): void {
    if (!this.pieceDone) throw new Error('DownloadAssembly.next(): the piece is not read to its end');
    this.nextStart = this.current!.end;
    this.current = undefined;
  }

  /** The module lost the download (a reboot): the next piece is announced from byte 0 again. */
  restart(): void {
    this.current = undefined;
    this.offset = 0;
    this.nextStart = 0;
    this.contiguous = 0;
  }
}
