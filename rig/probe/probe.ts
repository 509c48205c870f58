// The station's debug probe: what the rig does with an STM32 over SWD/JTAG, on top of one long-lived
// OpenOCD session. Every operation has a deadline (size-dependent for reads and writes) and honours an
// AbortSignal; when either fires mid-command OpenOCD is killed, and `restart()` brings up a fresh one.

import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { scratchPrefix } from '../scratch.ts';
import path from 'node:path';

import { AbortedError, InfrastructureError } from '../errors.ts';
import type { ProbeSetup } from './args.ts';
import { OpenOcdCommandError, RegionMismatchError, hex32 } from './errors.ts';
import type { ByteDifference, RegionComparison } from './errors.ts';
import { ProbeLog } from './log.ts';
import type { ProbeLogOptions } from './log.ts';
import { OpenOcdSession } from './openocd.ts';
import type { ExitInfo } from './openocd.ts';
import { parseTclList, tclWord } from './tcl.ts';

/** The least time left in an operation's deadline that a Tcl command is started with (a loaded machine's round trip). */
const MIN_COMMAND_MS = 50;

export interface ProbeTimeouts {
  /** Spawn to ready, `init` included. */
  startMs: number;
  /** One short command (examine step, reset, halt, a few words of memory), and the fixed part of long ones. */
  commandMs: number;
  /** Grace for OpenOCD's own shutdown on close. */
  shutdownMs: number;
  /** Slowest acceptable read-back; read and verify deadlines grow with size at this rate. */
  readBytesPerSecond: number;
  /** Slowest acceptable flash programming (erase included); program deadlines grow with size at this rate. */
  programBytesPerSecond: number;
  /**
   * Flash erase granules the driver cannot see (F4 erases and pads to whole sectors, up to 128 KiB, before
   * programming): added to every program and erase deadline.
   */
  eraseMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ProbeTimeouts> = {
  startMs: 15_000,
  commandMs: 10_000,
  shutdownMs: 3_000,
  readBytesPerSecond: 16 * 1024,
  programBytesPerSecond: 1024,
  eraseMs: 60_000,
};

export interface ProbeOptions extends ProbeSetup {
  station: string;
  /** OpenOCD binary; default `openocd` on PATH. */
  openocd?: string;
  /** Parent of the probe's scratch directory (read-back and image files); default the OS temp dir. */
  runDir?: string;
  timeouts?: Partial<ProbeTimeouts>;
  log?: ProbeLogOptions;
  /** See OpenOcdOptions.parentDeathSignal. */
  parentDeathSignal?: boolean;
  /** See OpenOcdOptions.linkLostPatterns. */
  linkLostPatterns?: readonly RegExp[];
}

export interface OpOptions {
  signal?: AbortSignal;
  /** The whole operation's deadline; the default depends on the operation and its size. */
  timeoutMs?: number;
}

export type TargetState = 'running' | 'halted' | 'reset' | 'debug-running' | 'unknown';
export type ResetMode = 'halt' | 'run' | 'init';

export interface TargetInfo {
  /** The CPU TAP's JTAG IDCODE or the SWD DPIDR, as OpenOCD logged it at init, else from `scan_chain`; undefined if neither has it. */
  idcode: number | undefined;
  /** SCB CPUID (0xE000ED00). */
  cpuid: number;
  /** "Cortex-M4 r0p1", decoded from CPUID. */
  core: string;
  /** DBGMCU_IDCODE (0xE0042000): DEV_ID in bits 11:0, REV_ID in 31:16. */
  deviceId: number;
  /** The factory flash-size register, KiB. */
  flashSizeKiB: number;
  /** OpenOCD's view of the main flash bank after its probe. */
  flash: { name: string; driver: string; base: number; size: number };
  state: TargetState;
}

export interface ProgramOptions extends OpOptions {
  /** Skip the write when the flash already holds the image (default true). */
  preverify?: boolean;
  /**
   * Called with the bytes written so far: the write then goes in chunks (programChunk) after one erase of
   * the range, since OpenOCD reports nothing during a single write. Without it, one `flash write_image erase`.
   */
  progress?: (written: number, total: number) => void;
}

/** About 20 steps for a bar, never under 4 KiB a call (each call costs OpenOCD a flash-driver set-up). */
export function programChunk(length: number): number {
  return Math.max(4096, Math.ceil(length / 20 / 1024) * 1024);
}

export interface ProgramResult {
  address: number;
  bytes: number;
  /** False when pre-verify found the image already in place and nothing was written. */
  written: boolean;
  /** Wall time of the write (halt, erase, program), excluding pre-verify and verify; 0 when skipped. */
  writeMs: number;
  totalMs: number;
}

const CORE_NAMES: Record<number, string> = {
  0xc20: 'Cortex-M0',
  0xc60: 'Cortex-M0+',
  0xc21: 'Cortex-M1',
  0xc23: 'Cortex-M3',
  0xc24: 'Cortex-M4',
  0xc27: 'Cortex-M7',
  0xd20: 'Cortex-M23',
  0xd21: 'Cortex-M33',
};

export function coreName(cpuid: number): string {
  const part = (cpuid >>> 4) & 0xfff;
  const name = CORE_NAMES[part] ?? `unknown core (PARTNO ${hex32(part)})`;
  return `${name} r${(cpuid >>> 20) & 0xf}p${cpuid & 0xf}`;
}

interface LoggedIds {
  idcode: number | undefined;
}

/** `JTAG tap: <tap> tap/device found: 0x…` (one line per TAP; the CPU TAP is named like the target) or `SWD DPIDR 0x…`. */
const IDCODE_LINE = /(?:JTAG tap: (\S+) tap\/device found: |SWD DPIDR )0x([0-9a-fA-F]{1,8})/;
/** What OpenOCD's background poll logs as it (re-)examines a target: "… processor detected", "Examination …". */
const EXAMINE_LINE = /processor detected|[Ee]xamin|reset detected/;
const MAX_LISTED_DIFFS = 16;
/** read_memory takes at most 65536 elements per call; smaller replies keep the Tcl frames modest. */
const WORDS_PER_CALL = 16_384;

/**
 * The IDCODE column of `scan_chain`'s table for the tap named `tap`, when it is a real one (non-zero). The
 * hla adapter driver (Debian 0.12's interface/stlink.cfg) reads the IDCODE through the ST-Link and stores it
 * in its tap without logging it unless it is unexpected (hl_interface_init_target); scan_chain shows it. That
 * is read from OpenOCD 0.12's sources, not verified on an ST-Link; the table's layout is checked against the
 * virtual station (probe.test.ts).
 */
export function idcodeFromScanChain(table: string, tap: string): number | undefined {
  for (const line of table.split('\n')) {
    // " 0 stm32f1x.cpu           Y     0x3ba00477 0x3ba00477     4 0x01  0x0f"
    const m = /^\s*\d+\s+(\S+)\s+[YN]\s+0x([0-9a-fA-F]{1,8})\b/.exec(line);
    if (m && m[1] === tap) {
      const id = parseInt(m[2] as string, 16) >>> 0;
      return id === 0 ? undefined : id;
    }
  }
  return undefined;
}

// A probe's scratch directory is removed by close(); a rig that exits without closing (process.exit, an
// uncaught exception) still runs 'exit' handlers, which must be synchronous.
const scratchDirs = new Set<string>();
let scratchHookInstalled = false;
function trackScratch(dir: string): void {
  scratchDirs.add(dir);
  if (scratchHookInstalled) return;
  scratchHookInstalled = true;
  process.on('exit', () => {
    for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
  });
}

function checkRange(station: string, what: string, address: number, length: number): void {
  if (!Number.isSafeInteger(address) || address < 0 || address > 0xffff_ffff) throw new RangeError(`${station}: ${what} address out of range: ${address}`);
  if (!Number.isSafeInteger(length) || length < 0 || address + length > 0x1_0000_0000) throw new RangeError(`${station}: ${what} length out of range: ${length} at ${hex32(address)}`);
}

function toState(curstate: string): TargetState {
  const s = curstate.trim();
  return (['running', 'halted', 'reset', 'debug-running'].includes(s) ? s : 'unknown') as TargetState;
}

export function compareRegion(address: number, image: Uint8Array, seen: Uint8Array): RegionComparison {
  const differences: ByteDifference[] = [];
  let differing = 0;
  const n = Math.min(image.length, seen.length);
  for (let i = 0; i < n; i++) {
    if (image[i] !== seen[i]) {
      differing++;
      if (differences.length < MAX_LISTED_DIFFS) differences.push({ address: address + i, expected: image[i] as number, seen: seen[i] as number });
    }
  }
  return { address, length: image.length, equal: differing === 0 && seen.length === image.length, differingBytes: differing, differences };
}

export class Probe {
  readonly station: string;
  readonly targetName: string;
  readonly log: ProbeLog;
  private readonly timeouts: ProbeTimeouts;
  private session: OpenOcdSession;
  private seq = 0;
  private closed = false;

  private constructor(
    private readonly opts: ProbeOptions,
    session: OpenOcdSession,
    log: ProbeLog,
    private readonly ids: LoggedIds,
    private readonly scratch: string,
  ) {
    this.station = opts.station;
    this.targetName = opts.targetName;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.session = session;
    this.log = log;
  }

  /** Starts OpenOCD for the station and waits until its Tcl server answers. */
  static async open(opts: ProbeOptions, { signal }: { signal?: AbortSignal } = {}): Promise<Probe> {
    const log = new ProbeLog(opts.log);
    // The IDCODE is only ever logged, once, during init: catch it as it passes, restarts included.
    const ids: LoggedIds = { idcode: undefined };
    log.onLine((line) => {
      const m = IDCODE_LINE.exec(line);
      if (m && (m[1] === undefined || m[1] === opts.targetName)) ids.idcode = parseInt(m[2] as string, 16) >>> 0;
    });
    const scratch = await mkdtemp(scratchPrefix('openocd', opts.runDir));
    trackScratch(scratch);
    try {
      const session = await Probe.startSession(opts, log, signal);
      return new Probe(opts, session, log, ids, scratch);
    } catch (e) {
      await rm(scratch, { recursive: true, force: true });
      scratchDirs.delete(scratch);
      throw e;
    }
  }

  private static startSession(opts: ProbeOptions, log: ProbeLog, signal: AbortSignal | undefined): Promise<OpenOcdSession> {
    const t = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    return OpenOcdSession.start(
      {
        station: opts.station,
        openocd: opts.openocd,
        args: opts.args,
        startTimeoutMs: t.startMs,
        shutdownTimeoutMs: t.shutdownMs,
        log,
        parentDeathSignal: opts.parentDeathSignal,
        linkLostPatterns: opts.linkLostPatterns,
      },
      signal,
    );
  }

  /** OpenOCD's process id (its process group id too). */
  get pid(): number {
    return this.session.pid;
  }

  /**
   * Settles when the current OpenOCD exits, for whatever reason (closed, killed, crashed while idle): a
   * station can watch it to mark its probe broken without waiting for the next command to fail.
   */
  get exited(): Promise<ExitInfo> {
    return this.session.exited;
  }

  /** False once OpenOCD died, was killed on a timeout or abort, or the probe was closed. */
  get alive(): boolean {
    return this.session.alive;
  }

  /** Stops this OpenOCD (gracefully if it still answers) and starts a fresh one with the same configuration. */
  async restart({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.closed) throw new InfrastructureError('cannot restart a closed probe; open a new one', { station: this.station });
    await this.session.close();
    this.log.note('restarting OpenOCD');
    this.ids.idcode = undefined;
    this.session = await Probe.startSession(this.opts, this.log, signal);
  }

  /** Shuts OpenOCD down (killing it if it does not go) and removes the scratch directory. */
  async close(): Promise<void> {
    this.closed = true;
    try {
      await this.session.close();
    } finally {
      await rm(this.scratch, { recursive: true, force: true });
      scratchDirs.delete(this.scratch);
    }
  }

  /** Runs one Tcl command (catch-wrapped) and returns its result text. */
  rpc(command: string, opts: OpOptions = {}): Promise<string> {
    return this.command(command, { timeoutMs: opts.timeoutMs ?? this.timeouts.commandMs, signal: opts.signal });
  }

  /**
   * One command; a refusal while the target is not examined (`curstate` unknown: unpowered, or powered back
   * on and not yet re-examined by OpenOCD's poll) is the station's trouble, not the firmware's or the
   * protocol's, so it becomes an InfrastructureError that suites retry.
   */
  private async command(command: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<string> {
    try {
      return await this.session.call(command, opts);
    } catch (e) {
      if (!(e instanceof OpenOcdCommandError)) throw e;
      const state = await this.session.call(`${this.targetName} curstate`, { timeoutMs: Math.min(this.timeouts.commandMs, 2_000), signal: opts.signal }).then(toState, () => undefined);
      if (state !== 'unknown') throw e;
      throw new InfrastructureError(`"${command}" failed: the target is not examined (no power, held in reset, or just powered back on)`, {
        station: this.station,
        expected: `an examined target (${this.targetName} curstate other than "unknown")`,
        seen: `curstate "unknown"; OpenOCD: ${JSON.stringify(e.text)}`,
        lastLines: this.log.recent(10),
        cause: e,
      });
    }
  }

  /**
   * Waits until OpenOCD has (re-)examined the target: `<target> curstate` is no longer "unknown". After the
   * target's supply comes back OpenOCD's background poll does this within its back-off; the wait wakes on the
   * poll's log lines and re-checks at least every 100 ms. Throws InfrastructureError after `timeoutMs`.
   */
  async waitExamined(timeoutMs: number, opts: { signal?: AbortSignal } = {}): Promise<TargetState> {
    const end = performance.now() + timeoutMs;
    const curstate = `${this.targetName} curstate`;
    for (;;) {
      const left = Math.floor(end - performance.now());
      if (left <= 0) break;
      const state = toState(await this.session.call(curstate, { timeoutMs: left, signal: opts.signal }));
      if (state !== 'unknown') return state;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          off();
          opts.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, Math.min(100, end - performance.now())));
        const off = this.log.onLine((line) => {
          if (EXAMINE_LINE.test(line)) done();
        });
        opts.signal?.addEventListener('abort', done, { once: true });
      });
      if (opts.signal?.aborted) throw new AbortedError('waiting for the target to be examined: aborted', { station: this.station, cause: opts.signal.reason });
    }
    throw new InfrastructureError(`the target was not examined within ${timeoutMs} ms`, {
      station: this.station,
      expected: `${curstate} other than "unknown" (a powered target answering its debug port)`,
      seen: 'unknown',
      lastLines: this.log.recent(10),
    });
  }

  /**
   * `halt`, once OpenOCD no longer sees the target in reset. In that state (NRST still held, or released but
   * not yet seen by OpenOCD's 100 ms poll) OpenOCD 0.12's cortex_m_halt writes nothing to the core — it takes
   * the reset for its own `reset halt`, whose vector catch does the halting — and then waits out its 5 s halt
   * timeout. A target held in reset past the operation's deadline fails through `call`.
   */
  private async haltOutOfReset(call: (command: string) => Promise<string>): Promise<void> {
    const t0 = performance.now();
    let sawReset = false;
    for (;;) {
      let state: TargetState;
      try {
        state = toState(await call(`${this.targetName} curstate`));
      } catch (err) {
        if (!sawReset || !(err instanceof InfrastructureError) || !/ran out of time/.test(err.message)) throw err;
        // The operation's deadline ran out while the target sat in reset: say that, not which command was next.
        throw new InfrastructureError(`the target stayed in reset for ${Math.round(performance.now() - t0)} ms; it cannot be halted for flash access`, {
          station: this.station,
          expected: 'the reset line released and the core running or halted',
          seen: `${this.targetName} curstate "reset" until the operation ran out of time (is the reset line held, or the target unpowered?)`,
          lastLines: this.log.recent(10),
          cause: err,
        });
      }
      if (state !== 'reset') break;
      sawReset = true;
      await new Promise<void>((resolve) => setTimeout(resolve, 50));
    }
    await call('halt');
  }

  /** A deadline shared by the steps of one operation. */
  private deadline(opts: OpOptions, defaultMs: number, what: string): (command: string) => Promise<string> {
    const end = performance.now() + (opts.timeoutMs ?? defaultMs);
    return (command: string) => {
      const left = Math.floor(end - performance.now());
      if (opts.signal?.aborted) return Promise.reject(new AbortedError(`${what} aborted`, { station: this.station, cause: opts.signal.reason }));
      // A command that gets only the last few milliseconds cannot be answered in them, and an OpenOCD that
      // does not answer in time is killed: with less than a round trip left, the operation has run out.
      if (left < MIN_COMMAND_MS) {
        return Promise.reject(
          new InfrastructureError(`${what} ran out of time before "${command}"`, { station: this.station, expected: `completion within ${opts.timeoutMs ?? defaultMs} ms`, lastLines: this.log.recent(10) }),
        );
      }
      return this.command(command, { timeoutMs: left, signal: opts.signal });
    };
  }

  private readMs(bytes: number): number {
    return this.timeouts.commandMs + Math.ceil((bytes / this.timeouts.readBytesPerSecond) * 1000);
  }

  async state(opts: OpOptions = {}): Promise<TargetState> {
    return toState(await this.rpc(`${this.targetName} curstate`, opts));
  }

  /** Identifies the target: IDCODE, CPUID, device id, flash size, and OpenOCD's flash bank. */
  async examine(opts: OpOptions = {}): Promise<TargetInfo> {
    const call = this.deadline(opts, this.timeouts.commandMs * 2, 'examine');
    const word = async (address: number, width: 16 | 32): Promise<number> => {
      const items = parseTclList(await call(`read_memory ${hex32(address)} ${width} 1`));
      return Number(items[0]) >>> 0;
    };
    const cpuid = await word(0xe000_ed00, 32);
    const deviceId = await word(0xe004_2000, 32);
    const flashSizeKiB = await word(this.opts.flashSizeRegister, 16);
    await call(`flash probe ${this.opts.flashBank}`);
    const banks = parseTclList(await call('flash list')).map((b) => {
      const kv = parseTclList(b);
      const d: Record<string, string> = {};
      for (let i = 0; i + 1 < kv.length; i += 2) d[kv[i] as string] = kv[i + 1] as string;
      return d;
    });
    const bank = banks[this.opts.flashBank];
    if (bank === undefined) {
      throw new InfrastructureError(`OpenOCD has no flash bank ${this.opts.flashBank}`, { station: this.station, expected: `bank ${this.opts.flashBank} in "flash list"`, seen: `${banks.length} bank(s)` });
    }
    const state = toState(await call(`${this.targetName} curstate`));
    // JTAG and SWD adapters log the IDCODE at init; hla (ST-Link) does not: ask for the scan chain instead.
    const idcode = this.ids.idcode ?? idcodeFromScanChain(await call('scan_chain'), this.targetName);
    return {
      idcode,
      cpuid,
      core: coreName(cpuid),
      deviceId,
      flashSizeKiB,
      flash: { name: bank.name ?? '', driver: bank.driver ?? '', base: Number(bank.base) >>> 0, size: Number(bank.size) },
      state,
    };
  }

  /** `reset halt` (stop at the reset vector), `reset run`, or `reset init` (halt plus the cfg's init handler). */
  async reset(mode: ResetMode, opts: OpOptions = {}): Promise<TargetState> {
    const call = this.deadline(opts, this.timeouts.commandMs, `reset ${mode}`);
    await call(`reset ${mode}`);
    return toState(await call(`${this.targetName} curstate`));
  }

  async halt(opts: OpOptions = {}): Promise<void> {
    await this.rpc('halt', opts);
  }

  async resume(opts: OpOptions = {}): Promise<void> {
    await this.rpc('resume', opts);
  }

  /** Reads `count` elements of `width` bits from target memory (no halt needed). */
  async readMemory(address: number, count: number, opts: OpOptions & { width?: 8 | 16 | 32 } = {}): Promise<number[]> {
    const width = opts.width ?? 32;
    checkRange(this.station, 'readMemory', address, (count * width) / 8);
    const call = this.deadline(opts, this.readMs((count * width) / 8), 'readMemory');
    const out: number[] = [];
    for (let done = 0; done < count; ) {
      const n = Math.min(WORDS_PER_CALL, count - done);
      const items = parseTclList(await call(`read_memory ${hex32(address + (done * width) / 8)} ${width} ${n}`));
      if (items.length !== n) {
        throw new InfrastructureError(`read_memory returned ${items.length} values instead of ${n}`, { station: this.station, expected: `${n} values`, seen: `${items.length}` });
      }
      for (const v of items) out.push(Number(v) >>> 0);
      done += n;
    }
    return out;
  }

  /** Reads words (32-bit, little-endian target) starting at a word address. */
  async readWords(address: number, count: number, opts: OpOptions = {}): Promise<Uint32Array> {
    return Uint32Array.from(await this.readMemory(address, count, { ...opts, width: 32 }));
  }

  private scratchFile(what: string): string {
    return path.join(this.scratch, `${++this.seq}-${what}.bin`);
  }

  /** Reads a region of target memory (flash, SRAM…) into a Buffer, through a scratch file that is removed after. */
  async readRegion(address: number, length: number, opts: OpOptions = {}): Promise<Buffer> {
    checkRange(this.station, 'readRegion', address, length);
    if (length === 0) return Buffer.alloc(0);
    const file = this.scratchFile('read');
    const call = this.deadline(opts, this.readMs(length), `read-back of ${length} bytes at ${hex32(address)}`);
    try {
      await call(`dump_image ${tclWord(file)} ${hex32(address)} ${length}`);
      const data = await readFile(file);
      if (data.length !== length) {
        throw new InfrastructureError(`read-back at ${hex32(address)} came back short`, { station: this.station, expected: `${length} bytes`, seen: `${data.length} bytes`, lastLines: this.log.recent(10) });
      }
      return data;
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Reads the region the image would occupy and says whether, and where, it differs. */
  async compare(address: number, image: Uint8Array, opts: OpOptions = {}): Promise<RegionComparison> {
    const seen = await this.readRegion(address, image.length, opts);
    return compareRegion(address, image, seen);
  }

  /** Throws RegionMismatchError (a FirmwareError) naming the first differing address when memory ≠ image. */
  async verify(address: number, image: Uint8Array, opts: OpOptions = {}): Promise<RegionComparison> {
    const c = await this.compare(address, image, opts);
    if (!c.equal) throw new RegionMismatchError('verify', c, { station: this.station });
    return c;
  }

  /**
   * Programs `image` into flash at `address`: skipped when the flash already holds it (pre-verify);
   * otherwise halt, `flash write_image erase`, then verify by reading back. Leaves the core halted.
   * Note that erasing rounds out to whole sectors/pages: bytes beyond the image in its last sector are erased.
   */
  async program(address: number, image: Uint8Array, opts: ProgramOptions = {}): Promise<ProgramResult> {
    checkRange(this.station, 'program', address, image.length);
    const t0 = performance.now();
    const t = this.timeouts;
    const readMs = Math.ceil((image.length / t.readBytesPerSecond) * 1000);
    const defaultMs = t.commandMs * 3 + t.eraseMs + 2 * readMs + Math.ceil((image.length / t.programBytesPerSecond) * 1000);
    const end = performance.now() + (opts.timeoutMs ?? defaultMs);
    const left = (): number => Math.max(1, Math.floor(end - performance.now()));
    const step = { signal: opts.signal };

    if (opts.preverify ?? true) {
      const c = await this.compare(address, image, { ...step, timeoutMs: left() });
      if (c.equal) {
        this.log.note(`program ${image.length} bytes at ${hex32(address)}: flash already holds the image, write skipped`);
        return { address, bytes: image.length, written: false, writeMs: 0, totalMs: performance.now() - t0 };
      }
    }
    const file = this.scratchFile('image');
    let writeMs: number;
    try {
      const call = this.deadline({ ...step, timeoutMs: left() }, 0, `program ${image.length} bytes at ${hex32(address)}`);
      const w0 = performance.now();
      // Flash drivers refuse to erase or write a running core (docs/virtual-station.md, OpenOCD §4.4).
      await this.haltOutOfReset(call);
      if (!opts.progress) {
        await writeFile(file, image);
        await call(`flash write_image erase ${tclWord(file)} ${hex32(address)} bin`);
      } else {
        // OpenOCD 0.12 says nothing while `flash write_image` runs, so progress is made by writing in chunks:
        // one erase of the whole range first (padded to whole sectors/pages, as write_image erase does), then
        // each chunk without erasing, so a chunk never erases what the one before it wrote.
        opts.progress(0, image.length);
        await call(`flash erase_address pad ${hex32(address)} ${image.length}`);
        const chunk = programChunk(image.length);
        for (let off = 0; off < image.length; off += chunk) {
          const part = image.subarray(off, Math.min(image.length, off + chunk));
          await writeFile(file, part);
          await call(`flash write_image ${tclWord(file)} ${hex32(address + off)} bin`);
          opts.progress(off + part.length, image.length);
        }
      }
      writeMs = performance.now() - w0;
    } finally {
      await rm(file, { force: true });
    }
    const c = await this.compare(address, image, { ...step, timeoutMs: left() });
    if (!c.equal) throw new RegionMismatchError('program: read-back after writing', c, { station: this.station });
    return { address, bytes: image.length, written: true, writeMs, totalMs: performance.now() - t0 };
  }

  /** Erases whole sectors/pages covering exactly [address, address+length); OpenOCD refuses unaligned ranges. */
  async erase(address: number, length: number, opts: OpOptions = {}): Promise<void> {
    checkRange(this.station, 'erase', address, length);
    const call = this.deadline(opts, this.timeouts.commandMs * 2 + this.timeouts.eraseMs, `erase of ${length} bytes at ${hex32(address)}`);
    await this.haltOutOfReset(call);
    await call(`flash erase_address ${hex32(address)} ${length}`);
  }
}
