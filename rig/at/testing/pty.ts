// A real pty pair made by socat, for integration tests: the rig opens one end with serialport, a
// scripted peer the other. Killing socat makes both ends vanish, as an unplugged USB adapter does.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { ScriptedPeer, seededRandom } from './peer.ts';
import type { Script } from './peer.ts';

export interface PtyPair {
  /** The rig's end. */
  readonly a: string;
  /** The peer's end. */
  readonly b: string;
  readonly socat: ChildProcess;
  /** Kills socat (both ends vanish) and waits for it to exit. */
  kill(): Promise<void>;
  /** Kills socat if still running and removes the directory. */
  dispose(): Promise<void>;
}

/**
 * Starts `socat` and resolves once it reports its transfer loop, i.e. once both links exist. `far`: another
 * socat address for the far side instead of pty `b` (e.g. `EXEC:cat`, an echo that copies with blocking
 * writes); `b` is then not created.
 */
export async function startPtyPair(opts: { dir?: string; timeoutMs?: number; far?: string } = {}): Promise<PtyPair> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'sota-rig-pty-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  // Links left by a killed socat would satisfy the existence check before the new ptys are made.
  rmSync(a, { force: true });
  rmSync(b, { force: true });
  const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, opts.far ?? `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => socat.once('exit', () => resolve()));
  const kill = async () => {
    if (socat.exitCode === null && socat.signalCode === null) {
      socat.kill('SIGKILL');
      await exited;
    }
  };
  const timeoutMs = opts.timeoutMs ?? 5000;
  let stderr = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`socat did not create ${a} and ${b} within ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs,
      );
      socat.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`socat could not start (is it installed? npm run setup): ${err.message}`));
      });
      socat.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`socat exited with ${code} before creating the ptys; stderr: ${stderr}`));
      });
      socat.stderr!.on('data', (d: Buffer) => {
        if (stderr.length < 8192) stderr += d.toString();
        if (stderr.includes('starting data transfer loop') && existsSync(a) && (opts.far !== undefined || existsSync(b))) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (err) {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    a,
    b,
    socat,
    kill,
    dispose: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PtyPeer {
  readonly peer: ScriptedPeer;
  /** Every byte the rig wrote, as received. */
  readonly fromRig: Buffer[];
  close(): Promise<void>;
}

/** Opens the peer's end of a pty pair with serialport and puts a scripted module behind it. */
export async function openPtyPeer(pathB: string, script: Script, seed?: number): Promise<PtyPeer> {
  const serial = new SerialPort({ path: pathB, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => serial.open((err) => (err ? reject(err) : resolve())));
  const peer = new ScriptedPeer(
    (piece) =>
      new Promise<void>((resolve) => {
        if (!serial.isOpen) return resolve();
        serial.write(piece, () => resolve());
      }),
    script,
    seed === undefined ? undefined : seededRandom(seed),
  );
  const fromRig: Buffer[] = [];
  serial.on('data', (d: Buffer) => {
    fromRig.push(d);
    peer.fromRig(d);
  });
  serial.on('error', () => {}); // this end vanishes too when socat is killed; the test looks at the rig's end
  return {
    peer,
    fromRig,
    close: async () => {
      if (serial.isOpen) await new Promise<void>((r) => serial.close(() => r()));
    },
  };
}
