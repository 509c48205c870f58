// A per-station lock so that two runs never share a station. It is a real kernel flock(2), held by a tiny
// `flock … cat` child whose stdin is a pipe from this process: when the rig exits — even by SIGKILL — the pipe
// closes, `cat` ends and the kernel drops the lock. No stale lock files, no PID guessing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InfrastructureError } from '../errors.ts';

export interface LockOwner {
  pid: number;
  host: string;
  user: string;
  command: string;
  since: string;
}

export interface StationLock {
  readonly station: string;
  readonly file: string;
  release(): Promise<void>;
}

const CONFLICT = 75; // EX_TEMPFAIL, so a conflict cannot be mistaken for flock's own usage errors

export function defaultLockDir(): string {
  return process.env.RIG_LOCK_DIR ?? path.join(os.tmpdir(), 'sota-rig-locks');
}

function lockFileFor(dir: string, station: string): string {
  return path.join(dir, `${station.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`);
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(`${file}.owner.json`, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function describeOwner(o: LockOwner | undefined): string {
  if (!o) return 'another process (owner unknown)';
  return `pid ${o.pid} (${o.user}@${o.host}, "${o.command}") since ${o.since}`;
}

/** Takes the station's lock or fails at once, naming who holds it. Never waits for the holder. */
export async function lockStation(station: string, opts: { dir?: string; timeoutMs?: number } = {}): Promise<StationLock> {
  const dir = opts.dir ?? defaultLockDir();
  mkdirSync(dir, { recursive: true });
  const file = lockFileFor(dir, station);
  const timeoutMs = opts.timeoutMs ?? 5000;

  // A session of its own: a terminal's Ctrl-C or hang-up goes to the rig's process group, and must not end
  // the holder (freeing the lock) while the rig is still bringing the station to its safe state.
  const child = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT), file, 'sh', '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new InfrastructureError(`could not take the station lock ${file} within ${timeoutMs} ms`, { station, expected: 'flock to answer', seen: 'no answer' }));
    }, timeoutMs);
    const done = (fn: () => void) => {
      clearTimeout(timer);
      fn();
    };
    child.once('error', (err) =>
      done(() => reject(new InfrastructureError(`cannot run flock(1) to lock the station: ${err.message}`, { station, expected: 'util-linux flock on PATH', cause: err }))),
    );
    child.stdout?.once('data', () => done(resolve));
    child.once('exit', (code) =>
      done(() => {
        if (code === CONFLICT) {
          reject(new InfrastructureError(`station is in use by ${describeOwner(readOwner(file))}`, { station, expected: 'a free station', seen: `lock ${file} held` }));
        } else {
          reject(new InfrastructureError(`flock exited with ${code} while locking ${file}`, { station, seen: stderr.trim() || `exit code ${code}` }));
        }
      }),
    );
  });

  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    user: os.userInfo().username,
    command: process.argv.slice(1).map((a) => path.basename(a)).join(' '),
    since: new Date().toISOString(),
  };
  writeFileSync(`${file}.owner.json`, JSON.stringify(owner) + '\n');
  // The holder must not keep the rig alive on its own; the lock lives exactly as long as this process.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();

  return { station, file, release: () => releaseLock(child, file) };
}

async function releaseLock(child: ChildProcess, file: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  rmSync(`${file}.owner.json`, { force: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}
