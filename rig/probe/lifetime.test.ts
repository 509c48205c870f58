// No OpenOCD outlives the rig: whether the rig process exits, crashes or is SIGKILLed, its OpenOCD goes too.
// The rig is played by a child Node process (testing/hold-probe.ts); OpenOCD's death is observed as its Tcl
// socket closing, then confirmed in /proc.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

import { groupMembers } from './testing/procs.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

interface Held {
  rig: ReturnType<typeof spawn>;
  pid: number;
  rigExit: Promise<number | null>;
}

async function holdProbe(pdeathsig: boolean): Promise<Held> {
  const args = ['--import', 'tsx', path.join(here, 'testing/hold-probe.ts'), ...(pdeathsig ? [] : ['--no-pdeathsig'])];
  const rig = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  const rigExit = new Promise<number | null>((r) => rig.once('exit', (code) => r(code)));
  let stderr = '';
  rig.stderr!.on('data', (d) => (stderr += String(d)));
  const first = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`hold-probe printed nothing within 20 s; stderr: ${stderr}`)), 20_000);
    rig.stdout!.on('data', (d) => {
      out += String(d);
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    rig.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hold-probe exited with ${code} before OpenOCD was up; stderr: ${stderr}`));
    });
  });
  const { pid } = JSON.parse(first) as { pid: number };
  return { rig, pid, rigExit };
}

/** Running members of the group; a zombie waiting for its reaper is dead already. */
function running(pid: number) {
  return groupMembers(pid).filter((p) => p.state !== 'Z');
}

/**
 * OpenOCD is not our child, so no exit event reaches us (and it listens on no port whose closing could tell
 * us): re-read /proc, bounded, until it is gone. Whatever is still running then is left to the caller to
 * report, and killed so that nothing stays behind for the next run.
 */
async function runningAfterExit(pid: number, withinMs = 10_000) {
  const end = performance.now() + withinMs;
  let left = running(pid);
  while (left.length > 0 && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    left = running(pid);
  }
  if (left.length > 0) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone after all */
    }
  }
  return left;
}

describe('no OpenOCD outlives the rig', () => {
  test('the rig exits without closing the probe: the exit handler kills OpenOCD', async () => {
    const h = await holdProbe(false);
    expect(running(h.pid).map((p) => p.comm)).toEqual(['openocd']);
    h.rig.stdin!.write('exit\n');
    expect(await h.rigExit).toBe(3);
    expect(await runningAfterExit(h.pid)).toEqual([]);
  });

  test('the rig crashes with an uncaught exception: OpenOCD goes too', async () => {
    const h = await holdProbe(false);
    h.rig.stdin!.write('throw\n');
    expect(await h.rigExit).not.toBe(0);
    expect(await runningAfterExit(h.pid)).toEqual([]);
  });

  test('the rig is SIGKILLed and there is no parent-death signal: OpenOCD sees its Tcl pipe close and shuts itself down', async () => {
    const h = await holdProbe(false);
    expect(running(h.pid).map((p) => p.comm)).toEqual(['openocd']);
    h.rig.kill('SIGKILL');
    await h.rigExit;
    expect(await runningAfterExit(h.pid)).toEqual([]);
  });

  test('the rig is SIGKILLed (no handler can run): the kernel kills OpenOCD (parent-death signal)', async () => {
    const h = await holdProbe(true);
    expect(running(h.pid).map((p) => p.comm)).toEqual(['openocd']);
    h.rig.kill('SIGKILL');
    await h.rigExit;
    expect(await runningAfterExit(h.pid)).toEqual([]);
  });
});

describe('no probe scratch directory outlives the rig', () => {
  /** A rig holding an open Probe whose scratch directory lives in a fresh run directory, ended by `how`. */
  async function endHeldProbe(how: 'exit' | 'throw'): Promise<{ before: string[]; after: string[]; code: number | null }> {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'probe-lifetime-'));
    const rig = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'testing/hold-probe.ts'), '--probe', runDir], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    const rigExit = new Promise<number | null>((r) => rig.once('exit', (code) => r(code)));
    let stderr = '';
    rig.stderr!.on('data', (d) => (stderr += String(d)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`hold-probe --probe printed nothing within 20 s; stderr: ${stderr}`)), 20_000);
        rig.stdout!.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
        rig.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`hold-probe --probe exited with ${code} before its probe was open; stderr: ${stderr}`));
        });
      });
      const before = readdirSync(runDir);
      rig.stdin!.write(`${how}\n`);
      const code = await rigExit;
      return { before, after: readdirSync(runDir), code };
    } finally {
      if (rig.exitCode === null && rig.signalCode === null) rig.kill('SIGKILL');
      rmSync(runDir, { recursive: true, force: true });
    }
  }

  test('the rig exits without closing the probe: the exit handler removes its scratch directory', async () => {
    const r = await endHeldProbe('exit');
    expect(r.before).toEqual([expect.stringMatching(/^sota-rig-\d+-openocd-/)]);
    expect(r.code).toBe(3);
    expect(r.after).toEqual([]);
  });

  test('the rig crashes with an uncaught exception: its scratch directory goes too', async () => {
    const r = await endHeldProbe('throw');
    expect(r.before).toEqual([expect.stringMatching(/^sota-rig-\d+-openocd-/)]);
    expect(r.code).not.toBe(0);
    expect(r.after).toEqual([]);
  });
});
