// The QuecThing layer against the virtual station's module (a real sim process behind a pty): what the
// mocks in the other tests assume about the module's answers is checked here against the simulator,
// which follows the protocol reference, faults included.
import { afterEach, expect, test } from 'vitest';
import { awaitReady, simsPerTest } from '../../sim/harness.ts';
import type { SimHandle } from '../../sim/harness.ts';
import { AtPort, AtTimeoutError } from '../at/index.ts';
import { QuecThing } from './quecthing.ts';

const sim = simsPerTest(afterEach, ['--baud', '0', '--time-scale', '0.05']);
const ports: AtPort[] = [];
afterEach(async () => {
  for (const p of ports.splice(0)) await p.close();
});

/** Starts a sim, hands the module's port from the harness to an AtPort, and wraps it in QuecThing. */
async function start(): Promise<{ s: SimHandle; qt: QuecThing; port: AtPort }> {
  const s = await sim();
  await awaitReady(s);
  await new Promise<void>((resolve) => s.port.close(() => resolve()));
  const port = new AtPort({ station: 'virtual', path: s.info.module.port, commandTimeoutMs: 500 });
  ports.push(port);
  await port.open();
  const qt = new QuecThing(port);
  await qt.at();
  return { s, qt, port };
}

test('a command whose CR is lost times out alone; the next command gets its answer, not a probe timeout', async () => {
  const { s, qt, port } = await start();
  // "AT+QIOTSTATE?\r" is 14 bytes: the 14th, the CR, is lost on the way to the module.
  await s.api('POST', '/faults', { kind: 'drop-uart-bytes', count: 1, direction: 'from-rig', skip: 'AT+QIOTSTATE?'.length });
  const t0 = performance.now();
  const lost = qt.state().catch((e: unknown) => e);
  const next = qt.at();
  const e = (await lost) as AtTimeoutError;
  expect(e).toBeInstanceOf(AtTimeoutError);
  expect(e.message).toContain('virtual: no answer to AT+QIOTSTATE? within 500 ms');
  await expect(next).resolves.toBeUndefined();
  expect(performance.now() - t0).toBeLessThan(900);
  // The unfinished line, ended by the probe's bare CR, was answered on its own and discarded.
  const t = port.transcript().map((x) => `[${x.dir}]${x.text}`);
  expect(t).toContain('[RX]+QIOTSTATE: 1');
  expect(t).toContain('[--]resynchronised after AT+QIOTSTATE?');
  expect(await qt.state()).toMatchObject({ state: 1 });
});

test('secrets stay masked when a byte of the echo is lost; dk_ds set and query included', async () => {
  const { s, qt, port } = await start();
  const emitted: string[] = [];
  port.on('transcript', (e) => emitted.push(e.text));
  // The module's echo loses the quote that closes "productinfo": the line no longer has the documented shape.
  await s.api('POST', '/faults', { kind: 'drop-uart-bytes', count: 1, direction: 'to-rig', skip: 'AT+QIOTCFG="productinfo'.length });
  await qt.setProductInfo('p1sim', 'SimProductSecret9');
  await qt.setDeviceKey('dk1sim', 'SimDeviceSecret9');
  expect(await qt.deviceKey()).toEqual({ deviceKey: 'dk1sim', deviceSecret: 'SimDeviceSecret9' });
  expect(emitted).toContain('AT+QIOTCFG="productinfo,"p1sim","********"');
  expect(emitted).toContain('+QIOTCFG: "dk_ds","dk1sim","********"');
  const everything = JSON.stringify({ emitted, transcript: port.transcript() });
  for (const secret of ['SimProductSecret9', 'SimDeviceSecret9']) expect(everything).not.toContain(secret);
});

test('the MCU version of one component: the version when set, undefined for a component the module does not know', async () => {
  const { qt } = await start();
  await qt.setMcuVersion('STM32', '1_0_0');
  expect(await qt.mcuVersion('STM32')).toBe('1_0_0');
  // The simulator answers ERROR here (a bare OK is the other form a module may use; see mcuVersion).
  expect(await qt.mcuVersion('NONE')).toBeUndefined();
  expect(await qt.mcuVersions()).toEqual([{ component: 'STM32', version: '1_0_0' }]);
});
