// A minimal OpenOCD session for the simulator's own tests and benchmark: the real binary, spawned without a
// shell in its own process group, its Tcl RPC port (0x1A framing) found from the "Listening on port N for
// tcl connections" line, every call wrapped in `catch` so success and failure come back as a code, and a
// deadline on everything because OpenOCD never times out against a silent target. (The rig has its own,
// complete driver in rig/probe; this one exists so that sim/ can be tested without importing rig/.)
// No OpenOCD outlives the test process that started it, even one that crashes: a synchronous 'exit' hook
// kills what is left, and where util-linux's setpriv exists the kernel SIGKILLs it when that process dies
// outright. Without both, a crashed worker's OpenOCD — in its own process group, out of reach of a Ctrl-C —
// would poll a dead simulator for ever.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface OpenocdSessionOptions {
  args: string[];
  /** Bound on start-up (until the Tcl port is listening), default 10 s. */
  startTimeoutMs?: number;
}

export interface TclResult {
  /** 0 on success, OpenOCD's error code otherwise (-4 ERROR_FAIL, -107 JTAG device error, …). */
  code: number;
  text: string;
}

const SUB = '\x1a';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously: signalling is, and SIGKILL needs no waiting for.
  process.on('exit', () => {
    for (const c of live) killGroup(c);
  });
}

let setprivPath: string | null | undefined;
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    const candidate = path.join(dir || '.', 'setpriv');
    try {
      accessSync(candidate, fsConstants.X_OK);
      setprivPath = candidate;
      break;
    } catch {
      /* not here */
    }
  }
  return setprivPath;
}

export class OpenocdSession {
  private readonly child: ChildProcess;
  private readonly logLines: string[] = [];
  private socket: net.Socket | undefined;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitWaiters: (() => void)[] = [];

  private constructor(args: string[]) {
    // setpriv execs openocd in place: the pid, and the process group it leads, stay the same.
    const setpriv = findSetpriv();
    const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', 'openocd', ...args]] : ['openocd', args];
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (this.child.pid !== undefined) track(this.child);
    let partial = '';
    const onText = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      this.logLines.push(...lines);
    };
    this.child.stdout!.on('data', onText);
    this.child.stderr!.on('data', onText);
    this.child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      for (const w of this.exitWaiters.splice(0)) w();
    });
    this.child.on('error', (err) => this.logLines.push(`spawn error: ${err.message}`));
  }

  /** Starts OpenOCD and connects to its Tcl port; throws with the log if it does not get there in time. */
  static async start(options: OpenocdSessionOptions): Promise<OpenocdSession> {
    const session = new OpenocdSession(options.args);
    try {
      const port = await session.waitForLog(/Listening on port (\d+) for tcl connections/, options.startTimeoutMs ?? 10_000);
      await session.connect(Number(port[1]));
      return session;
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  /** OpenOCD's process id (for CPU accounting in the benchmark). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get log(): readonly string[] {
    return this.logLines;
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exited;
  }

  private waitForLog(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (const l of this.logLines) {
          const m = l.match(re);
          if (m) {
            done();
            resolve(m);
            return true;
          }
        }
        return false;
      };
      const onExit = (): void => {
        done();
        reject(new Error(`openocd exited (${JSON.stringify(this.exited)}) before logging ${re}; log:\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`openocd did not log ${re} within ${timeoutMs} ms; log:\n${this.tail()}`));
      }, timeoutMs);
      const onData = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.child.stderr!.off('data', onData);
        this.child.stdout!.off('data', onData);
        this.child.off('exit', onExit);
      };
      if (check()) return;
      if (this.exited) return onExit();
      // Registered after the line splitter, so the log already holds the chunk when this runs.
      this.child.stderr!.on('data', onData);
      this.child.stdout!.on('data', onData);
      this.child.once('exit', onExit);
    });
  }

  private connect(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        s.on('error', () => {});
        this.socket = s;
        resolve();
      });
      s.once('error', reject);
    });
  }

  /** Runs one Tcl command, bounded by timeoutMs; on expiry OpenOCD is killed and the call rejects. */
  async tcl(command: string, timeoutMs = 10_000): Promise<TclResult> {
    const socket = this.socket;
    if (!socket) throw new Error('openocd session is not connected');
    const script = `set _r [catch {${command}} _e]; list $_r $_e`;
    const reply = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        const end = buf.indexOf(SUB);
        if (end >= 0) {
          done();
          resolve(buf.slice(0, end));
        }
      };
      const onClose = (): void => {
        done();
        reject(new Error(`openocd closed its Tcl connection during "${command}"; log:\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        this.kill();
        reject(new Error(`openocd did not answer "${command}" within ${timeoutMs} ms (killed); log:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
      };
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(script + SUB);
    });
    return parseCatchList(reply);
  }

  /** Like tcl(), but throws unless the code is 0. */
  async ok(command: string, timeoutMs?: number): Promise<string> {
    const r = await this.tcl(command, timeoutMs);
    if (r.code !== 0) {
      throw new Error(`openocd "${command}" failed with code ${r.code}: ${r.text}\nlog:\n${this.tail()}`);
    }
    return r.text;
  }

  private tail(n = 25): string {
    return this.logLines.slice(-n).join('\n');
  }

  private kill(): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  /** Asks OpenOCD to shut down, and kills it (and its group) if it has not exited within 3 s. */
  async close(): Promise<void> {
    if (!this.exited && this.socket && !this.socket.destroyed) this.socket.write('shutdown' + SUB);
    if (!this.exited) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.kill();
        }, 3000);
        this.exitWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
        if (this.exited) resolve();
      });
    }
    this.socket?.destroy();
  }
}

/** `list $r $e` gives "<code> <element>", the element braced or backslash-quoted when needed. */
export function parseCatchList(reply: string): TclResult {
  const m = reply.match(/^(-?\d+) ?([\s\S]*)$/);
  if (!m) return { code: -1, text: reply };
  let rest = m[2]!;
  if (rest.startsWith('{') && rest.endsWith('}')) rest = rest.slice(1, -1);
  else rest = rest.replace(/\\(.)/g, '$1');
  return { code: Number(m[1]), text: rest };
}
