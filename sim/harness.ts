// Drives a real sim process the way a test bench would: spawns `sim/main.ts`, reads its JSON line, opens the
// rig's end of the module pty with serialport, and offers byte-level send/expect with bounded, event-driven
// waits. Used by the sim's conformance tests; it deliberately knows nothing of rig/at.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SerialPort } from 'serialport';
import { waitOn } from './wait.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface SimInfo {
  module: { port: string; imei: string; baud: number };
  admin: { url: string };
  jtag?: { host: string; port: number; target: 'stm32f1x' | 'stm32f4x' };
  mcu?: {
    taps: { mcuToModule: string; moduleToMcu: string; baud: number };
    console: { port: string; baud: number };
    layout: Record<string, unknown> | null;
    why?: string;
    bootRecord?: string;
  };
  [key: string]: unknown;
}

/** Bytes received on a port, with bounded, event-driven waits on them. */
export class ByteLog {
  /** Everything received since the port was opened. */
  rx = Buffer.alloc(0);
  private waiters = new Set<() => void>();

  constructor(readonly name: string) {}

  protected push(chunk: Buffer): void {
    this.rx = Buffer.concat([this.rx, chunk]);
    for (const w of [...this.waiters]) w();
  }

  /** More context for a failed wait (the sim's stderr tail). */
  protected detail(): string {
    return '';
  }

  get text(): string {
    return this.rx.toString('latin1');
  }

  mark(): number {
    return this.rx.length;
  }

  since(mark: number): string {
    return this.rx.subarray(mark).toString('latin1');
  }

  /**
   * Waits until the bytes received after `from` contain `pattern`; resolves with the offset just past the
   * match. Bounded by `timeoutMs`; the error shows what was expected and the tail of what was seen.
   */
  waitFor(pattern: string | RegExp, timeoutMs = 5000, from = 0): Promise<{ end: number; match: RegExpExecArray | string }> {
    const re = typeof pattern === 'string' ? undefined : new RegExp(pattern.source, pattern.flags.replace('g', ''));
    return waitOn(
      this.waiters,
      () => {
        const text = this.rx.subarray(from).toString('latin1');
        if (typeof pattern === 'string') {
          const i = text.indexOf(pattern);
          return i < 0 ? undefined : { end: from + i + pattern.length, match: pattern };
        }
        const m = re!.exec(text);
        return m ? { end: from + m.index + m[0].length, match: m } : undefined;
      },
      timeoutMs,
      () =>
        `${this.name}: expected ${JSON.stringify(String(pattern))} within ${timeoutMs} ms; seen since offset ${from}: ${JSON.stringify(this.rx.subarray(from).toString('latin1').slice(-600))}${this.detail()}`,
    );
  }
}

export class SimHandle extends ByteLog {
  stderr = '';
  private exit: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly info: SimInfo,
    public port: SerialPort,
  ) {
    super('sim module');
    this.listen(port);
    child.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString('utf8');
      if (this.stderr.length > 200_000) this.stderr = this.stderr.slice(-100_000);
    });
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  private listen(port: SerialPort): void {
    keepReadableWhileWriting(port);
    port.on('data', (chunk: Buffer) => this.push(chunk));
  }

  protected override detail(): string {
    return `\nsim stderr tail: ${this.stderr.slice(-1500)}`;
  }

  private readers: PortReader[] = [];

  /** Opens one of the sim's other rig-side ptys (a tap, the console) to read what it carries. */
  async openReader(portPath: string, name: string): Promise<PortReader> {
    const reader = await PortReader.open(portPath, name, () => this.detail());
    this.readers.push(reader);
    return reader;
  }

  /** Closes the rig's end and opens it again, as a rig does after a USB re-enumeration. */
  async reopen(): Promise<void> {
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
    const port = new SerialPort({ path: this.info.module.port, baudRate: this.info.module.baud || 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    this.port = port;
    this.listen(port);
  }

  async send(data: string | Buffer): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.port.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Sends a command line and waits for its final result; returns the bytes after the command was sent. */
  async command(line: string, final: RegExp = /\r\n(OK|ERROR|\+CME ERROR: \d+)\r\n/, timeoutMs = 5000): Promise<string> {
    const from = this.mark();
    await this.send(`${line}\r`);
    const { end } = await this.waitFor(final, timeoutMs, from);
    return this.rx.subarray(from, end).toString('latin1');
  }

  async admin<T = unknown>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.info.admin.url}${p}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  /** Admin call that must succeed. */
  async api<T = unknown>(method: string, p: string, body?: unknown): Promise<T> {
    const r = await this.admin<T>(method, p, body);
    if (r.status !== 200) throw new Error(`admin ${method} ${p} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then the exit code (bounded; SIGKILL after 5 s). */
  async stop(): Promise<number | null> {
    for (const r of this.readers.splice(0)) await r.close();
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
    if (!this.alive()) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exit;
    clearTimeout(timer);
    return code;
  }
}

/** A rig-side pty only read from (a UART tap, the MCU console). */
export class PortReader extends ByteLog {
  private constructor(
    name: string,
    private readonly port: SerialPort,
    private readonly more: () => string,
  ) {
    super(name);
    port.on('data', (chunk: Buffer) => this.push(chunk));
  }

  static async open(portPath: string, name: string, more: () => string = () => ''): Promise<PortReader> {
    const port = new SerialPort({ path: portPath, baudRate: 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new PortReader(name, port, more);
  }

  protected override detail(): string {
    return this.more();
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
  }
}

/** Starts `sim/main.ts` with the given options and opens the module's rig end. */
export async function startSim(args: string[], timeoutMs = 10_000): Promise<SimHandle> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'sim/main.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const onErr = (c: string): void => void (stderr += c);
  child.stderr.on('data', onErr);
  const info = await new Promise<SimInfo>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sim printed no JSON line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)) as SimInfo);
        } catch (err) {
          reject(new Error(`sim's first stdout line is not JSON: ${JSON.stringify(out.slice(0, nl))}`));
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sim exited with ${code} before its JSON line; stderr: ${stderr.slice(-2000)}`));
    });
  });
  child.stderr.off('data', onErr);
  const port = new SerialPort({ path: info.module.port, baudRate: info.module.baud || 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const handle = new SimHandle(child, info, port);
  handle.stderr = stderr;
  return handle;
}

/** Power-cycles the module through the admin API and waits for its RDY; returns the offset after RDY. */
export async function powerCycle(sim: SimHandle, timeoutMs = 5000): Promise<number> {
  const from = sim.mark();
  await sim.api('POST', '/faults', { kind: 'power-off' });
  await sim.api('POST', '/faults', { kind: 'power-on' });
  return (await sim.waitFor('\r\nRDY\r\n', timeoutMs, from)).end;
}

/** Waits until the module answers `AT` (it may still be booting), bounded by `attempts` tries. */
export async function awaitReady(sim: SimHandle, attempts = 20): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    try {
      await sim.command('AT', /\r\nOK\r\n/, 500);
      return;
    } catch {
      // booting: input is ignored until RDY
    }
  }
  throw new Error(`sim module: no OK to AT after ${attempts} tries; seen: ${JSON.stringify(sim.text.slice(-300))}`);
}

/**
 * The MCU's start-up part of the SOTA dialogue (§5): product info, QIOTREG=1, wait for 3,10200, report the
 * MCU versions. Returns the offset after the last OK.
 */
export async function register(sim: SimHandle, versions: Record<string, string> = { STM32: '1_0_0' }): Promise<number> {
  await awaitReady(sim);
  await expectOk(sim, 'AT+QIOTCFG="productinfo","p1test","secret1"');
  const from = sim.mark();
  await expectOk(sim, 'AT+QIOTREG=1');
  await sim.waitFor('+QIOTEVT: 3,10200\r\n', 5000, from);
  for (const [comp, ver] of Object.entries(versions)) await expectOk(sim, `AT+QIOTMCUVER="${comp}","${ver}"`);
  return sim.mark();
}

export async function expectOk(sim: SimHandle, line: string): Promise<string> {
  const r = await sim.command(line);
  if (!r.endsWith('\r\nOK\r\n')) throw new Error(`sim module: expected OK to ${line}, got ${JSON.stringify(r)}`);
  return r;
}

/** Uploads a package and returns its id and hashes. */
export async function addPackage(
  sim: SimHandle,
  p: { component: string; version: string; data: Buffer; type?: 'full' | 'delta'; sourceVersion?: string },
): Promise<{ id: string; size: number; md5: string; crc32: number; crc: number; sha256: string }> {
  return sim.api('POST', '/packages', {
    component: p.component,
    version: p.version,
    type: p.type ?? 'full',
    ...(p.sourceVersion ? { sourceVersion: p.sourceVersion } : {}),
    data: p.data.toString('base64'),
  });
}

/** Deterministic pseudo-random bytes (xorshift32), so packages are reproducible. */
export function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * serialport's Linux poller restarts its libuv poll with only the event asked for last, so a write that waits
 * for `writable` (a burst bigger than the tty's queue) stops the port from reading; with the module echoing
 * that burst back, both ends of the pty then wait for ever. The rig's ports avoid it the same way
 * (rig/at/hangup.ts); this test client does it for itself: every event a listener waits for, each time.
 */
function keepReadableWhileWriting(port: SerialPort): void {
  const poller = (port.port as unknown as { poller?: { poll?: (flags?: number) => void; listenerCount(e: string): number } } | undefined)?.poller;
  const poll = poller?.poll?.bind(poller);
  if (!poller || !poll) return;
  poller.poll = (flags = 0) => poll(flags | (poller.listenerCount('readable') > 0 ? 1 : 0) | (poller.listenerCount('writable') > 0 ? 2 : 0) | (poller.listenerCount('disconnect') > 0 ? 4 : 0));
}

let syncCounter = 0;
/**
 * Waits until the module has worked through everything sent so far: echo on, then an unknown command with a
 * unique name, whose echo and ERROR can only come after all earlier input. Bounded retries, because input
 * sent while the module reboots (AT+CFUN=1,1 in a fuzz run) is lost.
 */
export async function sync(sim: SimHandle, attempts = 20): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    const nonce = `AT+SYNC${process.pid}X${++syncCounter}`;
    const from = sim.mark();
    await sim.send(`\rATE1\r${nonce}\r`);
    try {
      await sim.waitFor(`${nonce}\r\r\nERROR\r\n`, 1000, from);
      return;
    } catch {
      // rebooting or still busy: try again
    }
  }
  throw new Error(`sim module: never in sync after ${attempts} tries; seen: ${JSON.stringify(sim.text.slice(-300))}`);
}

/**
 * A starter for sims that live for one test: every sim it started is stopped after each test. The runner's
 * `afterEach` is passed in so the harness stays free of any test framework. With `expectCleanExit` (the
 * default) a sim that does not exit 0 on stop fails the test. `afterStop` runs once they have all stopped
 * (e.g. to remove their state directories).
 */
export function simsPerTest(
  afterEach: (fn: () => Promise<void>) => void,
  baseArgs: readonly string[],
  { expectCleanExit = true, afterStop }: { expectCleanExit?: boolean; afterStop?: () => void } = {},
): (args?: readonly string[]) => Promise<SimHandle> {
  let started: SimHandle[] = [];
  afterEach(async () => {
    const sims = started;
    started = [];
    const codes = await Promise.all(sims.map((s) => s.stop()));
    afterStop?.();
    if (expectCleanExit && !codes.every((c) => c === 0)) {
      throw new Error(`a sim did not stop cleanly: expected exit code 0 from each, saw ${codes.join(', ')}`);
    }
  });
  return async (args = []) => {
    const s = await startSim([...baseArgs, ...args]);
    started.push(s);
    return s;
  };
}

/** True while `pid` runs: not gone, not a zombie waiting for its reaper. Read from /proc. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Re-reads /proc until none of `pids` runs, bounded; returns those still running. For processes that are
 * not our children (a sim's socats, a holder's OpenOCD), whose exit no event reports to us.
 */
export async function stillRunningAfter(pids: number[], withinMs: number): Promise<number[]> {
  const end = performance.now() + withinMs;
  let left = pids.filter(running);
  while (left.length > 0 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    left = left.filter(running);
  }
  return left;
}

/**
 * The first line a helper process prints on stdout (its JSON report), bounded; rejects with its stderr tail
 * when it prints nothing in time or exits first. `what` says what it should have done by then.
 */
export function firstLine(child: ChildProcess, withinMs: number, what: string, stderr: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the holder printed nothing within ${withinMs / 1000} s; stderr: ${stderr().slice(-1500)}`)), withinMs);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.slice(0, out.indexOf('\n')));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the holder exited with ${code} before ${what}; stderr: ${stderr().slice(-1500)}`));
    });
  });
}

/** Deterministic pseudo-random bytes (xorshift32) with a vector table: SP 0x20001000, reset at 0x08000101. */
export function firmwareImage(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  b.writeUInt32LE(0x2000_1000, 0);
  b.writeUInt32LE(0x0800_0101, 4);
  return b;
}
