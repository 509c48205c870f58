// The test helper's OpenOCD does not outlive the test process that started it: not when that process exits
// without closing it, not when it is SIGKILLed. The test process is played by a child Node process; the real
// openocd runs with its `dummy` adapter (no simulator needed), and its death is read from /proc.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test } from 'vitest';
import { firstLine, stillRunningAfter } from '../harness.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const HOLDER = `
import { OpenocdSession } from './sim/jtag/openocd-session.ts';
const s = await OpenocdSession.start({ args: ['-c', 'adapter driver dummy', '-c', 'gdb_port disabled; telnet_port disabled; tcl_port 0', '-c', 'init'] });
process.stdout.write(JSON.stringify({ openocd: s.pid }) + '\\n');
process.stdin.once('data', () => process.exit(3));
`;

const left: number[] = [];
afterEach(() => {
  // A failed test must not leave its OpenOCD behind (it leads its own process group).
  for (const pid of left.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});


async function hold(): Promise<{ holder: ReturnType<typeof spawn>; openocd: number; exit: Promise<number | null> }> {
  const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOLDER], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((r) => holder.once('exit', (code) => r(code)));
  let stderr = '';
  holder.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  const line = await firstLine(holder, 20_000, 'OpenOCD was up', () => stderr);
  const { openocd } = JSON.parse(line) as { openocd: number };
  left.push(openocd);
  expect(readFileSync(`/proc/${openocd}/comm`, 'utf8').trim()).toBe('openocd');
  return { holder, openocd, exit };
}

test('the test process exits without closing the session: its exit hook kills OpenOCD', async () => {
  const h = await hold();
  h.holder.stdin!.write('exit\n');
  expect(await h.exit).toBe(3);
  expect(await stillRunningAfter([h.openocd], 5_000)).toEqual([]);
});

test('the test process is SIGKILLed (no hook runs): the kernel kills OpenOCD (parent-death signal)', async () => {
  const h = await hold();
  h.holder.kill('SIGKILL');
  await h.exit;
  expect(await stillRunningAfter([h.openocd], 5_000)).toEqual([]);
});
