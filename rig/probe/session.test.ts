// The OpenOCD session without a target: the real openocd binary with its `dummy` adapter (no hardware, no
// simulator) is enough for the process lifecycle, the Tcl framing and every failure path that does not need
// a target to answer.

import net from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';

import { AbortedError, InfrastructureError, isInfrastructureError } from '../errors.ts';
import { OpenOcdCommandError } from './errors.ts';
import { ProbeLog } from './log.ts';
import { OpenOcdSession, liveOpenOcdPids } from './openocd.ts';
import { groupMembers, listeningSockets, openOcdChildrenOf } from './testing/procs.ts';

const DUMMY = ['-c', 'adapter driver dummy'];
const sessions: OpenOcdSession[] = [];
const servers: net.Server[] = [];

async function start(args: readonly string[] = DUMMY, extra: { startTimeoutMs?: number } = {}): Promise<OpenOcdSession> {
  const s = await OpenOcdSession.start({ station: 'test-bench', args, ...extra });
  sessions.push(s);
  return s;
}

function expectGone(pid: number): void {
  expect(groupMembers(pid)).toEqual([]);
  expect(openOcdChildrenOf()).toEqual([]);
  expect(liveOpenOcdPids()).not.toContain(pid);
}

afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
  for (const srv of servers.splice(0)) srv.close();
  expect(openOcdChildrenOf()).toEqual([]);
});

describe('OpenOCD session (dummy adapter)', () => {
  test('starts, answers Tcl calls, tells failure from success by code, and shuts down cleanly', async () => {
    const s = await start();
    expect(s.alive).toBe(true);
    // Tcl goes over OpenOCD's stdin and stdout: no port any local user could connect to.
    expect(listeningSockets(s.pid)).toEqual([]);
    expect(groupMembers(s.pid).map((p) => p.comm)).toEqual(['openocd']);

    expect(await s.call('expr {6 * 7}', { timeoutMs: 5000 })).toBe('42');
    // Multi-line and brace-unbalanced results survive the list envelope intact.
    expect(await s.call('return "a b\\n{c"', { timeoutMs: 5000 })).toBe('a b\n{c');
    expect(await s.call('set empty {}', { timeoutMs: 5000 })).toBe('');

    const err = await s.call('no_such_command 1', { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenOcdCommandError);
    const ce = err as OpenOcdCommandError;
    expect(ce.code).not.toBe(0);
    expect(ce.text).toContain('invalid command name "no_such_command"');
    expect(ce.station).toBe('test-bench');
    expect(isInfrastructureError(ce)).toBe(false);
    // OpenOCD's own error codes (here ERROR_COMMAND_ARGUMENT_INVALID) come through as negative numbers.
    const arg = (await s.call('sleep soon', { timeoutMs: 5000 }).catch((e: unknown) => e)) as OpenOcdCommandError;
    expect(arg).toBeInstanceOf(OpenOcdCommandError);
    expect(arg.code).toBeLessThan(0);
    // The session is still usable after refused commands.
    expect(await s.call('expr {1 + 1}', { timeoutMs: 5000 })).toBe('2');

    const pid = s.pid;
    await s.close();
    const exit = await s.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expectGone(pid);
    expect(s.log.text()).toContain('shutdown command invoked');
  });

  test('a reply of a megabyte arrives whole, and the next reply is not mixed into it', async () => {
    const s = await start();
    const [big, next] = await Promise.all([s.call('string repeat abcdefgh 150000', { timeoutMs: 10_000 }), s.call('expr 7', { timeoutMs: 10_000 })]);
    expect(big.length).toBe(1_200_000);
    expect(big.slice(0, 16)).toBe('abcdefghabcdefgh');
    expect(/^(abcdefgh)+$/.test(big)).toBe(true);
    expect(next).toBe('7');
  });

  test('calls are serialised: concurrent callers each get their own answer', async () => {
    const s = await start();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => s.call(`expr {${i} * 3}`, { timeoutMs: 5000 })));
    expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => String(i * 3)));
  });

  test('a command that does not answer within its timeout gets OpenOCD killed, group and all', async () => {
    const s = await start();
    const pid = s.pid;
    // `sleep` blocks OpenOCD's event loop exactly like a silent target does.
    const err = await s.call('sleep 60000', { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).message).toMatch(/did not answer "sleep 60000" within 300 ms; killed it/);
    expect((err as InfrastructureError).station).toBe('test-bench');
    expectGone(pid);
    expect(s.alive).toBe(false);
    // Later calls fail at once with a typed error instead of hanging.
    const later = await s.call('expr 1', { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(InfrastructureError);
    expect((later as Error).message).toMatch(/not running/);
  });

  test('a second close() while the first still waits for an OpenOCD that will not die is bounded like the first', async () => {
    const s = await start();
    const pid = s.pid;
    const pending = s.call('sleep 60000', { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    // An OpenOCD stuck in a USB driver outlives SIGKILL: played by a kill that does nothing.
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    try {
      const both = Promise.all([s.close(), s.close()]).then(() => 'both settled');
      // The first close gives up after its kill wait (5 s); the second must not wait longer than that.
      expect(await Promise.race([both, new Promise((r) => setTimeout(() => r('a close() still waiting 8 s later'), 8_000))])).toBe('both settled');
    } finally {
      kill.mockRestore();
      process.kill(-pid, 'SIGKILL');
    }
    await s.exited;
    expect(await pending).toBeInstanceOf(AbortedError);
  });

  test('an abort in the middle of a command kills OpenOCD and throws AbortedError', async () => {
    const s = await start();
    const pid = s.pid;
    const ac = new AbortController();
    const pending = s.call('sleep 60000', { timeoutMs: 60_000, signal: ac.signal });
    // Abort once OpenOCD is demonstrably inside the command: its log shows nothing, so wait for the request
    // to be on the wire by issuing the abort from the next macrotask after the write.
    setImmediate(() => ac.abort(new Error('operator pressed Ctrl-C')));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(isInfrastructureError(err)).toBe(true);
    expectGone(pid);
    // An already-aborted signal never reaches OpenOCD.
    const s2 = await start();
    const pre = await s2.call('expr 1', { timeoutMs: 5000, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(pre).toBeInstanceOf(AbortedError);
    expect(s2.alive).toBe(true);
    expect(await s2.call('expr 2', { timeoutMs: 5000 })).toBe('2');
  });

  test('OpenOCD killed from outside mid-command: typed error with its last log lines, no orphan, restartable', async () => {
    const log = new ProbeLog();
    const s = await OpenOcdSession.start({ station: 'test-bench', args: DUMMY, log });
    sessions.push(s);
    const pid = s.pid;
    const pending = s.call('sleep 60000', { timeoutMs: 30_000 });
    setImmediate(() => process.kill(pid, 'SIGKILL'));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    const ie = err as InfrastructureError;
    expect(ie.message).toMatch(/OpenOCD went away: OpenOCD was killed by SIGKILL/);
    expect(ie.lastLines.some((l) => l.includes("accepting 'tcl' connection from pipe"))).toBe(true);
    expectGone(pid);

    const again = await OpenOcdSession.start({ station: 'test-bench', args: DUMMY, log });
    sessions.push(again);
    expect(await again.call('expr 5', { timeoutMs: 5000 })).toBe('5');
    expect(log.text()).toMatch(/killed by SIGKILL[\s\S]*ready, Tcl on its stdin\/stdout/);
  });

  test('a log line saying the adapter link is gone ends the session at once, mid-command included', async () => {
    const s = await OpenOcdSession.start({ station: 'test-bench', args: DUMMY, linkLostPatterns: [/ADAPTER-GONE/] });
    sessions.push(s);
    const pid = s.pid;
    // The line is logged while the command still runs; OpenOCD would otherwise sit out the whole sleep.
    const err = await s.call('echo ADAPTER-GONE; sleep 60000', { timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).message).toMatch(/adapter link is lost; OpenOCD killed/);
    expect((err as InfrastructureError).seen).toBe('"ADAPTER-GONE"');
    expectGone(pid);
    expect((await s.exited).signal).toBe('SIGKILL');
  });

  test('a configuration OpenOCD rejects: typed error carrying the exit code and the log lines that explain it', async () => {
    const err = await start([...DUMMY, '-c', 'no_such_setting 1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    const ie = err as InfrastructureError;
    expect(ie.message).toMatch(/stopped before its Tcl server was ready: OpenOCD exited with rc 1/);
    expect(ie.lastLines.join('\n')).toContain('invalid command name "no_such_setting"');
    expect(openOcdChildrenOf()).toEqual([]);
  });

  test('a missing binary is an infrastructure error, not a crash', async () => {
    for (const parentDeathSignal of [true, false]) {
      const err = await OpenOcdSession.start({ station: 'test-bench', args: DUMMY, openocd: '/nonexistent/openocd', parentDeathSignal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      // Either spawn's own ENOENT or setpriv's "failed to execute" in the last log lines.
      expect(`${(err as InfrastructureError).message}\n${(err as InfrastructureError).lastLines.join('\n')}`).toMatch(/\/nonexistent\/openocd/);
    }
  });

  test('a remote_bitbang peer that accepts and never answers: OpenOCD killed within the start timeout', async () => {
    const srv = net.createServer(() => {
      /* accept, read nothing back, answer nothing */
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const args = ['-c', 'adapter driver remote_bitbang', '-c', 'remote_bitbang host 127.0.0.1', '-c', `remote_bitbang port ${port}`, '-c', 'jtag newtap chip cpu -irlen 4'];
    const err = await start(args, { startTimeoutMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    const ie = err as InfrastructureError;
    expect(ie.message).toMatch(/did not get ready within 1500 ms .*killed it/);
    expect(ie.lastLines.join('\n')).toMatch(/starting/);
    expect(openOcdChildrenOf()).toEqual([]);
  });

  test('an abort during start kills OpenOCD', async () => {
    const srv = net.createServer(() => {});
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const ac = new AbortController();
    const args = ['-c', 'adapter driver remote_bitbang', '-c', 'remote_bitbang host 127.0.0.1', '-c', `remote_bitbang port ${port}`, '-c', 'jtag newtap chip cpu -irlen 4'];
    // Abort once OpenOCD has connected to the silent peer, i.e. while init hangs.
    srv.once('connection', () => ac.abort(new Error('test over')));
    const err = await OpenOcdSession.start({ station: 'test-bench', args, startTimeoutMs: 20_000 }, ac.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(openOcdChildrenOf()).toEqual([]);
  });
});

describe('OpenOCD session: queued calls', () => {
  test('an abort while queued behind a long command rejects at once and never reaches OpenOCD', async () => {
    const s = await OpenOcdSession.start({ station: 'test-bench', args: DUMMY });
    sessions.push(s);
    const long = s.call('sleep 300', { timeoutMs: 10_000 });
    const ac = new AbortController();
    const queued = s.call('set marker queued', { timeoutMs: 10_000, signal: ac.signal });
    ac.abort(new Error('no longer wanted'));
    await expect(queued).rejects.toBeInstanceOf(AbortedError);
    expect(await long).toBe('');
    expect(s.alive).toBe(true);
    // It was never run: the variable it would have set does not exist.
    await expect(s.call('set marker', { timeoutMs: 5000 })).rejects.toBeInstanceOf(OpenOcdCommandError);
  });
});
