// An emulated sysfs GPIO tree, for running onoff's own code off-Pi. It must run as root inside a private
// mount namespace (`unshare --mount --propagation private`): it mounts a tmpfs over /sys/class/gpio (or
// over /sys/class when the kernel has no GPIO sysfs at all), lays out gpiochip entries, and plays the
// kernel's part in another process than onoff's, because onoff busy-waits synchronously for the files an
// export creates. The line holder under test is started from here so it shares the namespace.
//
// What is emulated, as drivers/gpio/gpiolib-sysfs.c does it:
// - `export`/`unexport` are FIFOs the emulator reads (a regular file would lose the first of two quick
//   unexports). onoff writes a bare number with no separator, so concatenated writes are split into the
//   numbers currently exported (unexport) or into a chip's range (export).
// - `direction`: "high"/"low" set the *raw* level with the direction, "out" is "low", "in" releases;
//   `active_low` inverts `value`, which holds the logical level; the raw level is what a relay sees.
// - unexport removes gpioN/. What the line does then is the pinctrl driver's choice, so it is the
//   scenario's `release`: "keep" (Raspberry Pi kernels by default: still an output at its raw level) or
//   "input" (upstream drivers, and Pi kernels with strict_gpiod: back to an input, nothing driven).
// Errors a kernel returns from write() cannot come from a FIFO: EACCES comes from a root-only `export`
// opened by an unprivileged holder, EINVAL from an `export` that is /proc/self/oom_score_adj (which
// refuses numbers above 1000 with EINVAL) — both real errno values from real kernel paths.
//
// Protocol: one JSON object per line. stdout: {"ready":true}, {"holder":<its line>}, {"holderExit":…},
// {"state":…}, {"fatal":"…"}. stdin: {"spawn":<holder config>,"uid"?:n}, {"send":<holder command>},
// {"kill":"SIGTERM"}, {"state":true}.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface EmulatedChip {
  name: string; // gpiochip571
  label: string;
  base: number;
  ngpio: number;
  /** The character device's name under device/, e.g. gpiochip0. */
  cdev: string;
}

export interface Scenario {
  sysfs: 'present' | 'missing';
  chips: EmulatedChip[];
  export: 'fifo' | 'root-only' | 'einval';
  /** What an unexported output does (default "keep"). */
  release?: 'keep' | 'input';
}

export interface GpioState {
  direction: string;
  activeLow: boolean;
  /** The level on the wire. */
  raw: 0 | 1;
}

export interface TreeState {
  exported: Record<string, GpioState>;
  /** Each unexported line as the driver left it: the last raw level still driven, or direction "in". */
  released: Record<string, GpioState>;
  log: string[];
}

const GPIO = '/sys/class/gpio';
const say = (msg: unknown): void => void process.stdout.write(`${JSON.stringify(msg)}\n`);

function mountTmpfs(scenario: Scenario): void {
  const target = fs.existsSync(GPIO) ? GPIO : path.dirname(GPIO);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=1m', 'gpio-emulator', target]);
  if (scenario.sysfs === 'missing') {
    if (target === GPIO) execFileSync('umount', [GPIO]); // a kernel without GPIO sysfs has no such dir
    return;
  }
  if (target !== GPIO) fs.mkdirSync(GPIO);
}

class Emulator {
  private readonly exported = new Map<number, GpioState>();
  private readonly released = new Map<number, GpioState>();
  private readonly log: string[] = [];
  private readonly selfWritten = new Map<string, string>();
  private readonly watchers: fs.FSWatcher[] = [];
  private syncCount = 0;
  private readonly syncWaiters = new Map<string, () => void>();

  constructor(private readonly scenario: Scenario) {}

  start(): void {
    for (const chip of this.scenario.chips) {
      const dir = path.join(GPIO, chip.name);
      fs.mkdirSync(path.join(dir, 'device', chip.cdev), { recursive: true });
      fs.writeFileSync(path.join(dir, 'label'), `${chip.label}\n`);
      fs.writeFileSync(path.join(dir, 'base'), `${chip.base}\n`);
      fs.writeFileSync(path.join(dir, 'ngpio'), `${chip.ngpio}\n`);
    }
    if (this.scenario.export === 'einval') {
      fs.symlinkSync('/proc/self/oom_score_adj', path.join(GPIO, 'export'));
    } else {
      this.fifo('export', this.scenario.export === 'root-only' ? '0200' : '0222', (n) => this.onExport(n));
    }
    this.fifo('unexport', '0222', (n) => this.onUnexport(n));
    this.watchers.push(
      fs.watch(GPIO, (_event, file) => {
        const waiter = file ? this.syncWaiters.get(file) : undefined;
        if (waiter) waiter();
      }),
    );
  }

  private fifo(name: string, mode: string, onNumber: (token: string) => void): void {
    const p = path.join(GPIO, name);
    execFileSync('mkfifo', ['-m', mode, p]);
    // O_RDWR keeps a writer on our side, so writers never block and we never read EOF.
    const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const sock = new net.Socket({ fd, readable: true, writable: false });
    sock.setEncoding('ascii');
    sock.on('data', (text: string) => {
      for (const token of text.split(/\s+/).filter(Boolean)) onNumber(token);
    });
  }

  private chipOf(n: number): EmulatedChip | undefined {
    return this.scenario.chips.find((c) => n >= c.base && n < c.base + c.ngpio);
  }

  /** Splits "588589" into numbers accepted by `ok`, preferring the shortest valid first number. */
  private split(token: string, ok: (n: number) => boolean): number[] | undefined {
    if (token === '') return [];
    for (let len = 1; len <= token.length; len++) {
      const n = Number(token.slice(0, len));
      if (!/^\d+$/.test(token.slice(0, len)) || !ok(n)) continue;
      const rest = this.split(token.slice(len), ok);
      if (rest) return [n, ...rest];
    }
    return undefined;
  }

  private onExport(token: string): void {
    const numbers = this.split(token, (n) => this.chipOf(n) !== undefined);
    if (!numbers) {
      this.log.push(`export refused ${token}`);
      return;
    }
    for (const n of numbers) {
      if (this.exported.has(n)) {
        this.log.push(`export busy ${n}`);
        continue;
      }
      const dir = path.join(GPIO, `gpio${n}`);
      const state: GpioState = { direction: 'in', activeLow: false, raw: 0 };
      fs.mkdirSync(dir);
      // Watch before the files exist: onoff proceeds the moment `value` appears, and a write it makes
      // before the watch is in place would go unseen.
      this.watchers.push(fs.watch(dir, (_e, file) => file && this.exported.get(n) === state && this.onAttribute(n, state, file)));
      this.exported.set(n, state);
      this.released.delete(n);
      this.log.push(`export ${n}`);
      for (const [file, content] of [['direction', 'in'], ['active_low', '0'], ['edge', 'none'], ['value', '0']] as const) {
        this.write(path.join(dir, file), content);
      }
    }
  }

  private onUnexport(token: string): void {
    const numbers = this.split(token, (n) => this.exported.has(n));
    if (!numbers) {
      this.log.push(`unexport refused ${token}`);
      return;
    }
    for (const n of numbers) {
      const state = this.exported.get(n)!;
      // The last value written may not have been seen yet: read the files as they are now.
      for (const file of ['direction', 'active_low', 'value']) this.onAttribute(n, state, file);
      this.exported.delete(n);
      this.released.set(n, this.scenario.release === 'input' ? { ...state, direction: 'in' } : { ...state });
      fs.rmSync(path.join(GPIO, `gpio${n}`), { recursive: true, force: true });
      this.log.push(`unexport ${n}`);
    }
  }

  private write(file: string, content: string): void {
    this.selfWritten.set(file, content);
    fs.writeFileSync(file, `${content}\n`);
  }

  private onAttribute(n: number, state: GpioState, name: string): void {
    const file = path.join(GPIO, `gpio${n}`, name);
    let content: string;
    try {
      content = fs.readFileSync(file, 'ascii').trim();
    } catch {
      return;
    }
    // Our own "out" must not read as a new "out" (= drive low). Value and active_low need no such guard:
    // handling them is idempotent, and a guard would hide a rig write that matches ours.
    if (name === 'direction' && this.selfWritten.get(file) === content) return;
    const valueFile = path.join(GPIO, `gpio${n}`, 'value');
    const logical = (): string => String(state.raw ^ (state.activeLow ? 1 : 0));
    if (name === 'direction') {
      if (content === 'high' || content === 'low' || content === 'out') {
        state.raw = content === 'high' ? 1 : 0;
        state.direction = 'out';
        this.write(file, 'out');
        this.write(valueFile, logical());
      } else if (content === 'in') {
        state.direction = 'in';
      }
      this.log.push(`gpio${n} direction ${content}`);
    } else if (name === 'active_low') {
      const activeLow = content === '1';
      if (activeLow !== state.activeLow) {
        state.activeLow = activeLow;
        this.write(valueFile, logical());
      }
    } else if (name === 'value') {
      if (state.direction === 'out' && (content === '0' || content === '1')) {
        state.raw = (Number(content) ^ (state.activeLow ? 1 : 0)) as 0 | 1;
      } else if (content !== logical()) {
        // An input's value is not the writer's to set (the kernel answers EPERM); put it back.
        this.write(valueFile, logical());
      }
    }
  }

  /** Resolves once every event queued before this call has been handled (inotify keeps order). */
  sync(): Promise<void> {
    const marker = `.sync-${++this.syncCount}`;
    return new Promise((resolve) => {
      this.syncWaiters.set(marker, () => {
        this.syncWaiters.delete(marker);
        fs.rmSync(path.join(GPIO, marker), { force: true });
        resolve();
      });
      fs.writeFileSync(path.join(GPIO, marker), '');
    });
  }

  state(): TreeState {
    const obj = (m: Map<number, GpioState>): Record<string, GpioState> => Object.fromEntries([...m].map(([k, v]) => [String(k), { ...v }]));
    return { exported: obj(this.exported), released: obj(this.released), log: [...this.log] };
  }
}

async function main(): Promise<void> {
  const scenario = JSON.parse(process.argv[2] ?? '') as Scenario;
  // The emulator races onoff's busy-wait (10000 open() attempts, some 70 ms): let it win on a busy box.
  try {
    os.setPriority(-10);
  } catch {
    // not fatal: only less margin
  }
  mountTmpfs(scenario);
  const emulator = scenario.sysfs === 'present' ? new Emulator(scenario) : undefined;
  emulator?.start();

  let holder: ChildProcess | undefined;
  const holderScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'line-holder.ts');
  say({ ready: true });

  for await (const text of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(text) as { spawn?: unknown; uid?: number; send?: unknown; kill?: NodeJS.Signals; state?: boolean };
    if (cmd.spawn !== undefined) {
      holder = spawn(process.execPath, ['--import', 'tsx', holderScript, JSON.stringify(cmd.spawn)], {
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(cmd.uid !== undefined ? { uid: cmd.uid, gid: cmd.uid } : {}),
      });
      const h = holder;
      try {
        // With the emulator at -10, onoff's busy-wait cannot starve it on a loaded two-core box.
        if (h.pid !== undefined) os.setPriority(h.pid, 10);
      } catch {
        // only less margin
      }
      let stderr = '';
      h.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      createInterface({ input: h.stdout! }).on('line', (line) => {
        void (emulator?.sync() ?? Promise.resolve()).then(() => say({ holder: JSON.parse(line) }));
      });
      h.on('exit', (code, signal) => {
        void (emulator?.sync() ?? Promise.resolve()).then(() => say({ holderExit: { code, signal, stderr } }));
      });
    } else if (cmd.send !== undefined) {
      holder?.stdin!.write(`${JSON.stringify(cmd.send)}\n`);
    } else if (cmd.kill !== undefined) {
      holder?.kill(cmd.kill);
    } else if (cmd.state) {
      await emulator?.sync();
      say({ state: emulator?.state() ?? null });
    }
  }
  holder?.kill('SIGKILL');
  process.exit(0);
}

main().catch((err: unknown) => {
  say({ fatal: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
