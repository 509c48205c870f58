// The sim process when its parent goes away: its stderr and stdout are pipes to that parent, and they break.
// A broken pipe must not become a crash loop (a failed log write reported as an uncaught exception, whose
// report is another failed write): the sim stays responsive, stops on a signal or its stdin closing, and
// leaves no socat behind. The parent's death is played by closing this process's ends of the pipes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test } from 'vitest';
import { stillRunningAfter } from './harness.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Launched {
  child: ChildProcess;
  info: { admin: { url: string }; module: { port: string }; jtag: { host: string; port: number } };
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The sim's socat children, read from /proc once it is up. */
  socats: number[];
}

const launched: ChildProcess[] = [];
afterEach(() => {
  // A sim that failed its test must not stay behind spinning.
  for (const c of launched.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The sim's children, from /proc (each thread lists the children it forked). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter((s) => s.trim() !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}


async function launch(extra: string[]): Promise<Launched> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'sim/main.ts'), '--baud', '0', ...extra], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  launched.push(child);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sim printed no JSON line within 20 s; stderr: ${stderr.slice(-1500)}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sim exited with ${code} before its JSON line; stderr: ${stderr.slice(-1500)}`));
    });
  });
  const socats = childrenOf(child.pid!).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('socat'));
  return { child, info: JSON.parse(line) as Launched['info'], exit, socats };
}

/** Makes the sim log a line: a debugger connecting to its JTAG server is logged ("jtag: debugger connected"). */
async function provokeLogLine(sim: Launched): Promise<void> {
  const sock = net.connect({ host: sim.info.jtag.host, port: sim.info.jtag.port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.destroy();
}

/** The sim's event loop still turns: its admin API answers (a spinning sim never reads the request). */
async function answers(sim: Launched): Promise<number> {
  const res = await fetch(`${sim.info.admin.url}/devices`, { signal: AbortSignal.timeout(5_000) });
  return res.status;
}

test('stderr gone (its reader closed): later log lines neither crash nor spin the sim; SIGTERM still stops it cleanly', async () => {
  const sim = await launch([]);
  // module, relay board, probe (--mcu off by default).
  expect(sim.socats).toHaveLength(3);
  sim.child.stderr!.destroy();
  await provokeLogLine(sim);
  await provokeLogLine(sim);
  expect(await answers(sim)).toBe(200);
  sim.child.kill('SIGTERM');
  expect(await Promise.race([sim.exit, new Promise((r) => setTimeout(() => r('still running 10 s after SIGTERM'), 10_000))])).toEqual({ code: 0, signal: null });
  expect(await stillRunningAfter(sim.socats, 2_000)).toEqual([]);
  expect(existsSync(path.dirname(sim.info.module.port))).toBe(false);
});

test('--exit-on-stdin-close: the parent gone (stderr, stdout, then stdin closed) → the sim closes down, exits 0, its socats go', async () => {
  const sim = await launch(['--exit-on-stdin-close']);
  sim.child.stderr!.destroy();
  sim.child.stdout!.destroy();
  await provokeLogLine(sim);
  sim.child.stdin!.destroy();
  expect(await Promise.race([sim.exit, new Promise((r) => setTimeout(() => r('still running 10 s after its pipes closed'), 10_000))])).toEqual({ code: 0, signal: null });
  expect(await stillRunningAfter(sim.socats, 2_000)).toEqual([]);
  expect(existsSync(path.dirname(sim.info.module.port))).toBe(false);
});

test('--exit-on-stdin-close: a broken stderr alone means the parent is gone; the sim stops by itself', async () => {
  const sim = await launch(['--exit-on-stdin-close']);
  sim.child.stderr!.destroy();
  await provokeLogLine(sim);
  expect(await Promise.race([sim.exit, new Promise((r) => setTimeout(() => r('still running 10 s after its stderr broke'), 10_000))])).toEqual({ code: 0, signal: null });
  expect(await stillRunningAfter(sim.socats, 2_000)).toEqual([]);
});
