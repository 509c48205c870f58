// The station's health check: the short suite `npm run nightly` runs first on every station, before any SOTA
// test (LAVA's health-check rule). The station opens; the module answers AT and says what it is; it registers
// with the cloud; the probe examines the target; a module power cycle brings it back. A station failing any
// of these is broken infrastructure for the night: nightly runs none of its suites, and every failure here
// is a HealthCheckError (kind infrastructure), whatever the part said, so the report files it under
// "Infrastructure failures" for that station and not under the firmware's. The result is kept as the
// station's last health check on this host (rig inventory shows it) and the station's identity goes into
// the report's table of the station.
import * as allure from 'allure-js-commons';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { isEvent } from '../../rig/quecthing/index.ts';
import { ensureRegistered } from '../../rig/sota/index.ts';
import { readIdentity } from '../../rig/station/identity.ts';
import { hostName, writeHealth, type HealthResult } from '../../rig/station/inventory.ts';
import { openStation, type OpenedStation } from '../../rig/station/index.ts';
import { simSettings } from '../../rig/station/virtual.ts';
import { STATION_LABEL } from '../../scripts/report-lib/environments.ts';
import { writeStationRecord } from '../../scripts/report-lib/stations.ts';
import { AllureRecorder, allureResultsDir, labelFailureReason } from '../support/allure.ts';
import { HealthCheckError } from '../support/health.ts';
import { ROOT, suiteStation } from '../support/station-config.ts';

const suite = await suiteStation();
const name = suite.name;
const PACKAGE_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const steps: HealthResult['steps'] = [];
let station: OpenedStation | undefined;
let openError: unknown;

/** One check: its time and verdict for the health record; any failure becomes a HealthCheckError. */
function check(title: string, timeout: number, body: (s: OpenedStation, recorder: AllureRecorder, signal: AbortSignal) => Promise<string>): void {
  test(title, { timeout }, async ({ signal }) => {
    await allure.feature('Health check');
    await allure.story(title);
    await allure.label(STATION_LABEL, name);
    await allure.parameter('station', name);
    const recorder = new AllureRecorder();
    const t0 = performance.now();
    // A station that did not open fails every later check for that one reason: one cause, one group.
    const failedFirst = title !== OPEN && !station;
    try {
      if (failedFirst) throw openError ?? new Error('the station did not open');
      const detail = await body(station!, recorder, signal);
      steps.push({ name: title, ok: true, ms: Math.round(performance.now() - t0), detail });
    } catch (err) {
      if (title === OPEN) openError = err;
      const e = new HealthCheckError(name, failedFirst ? OPEN : title, err);
      steps.push({ name: title, ok: false, ms: Math.round(performance.now() - t0), detail: e.seen ?? e.message });
      throw e;
    }
  });
}

const OPEN = 'the station opens (lock, power lines, module port, OpenOCD)';
const T = suite.timeouts;
const bound = T.bootMs + T.registerMs + 20 * (T.commandMs + T.marginMs) + 30_000;

afterEach(({ task }) => labelFailureReason(task, name));

afterAll(async () => {
  try {
    await station?.close();
  } finally {
    const failed = steps.find((s) => !s.ok);
    const ok = failed === undefined && steps.length === CHECKS;
    writeHealth({
      station: name,
      host: hostName(),
      at: new Date().toISOString(),
      ok,
      summary: ok ? `passed: ${steps.map((s) => s.name.split(' (')[0]).join('; ')}` : failed ? `failed: ${failed.name}: ${failed.detail.split('\n')[0]}` : `incomplete: ${steps.length} of ${CHECKS} checks ran`,
      steps,
    });
  }
});

describe('health check', () => {
  check(OPEN, bound, async (_s, recorder, signal) => {
    station = await openStation(name, { config: suite.config, signal, recorder });
    return `${station.info.probe}; ${station.module.path}`;
  });

  check('the module answers AT and says what it is (ATI, AT+QGMR, AT+GSN, AT+QIOTINFO?)', bound, async (s, recorder, signal) => {
    const o = { timeoutMs: T.commandMs + T.marginMs, signal };
    await recorder.step('AT → OK', () => s.module.qt.at(o));
    const identity = await recorder.step('identity (ATI, AT+QGMR, AT+GSN, AT+QIOTINFO?, examine)', () => readIdentity(s, signal));
    writeStationRecord(allureResultsDir(ROOT), {
      station: name,
      kind: suite.entry.kind === 'virtual' ? 'virtual' : 'hardware',
      host: hostName(),
      scope: `${name}.health`,
      identity,
      ...(suite.entry.kind === 'virtual' ? { sim: simSettings(suite.entry) } : {}),
      rig: PACKAGE_VERSION,
      node: process.version,
    });
    recorder.attach('identity', `${JSON.stringify(identity, null, 2)}\n`, 'application/json');
    expect(identity.module.imei, 'AT+GSN gave no IMEI').toMatch(/^\d{14,17}$/);
    return `${identity.module.model} ${identity.module.firmware}, IMEI ${identity.module.imei}, QuecThing ${identity.module.quecthing}`;
  });

  check('the module registers (+QIOTEVT: 2,10200 and 3,10200)', bound, async (s, recorder, signal) => {
    await ensureRegistered(s, { signal, recorder });
    const state = await s.module.qt.state({ timeoutMs: T.commandMs + T.marginMs, signal });
    expect(state.state, 'AT+QIOTSTATE? after registering').toBe(8);
    return 'registered (AT+QIOTSTATE: 8)';
  });

  check('the probe examines the target', bound, async (s, recorder, signal) => {
    const info = await recorder.step('examine', () => s.probe.examine({ signal }));
    expect(info.idcode ?? 0, 'the debug port answered no IDCODE').toBeGreaterThan(0);
    expect(info.flashSizeKiB, 'the flash-size register reads 0').toBeGreaterThan(0);
    return `${info.core}, IDCODE 0x${(info.idcode ?? 0).toString(16)}, ${info.flashSizeKiB} KiB flash`;
  });

  check('a module power cycle brings it back (RDY, then AT)', bound, async (s, recorder, signal) => {
    if (!s.power.can('cycle', 'module')) throw new Error('the station has no module supply line (power.roles.moduleSupply): the night could not recover a hung module');
    const events = s.module.qt.events();
    try {
      await recorder.step('module supply off 500 ms, then on', () => s.power.cycle('module', 500, { signal }));
      if (!s.module.at.isOpen) await s.module.reopen({ signal });
      await recorder.step('RDY', () => events.next(isEvent('reboot'), { timeoutMs: T.bootMs + T.marginMs, signal, expected: 'RDY after the power cycle' }));
    } finally {
      events.close();
    }
    await recorder.step('AT → OK', () => s.module.qt.at({ timeoutMs: T.commandMs + T.marginMs, signal }));
    return 'RDY and AT after 500 ms off';
  });
});

const CHECKS = 5;
