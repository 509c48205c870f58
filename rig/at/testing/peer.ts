// A scripted module for tests: it receives what the rig writes, splits it into command lines at `\r`,
// and answers through a script. An empty line is no command (V.250: no "AT" prefix), so a real module
// ignores it and so does the peer. Answers go out in pieces of 1..7 bytes (seeded, so a failure can be
// replayed) and in order, whatever transport carries them (binding-mock or a real pty).

/** A small seeded PRNG (mulberry32): the same seed gives the same fragmentation on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `bytes` into pieces of 1..maxPiece bytes. */
export function fragment(bytes: Buffer, random: () => number, maxPiece = 7): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const n = 1 + Math.floor(random() * maxPiece);
    out.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

export type Script = (command: string, peer: ScriptedPeer) => void;

export class ScriptedPeer {
  /** Every command line received, in order (terminator stripped). */
  readonly received: string[] = [];
  private partial = '';
  private dropSkip = 0;
  private dropCount = 0;
  private sending: Promise<void> = Promise.resolve();
  private waiters: { n: number; resolve: () => void }[] = [];

  /**
   * @param transmit delivers one piece to the rig; resolves once it has been handed to the transport
   * @param random seeded source for fragment sizes; undefined sends each answer whole
   */
  constructor(
    private readonly transmit: (piece: Buffer) => Promise<void>,
    private script: Script = () => {},
    private readonly random: (() => number) | undefined = undefined,
  ) {}

  setScript(script: Script): void {
    this.script = script;
  }

  /** Loses `count` of the next bytes from the rig after letting `skip` through, as a noisy line does. */
  dropFromRig(count: number, skip = 0): void {
    this.dropCount = count;
    this.dropSkip = skip;
  }

  /** Feeds the bytes the rig wrote. */
  fromRig(bytes: Buffer): void {
    let text = bytes.toString('latin1');
    if (this.dropCount > 0) {
      const pass = Math.min(this.dropSkip, text.length);
      const dropped = Math.min(this.dropCount, text.length - pass);
      this.dropSkip -= pass;
      this.dropCount -= dropped;
      text = text.slice(0, pass) + text.slice(pass + dropped);
    }
    this.partial += text;
    let i: number;
    while ((i = this.partial.indexOf('\r')) >= 0) {
      const line = this.partial.slice(0, i);
      this.partial = this.partial.slice(i + 1);
      if (line === '') continue;
      this.received.push(line);
      for (const w of this.waiters.filter((w) => this.received.length >= w.n)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
      this.script(line, this);
    }
  }

  /** Queues bytes for the rig, after everything queued before. Resolves when they are all handed over. */
  send(data: Buffer | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const pieces = this.random ? fragment(bytes, this.random) : [bytes];
    this.sending = this.sending.then(async () => {
      for (const piece of pieces) await this.transmit(piece);
    });
    return this.sending;
  }

  /** Resolves once `n` command lines in total have been received. */
  receivedCount(n: number): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Resolves when everything queued so far has been handed over. */
  flushed(): Promise<void> {
    return this.sending;
  }
}

/** `\r\n<line>\r\n` for each line, the way a module frames its answers. */
export function answer(...lines: string[]): string {
  return lines.map((l) => `\r\n${l}\r\n`).join('');
}
