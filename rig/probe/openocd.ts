// One OpenOCD child process and its Tcl RPC connection. OpenOCD has no timeouts of its own — a target that
// stops answering blocks it forever (docs/virtual-station.md, OpenOCD §1.4) — so every call here is bounded, and on expiry,
// abort or close the child's whole process group is killed. No OpenOCD outlives the rig: a synchronous
// 'exit' handler kills what is left, and where util-linux's setpriv exists the child also gets SIGKILL from
// the kernel when the rig dies without running handlers (SIGKILL, a crash).
//
// The Tcl connection is OpenOCD's own stdin and stdout (`tcl_port pipe`), not a TCP port: OpenOCD 0.12
// serves Tcl on a TCP port, a pair of named pipes or stdin/stdout, never on a Unix socket (src/server/
// server.c, add_service), and a TCP port, even on loopback, lets any local user drive the probe. Over the
// pipes only the rig can; and OpenOCD shuts down by itself when they close, that is when the rig goes.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';

import { AbortedError, InfrastructureError } from '../errors.ts';
import { OpenOcdCommandError } from './errors.ts';
import { ProbeLog } from './log.ts';
import { catchEnvelope, parseCatchResult } from './tcl.ts';

export interface OpenOcdOptions {
  /** Station name for errors and logs. */
  station: string;
  /** The OpenOCD binary; default `openocd` from PATH. */
  openocd?: string;
  /** Configuration `-f`/`-c` items (see buildProbeArgs); the driver adds its server settings and `init`. */
  args: readonly string[];
  /** From spawn to the Tcl server listening (covers `init`, which talks to the target). Default 15 s. */
  startTimeoutMs?: number;
  /** Grace for `shutdown` before the group is killed. Default 3 s. */
  shutdownTimeoutMs?: number;
  /** Where OpenOCD's output goes; shared across restarts so the report has all of it. */
  log?: ProbeLog;
  /** Working directory of the child (relative paths in args resolve against it). */
  cwd?: string;
  /**
   * Ask the kernel to SIGKILL OpenOCD if the rig dies (setpriv --pdeathsig). Default: on where setpriv
   * exists. Tied to the spawning thread: a probe opened in a worker thread dies with that thread.
   */
  parentDeathSignal?: boolean;
  /**
   * Log lines that mean the adapter link is gone for good. OpenOCD 0.12 never reconnects an adapter: it
   * stays up, failing every poll and command, so on the first such line it is killed and the session
   * reports the line. Default: LINK_LOST_PATTERNS.
   */
  linkLostPatterns?: readonly RegExp[];
}

/**
 * remote_bitbang's socket errors (a closed target socket shows up as `Error on socket
 * 'remote_bitbang_putc': … Broken pipe` on the next poll, docs/virtual-station.md, OpenOCD §1.4), libusb's "device gone"
 * (an ST-Link or CMSIS-DAP probe unplugged) and the buspirate driver's failed write to its serial port
 * (`Error sending data`: the USB serial device is gone, or the pty's other side).
 */
export const LINK_LOST_PATTERNS: readonly RegExp[] = [/Error on socket '/, /LIBUSB_ERROR_NO_DEVICE/, /Error sending data/];

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

const FRAME_END = 0x1a;
/** The first Tcl exchange: OpenOCD reads its Tcl pipe only once `init` is done, so the answer means ready. */
const READY_PROBE = 'version';
/** After SIGKILL the kernel takes the process down at once unless it sits in a driver (USB); bound it anyway. */
const KILL_WAIT_MS = 5_000;
const LAST_LINES = 20;

// ---- children still alive in this rig process, for the exit handler -------------------------------------

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone. Fall back to the process itself in case it left its group.
    try {
      child.kill('SIGKILL');
    } catch {
      /* already dead */
    }
  }
}

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: signalling is, waiting is not needed (SIGKILL cannot be refused).
    process.on('exit', () => {
      for (const c of live) killGroup(c);
    });
  }
}

/** Process ids of the OpenOCD children this rig process still has. */
export function liveOpenOcdPids(): number[] {
  return [...live].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
}

/** The executable `name` would run: itself when it is a path, else the first on PATH; null when there is none. */
export function findExecutable(name: string): string | null {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter).map((dir) => path.join(dir || '.', name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

let setprivPath: string | null | undefined;
/** util-linux's setpriv on PATH, which gives a child a parent-death signal; null where there is none. */
export function findSetpriv(): string | null {
  if (setprivPath === undefined) setprivPath = findExecutable('setpriv');
  return setprivPath;
}

export function describeExit(e: ExitInfo): string {
  if (e.signal === 'SIGABRT' || e.code === 134) {
    return 'OpenOCD aborted (SIGABRT, rc 134; OpenOCD 0.12 does this when the adapter connection drops in the middle of a scan)';
  }
  if (e.signal !== null) return `OpenOCD was killed by ${e.signal}`;
  return `OpenOCD exited with rc ${e.code}`;
}

/** Splits a byte stream into lines for the log; a last unterminated line is flushed on end. */
function pipeLines(stream: NodeJS.ReadableStream, log: ProbeLog): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split(/\r?\n/);
    partial = parts.pop() ?? '';
    for (const line of parts) log.append(line);
  });
  stream.on('end', () => {
    if (partial !== '') log.append(partial);
    partial = '';
  });
}

interface Pending {
  resolve(reply: string): void;
  reject(e: unknown): void;
}

export class OpenOcdSession {
  readonly log: ProbeLog;
  /** Settles when the child has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  /** OpenOCD's stdin, while the Tcl connection is usable. */
  private tcl: NodeJS.WritableStream | undefined;
  /** Set once the first Tcl reply came: before that, waitReady reports what went wrong. */
  private ready = false;
  private rx: Buffer[] = [];
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;
  private closeDone: Promise<void> | undefined;
  private killing = false;
  /** Why the session is unusable, once it is. */
  private broken: InfrastructureError | undefined;

  private constructor(
    private readonly opts: OpenOcdOptions,
    private readonly child: ChildProcess,
    log: ProbeLog,
  ) {
    this.log = log;
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        const info: ExitInfo = { code, signal };
        this.exitInfo = info;
        let settled = false;
        const settle = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(drain);
          this.log.note(`${describeExit(info)} (pid ${child.pid})`);
          resolve(info);
        };
        // OpenOCD's last words (an assertion message before rc 134) may still sit in the stderr pipe: wait
        // for the pipes to close, but not for ever — something else could hold them open.
        const drain = setTimeout(settle, 1_000);
        child.once('close', settle);
      });
    });
  }

  get station(): string {
    return this.opts.station;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True while the child runs and its Tcl connection is usable. */
  get alive(): boolean {
    return this.exitInfo === undefined && this.broken === undefined && !this.closing;
  }

  /** Starts OpenOCD and connects to its Tcl server; on any failure nothing is left running. */
  static async start(opts: OpenOcdOptions, signal?: AbortSignal): Promise<OpenOcdSession> {
    const log = opts.log ?? new ProbeLog();
    if (signal?.aborted) throw new AbortedError('OpenOCD start aborted before it began', { station: opts.station, cause: signal.reason });
    const binary = opts.openocd ?? 'openocd';
    const args = [
      ...opts.args,
      // Servers are configured before init: Tcl on stdin/stdout, nothing listening; should a config's extra
      // lines enable a TCP server anyway, it stays on loopback.
      '-c', 'gdb_port disabled',
      '-c', 'telnet_port disabled',
      '-c', 'tcl_port pipe',
      '-c', 'bindto 127.0.0.1',
      '-c', 'init',
    ];
    const setpriv = (opts.parentDeathSignal ?? true) ? findSetpriv() : null;
    const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
    log.note(`starting ${binary} ${args.map((a) => JSON.stringify(a)).join(' ')}`);
    // Its own process group: a terminal's Ctrl-C does not reach it half-way through a flash write, and
    // killing the group takes anything it may have started along with it.
    const child = spawn(cmd, argv, { detached: true, stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    if (child.pid !== undefined) track(child);
    const session = new OpenOcdSession(opts, child, log);
    // OpenOCD logs to stderr; its stdout carries nothing but Tcl replies.
    pipeLines(child.stderr!, log);
    session.attachTcl();
    try {
      await session.waitReady(signal);
      log.note(`OpenOCD pid ${child.pid} ready, Tcl on its stdin/stdout`);
      session.watchLink();
      return session;
    } catch (e) {
      await session.killAndWait(`start failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      throw e;
    }
  }

  private waitReady(signal: AbortSignal | undefined): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? 15_000;
    const station = this.opts.station;
    return new Promise<void>((resolve, reject) => {
      const cleanups: (() => void)[] = [];
      let settled = false;
      const done = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        this.pending = undefined;
        for (const c of cleanups) c();
        fn();
      };
      this.pending = {
        resolve: () =>
          done(() => {
            this.ready = true;
            resolve();
          }),
        reject: (e) => done(() => reject(e)),
      };
      const onError = (err: Error): void =>
        done(() => reject(new InfrastructureError(`could not start OpenOCD (${err.message})`, { station, expected: `an executable "${this.opts.openocd ?? 'openocd'}"`, cause: err })));
      this.child.once('error', onError);
      cleanups.push(() => this.child.off('error', onError));
      void this.exited.then((info) =>
        done(() =>
          reject(
            new InfrastructureError(`OpenOCD stopped before its Tcl server was ready: ${describeExit(info)}`, {
              station,
              expected: `init to finish, then a reply to "${READY_PROBE}" on its Tcl pipe`,
              seen: describeExit(info),
              lastLines: this.log.recent(LAST_LINES),
            }),
          ),
        ),
      );
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new InfrastructureError(`OpenOCD did not get ready within ${timeoutMs} ms (init hung: is the target or adapter answering?); killed it`, {
                station,
                expected: `init to finish, then a reply to "${READY_PROBE}" on its Tcl pipe`,
                seen: 'no reply',
                lastLines: this.log.recent(LAST_LINES),
              }),
            ),
          ),
        timeoutMs,
      );
      cleanups.push(() => clearTimeout(timer));
      if (signal) {
        const onAbort = (): void => done(() => reject(new AbortedError('OpenOCD start aborted', { station, cause: signal.reason, lastLines: this.log.recent(LAST_LINES) })));
        signal.addEventListener('abort', onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener('abort', onAbort));
      }
      // OpenOCD reads its Tcl pipe once init is done; a failing init ends the process instead.
      this.tcl?.write(Buffer.concat([Buffer.from(READY_PROBE, 'utf8'), Buffer.of(FRAME_END)]));
    });
  }

  /** The Tcl connection: requests to OpenOCD's stdin, replies from its stdout. */
  private attachTcl(): void {
    const stdin = this.child.stdin!;
    const stdout = this.child.stdout!;
    this.tcl = stdin;
    // A write after OpenOCD died fails with EPIPE; its end is reported by the stdout close below.
    stdin.on('error', () => {});
    stdout.on('data', (d: Buffer) => this.onData(d));
    stdout.on('error', () => {});
    stdout.once('close', () => this.onTclClosed());
  }

  /** From readiness on (a failing init makes OpenOCD exit by itself), a link-lost line ends the session. */
  private watchLink(): void {
    const patterns = this.opts.linkLostPatterns ?? LINK_LOST_PATTERNS;
    const off = this.log.onLine((line) => {
      if (!patterns.some((re) => re.test(line))) return;
      off();
      if (this.broken !== undefined || this.closing || this.exitInfo !== undefined) return;
      const err = new InfrastructureError(`the adapter link is lost; OpenOCD killed`, {
        station: this.opts.station,
        expected: 'the adapter connection to stay up',
        seen: JSON.stringify(line),
        lastLines: this.log.recent(LAST_LINES),
      });
      this.broken = err;
      const p = this.pending;
      this.pending = undefined;
      void this.killAndWait('adapter link lost').then(() => p?.reject(err));
    });
    void this.exited.then(off);
  }

  private onData(d: Buffer): void {
    let chunk = d;
    while (true) {
      // Only the new bytes can hold the terminator: a long reply is not re-scanned chunk after chunk.
      const end = chunk.indexOf(FRAME_END);
      if (end < 0) {
        if (chunk.length > 0) this.rx.push(chunk);
        return;
      }
      this.rx.push(chunk.subarray(0, end));
      const reply = Buffer.concat(this.rx).toString('utf8');
      this.rx = [];
      chunk = chunk.subarray(end + 1);
      const p = this.pending;
      this.pending = undefined;
      if (p) p.resolve(reply);
      else this.log.note(`unrequested Tcl reply ignored: ${JSON.stringify(reply.slice(0, 200))}`);
    }
  }

  private onTclClosed(): void {
    this.tcl = undefined;
    // Closed by us (close, or a kill after a timeout or abort, whose caller reports it), or before OpenOCD
    // was ready (waitReady reports that): nothing to add.
    if (this.closing || this.killing || !this.ready) return;
    // The Tcl connection only closes when OpenOCD goes away (or is about to): make sure it is gone, then
    // report how it ended.
    void this.failWith(async () => {
      const info = await this.killAndWait('its Tcl connection closed');
      return new InfrastructureError(`OpenOCD went away: ${describeExit(info ?? { code: null, signal: null })}`, {
        station: this.opts.station,
        expected: 'OpenOCD to keep running until the probe is closed',
        seen: describeExit(info ?? { code: null, signal: null }),
        lastLines: this.log.recent(LAST_LINES),
      });
    });
  }

  /** Marks the session broken with the error `make()` builds and rejects the call in flight with it. */
  private async failWith(make: () => Promise<InfrastructureError>): Promise<InfrastructureError> {
    const p = this.pending;
    this.pending = undefined;
    const err = this.broken ?? (await make());
    this.broken ??= err;
    p?.reject(this.broken);
    return this.broken;
  }

  /** Kills the group (if still running) and waits, bounded, for the exit; resolves undefined if it never came. */
  async killAndWait(reason: string): Promise<ExitInfo | undefined> {
    // spawn itself failed (no such binary): there is no process to kill or wait for.
    if (this.child.pid === undefined) return undefined;
    if (this.exitInfo === undefined && !this.killing) {
      this.killing = true;
      this.log.note(`killing OpenOCD process group ${this.child.pid}: ${reason}`);
      killGroup(this.child);
    }
    this.tcl?.end();
    let timer: NodeJS.Timeout | undefined;
    const info = await Promise.race([
      this.exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), KILL_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    return info;
  }

  /**
   * Runs one Tcl command inside `catch` and returns its result. A non-zero code is an OpenOcdCommandError;
   * no answer within `timeoutMs`, an abort, or OpenOCD dying is an InfrastructureError (AbortedError) after
   * which the session is dead: OpenOCD's state mid-command is unknown, so it is killed, never reused.
   */
  call(command: string, opts: CallOptions): Promise<string> {
    const run = async (): Promise<string> => {
      const reply = await this.exchange(catchEnvelope(command), command, opts);
      let parsed;
      try {
        parsed = parseCatchResult(reply);
      } catch (e) {
        throw new InfrastructureError(`OpenOCD's Tcl reply to "${command}" is not a catch envelope`, {
          station: this.opts.station,
          expected: '"<code> <result>"',
          seen: JSON.stringify(reply.slice(0, 300)),
          cause: e,
        });
      }
      // 2 is Tcl's `return`: a result, not a failure.
      if (parsed.code !== 0 && parsed.code !== 2) {
        throw new OpenOcdCommandError(command, parsed.code, parsed.text, { station: this.opts.station, lastLines: this.log.recent(LAST_LINES) });
      }
      return parsed.text;
    };
    let started = false;
    const next = this.queue.then(
      () => ((started = true), run()),
      () => ((started = true), run()),
    );
    this.queue = next.catch(() => undefined);
    const signal = opts.signal;
    if (signal === undefined) return next;
    // An abort while still queued behind another command rejects at once; the command is then never sent.
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => {
        if (!started) reject(new AbortedError(`"${command}" aborted while waiting for the previous command`, { station: this.opts.station, cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      next.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private exchange(script: string, command: string, opts: CallOptions): Promise<string> {
    const station = this.opts.station;
    if (opts.signal?.aborted) {
      return Promise.reject(new AbortedError(`"${command}" aborted before it was sent`, { station, cause: opts.signal.reason }));
    }
    if (!this.alive || this.tcl === undefined) {
      const why = this.broken?.summary ?? (this.exitInfo ? describeExit(this.exitInfo) : this.closing ? 'the probe was closed' : 'no Tcl connection');
      return Promise.reject(
        new InfrastructureError(`OpenOCD is not running, cannot run "${command}"; restart the probe`, {
          station,
          seen: why,
          lastLines: this.log.recent(LAST_LINES),
          cause: this.broken,
        }),
      );
    }
    const tcl = this.tcl;
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      this.pending = {
        resolve: (reply) => {
          if (settled) return;
          cleanup();
          resolve(reply);
        },
        reject: (e) => {
          if (settled) return;
          cleanup();
          reject(e);
        },
      };
      const fail = (make: (info: ExitInfo | undefined) => InfrastructureError): void => {
        if (settled) return;
        cleanup();
        this.pending = undefined;
        void (async () => {
          const info = await this.killAndWait(`"${command}" did not complete`);
          const err = make(info);
          this.broken ??= err;
          reject(err);
        })();
      };
      const timer = setTimeout(
        () =>
          fail(
            (info) =>
              new InfrastructureError(`OpenOCD did not answer "${command}" within ${opts.timeoutMs} ms; killed it`, {
                station,
                expected: `a Tcl reply within ${opts.timeoutMs} ms`,
                seen: info ? `silence, then ${describeExit(info)} after the kill` : 'silence; OpenOCD did not even die after SIGKILL',
                lastLines: this.log.recent(LAST_LINES),
              }),
          ),
        opts.timeoutMs,
      );
      const onAbort = (): void =>
        fail(
          () =>
            new AbortedError(`"${command}" aborted; OpenOCD killed`, {
              station,
              cause: opts.signal?.reason,
              lastLines: this.log.recent(LAST_LINES),
            }),
        );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      tcl.write(Buffer.concat([Buffer.from(script, 'utf8'), Buffer.of(FRAME_END)]));
    });
  }

  /**
   * Asks OpenOCD to shut down (it then releases the adapter cleanly), kills the group if it has not exited
   * within the grace period, and waits for the exit. Safe to call at any time, any number of times.
   */
  close(): Promise<void> {
    // A second close waits for the first, which is bounded; waiting on `exited` itself would not be, should
    // OpenOCD never die (stuck in a USB driver).
    return (this.closeDone ??= this.closeOnce());
  }

  private async closeOnce(): Promise<void> {
    const busy = this.pending !== undefined;
    this.closing = true;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(new AbortedError('probe closed while a command was running', { station: this.opts.station }));
    if (this.exitInfo === undefined && this.tcl !== undefined && !busy && this.broken === undefined) {
      this.tcl.write(Buffer.concat([Buffer.from('shutdown', 'utf8'), Buffer.of(FRAME_END)]));
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), this.opts.shutdownTimeoutMs ?? 3_000);
        }),
      ]);
      clearTimeout(timer);
      if (ended) {
        this.tcl?.end();
        return;
      }
    }
    await this.killAndWait('probe closed');
  }
}
