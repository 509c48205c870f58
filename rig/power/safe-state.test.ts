// A rig process holding relay lines is stopped by SIGTERM or dies of an uncaught exception: the relays must
// end at their safe levels, seen from the virtual board's side, and the process must still end the way it
// would have without us (killed by the signal, or exit code 1 with the error printed).
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Rails, type RailName } from '../../sim/rails.ts';
import { startFirmataBoard, type VirtualFirmataBoard } from '../../sim/firmata/board.ts';
import type { PowerConfigInput } from './config.ts';

const holderScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testing', 'line-holder.ts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-safe-'));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
// After the file's last test: every test's ptys live in it.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Msg = Record<string, unknown>;

class Holder {
  private readonly messages: Msg[] = [];
  private wake: (() => void) | undefined;
  stderr = '';
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.messages.push(JSON.parse(l) as Msg);
      this.wake?.();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  async next(timeoutMs = 15_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the line holder said nothing within ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => (clearTimeout(t), resolve());
      });
    }
    return this.messages.shift()!;
  }

  async ask(cmd: Msg): Promise<Msg> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next();
  }

  send(cmd: Msg): void {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

function startHolder(power: PowerConfigInput): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript, JSON.stringify({ station: 'bench-s', power })], { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  return new Holder(child);
}

/** Resolves when the rails reach `want` (checked on every change), or rejects after `timeoutMs`. */
function railsReach(rails: Rails, want: Partial<Record<RailName, boolean>>, timeoutMs = 5000): Promise<void> {
  const ok = (): boolean => Object.entries(want).every(([k, v]) => rails.get(k as RailName) === v);
  return new Promise((resolve, reject) => {
    if (ok()) return resolve();
    const onChange = (): void => {
      if (!ok()) return;
      clearTimeout(timer);
      rails.off('change', onChange);
      resolve();
    };
    const timer = setTimeout(() => {
      rails.off('change', onChange);
      reject(new Error(`rails did not reach ${JSON.stringify(want)} within ${timeoutMs} ms; they are ${JSON.stringify(rails.snapshot())}`));
    }, timeoutMs);
    rails.on('change', onChange);
  });
}

async function bench(): Promise<{ rails: Rails; board: VirtualFirmataBoard; power: PowerConfigInput }> {
  const rails = new Rails();
  const board = await startFirmataBoard({ rails, pins: { moduleVbat: 2, targetVdd: 4, targetNrst: { pin: 5, contact: 'NO' } }, dir, name: `s${Date.now().toString(36)}` });
  cleanups.push(() => board.close());
  const power: PowerConfigInput = {
    boards: { relays: { port: board.info.port, connectTimeoutMs: 5000 } },
    lines: {
      vbat: { kind: 'firmata', board: 'relays', pin: 2, relay: 'NC', safe: 'on' },
      vdd: { kind: 'firmata', board: 'relays', pin: 4, relay: 'NC', safe: 'off', initial: 'on' },
      nrst: { kind: 'firmata', board: 'relays', pin: 5, relay: 'NO', safe: 'on', initial: 'off' },
    },
  };
  return { rails, board, power };
}

describe('safe state of Firmata relay lines', () => {
  test('SIGTERM: the relays go to their safe levels and the process still dies of SIGTERM', async () => {
    const { rails, power } = await bench();
    const holder = startHolder(power);
    expect(await holder.next()).toEqual({ opened: ['vbat', 'vdd', 'nrst'] });
    await holder.ask({ set: 'vbat', on: false });
    expect(rails.snapshot()).toMatchObject({ moduleVbat: false, targetVdd: true, targetNrst: false });

    holder.kill('SIGTERM');
    expect(await holder.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(rails.snapshot()).toMatchObject({ moduleVbat: true, targetVdd: false, targetNrst: true });
  });

  test('SIGTERM with another cleanup in the same process: both run, the process still dies of SIGTERM', async () => {
    const { rails, power } = await bench();
    const holder = startHolder(power);
    await holder.next();
    await holder.ask({ otherCleanup: true });
    await holder.ask({ set: 'vbat', on: false });
    holder.kill('SIGTERM');
    expect(await holder.next()).toEqual({ otherCleanup: 'done' });
    expect(await holder.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(rails.snapshot()).toMatchObject({ moduleVbat: true, targetVdd: false, targetNrst: true });
  });

  test('an uncaught exception: the relays are at their safe levels, the error is printed, exit code 1', async () => {
    const { rails, board, power } = await bench();
    const holder = startHolder(power);
    await holder.next();
    await holder.ask({ set: 'vbat', on: false });
    await holder.ask({ set: 'nrst', on: false });
    holder.send({ throw: 'flow blew up' });
    expect(await holder.exit).toEqual({ code: 1, signal: null });
    expect(holder.stderr).toContain('flow blew up');
    // The safe levels were written synchronously as the process died; the board applies them on receipt.
    await railsReach(rails, { moduleVbat: true, targetVdd: false, targetNrst: true });
    expect([board.pinLevel(2), board.pinLevel(4), board.pinLevel(5)]).toEqual([false, true, true]);
  });
});
