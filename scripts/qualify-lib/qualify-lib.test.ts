// qualify's judgement of a case (whose fault it is), its exit codes, and the JUnit XML and Allure results it
// writes, without a station: run records are built by hand.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, test } from 'vitest';
import { InfrastructureError, ConfigError, FirmwareError } from '../../rig/errors.ts';
import { loadManifest } from '../../rig/images/manifest.ts';
import type { RunRecord } from '../../rig/sota/record.ts';
import type { ReadbackResult, Verdict } from '../../rig/sota/verdict.ts';
import { QualifyAllure } from './allure.ts';
import { brokenPackage, dutCases, proxyCases, SAFE_OUTCOMES } from './cases.ts';
import { junitXml } from './junit.ts';
import { judgeError, judgeRun, overall, type CaseStatus } from './outcome.ts';

interface AllureStep { name: string; status: string; attachments: { source: string }[] }
interface AllureResult { name: string; status: string; stage: string; historyId: string; labels: unknown[]; parameters: unknown[]; steps: AllureStep[]; statusDetails: { message: string; trace: string } }

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rig-qualify-lib-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const readback = (o: Partial<ReadbackResult> = {}): ReadbackResult => ({ address: 0x0800_0000, size: 25344, identified: undefined, identity: '', matchesTarget: true, matchesCurrent: false, firstDifference: null, comparison: 'equal (25344 bytes)', ...o });
const verdict = (o: Partial<Verdict>): Verdict => ({ outcome: 'upgraded', reason: undefined, failure: undefined, expected: ['upgraded'], ok: true, summary: 'upgraded', ...o });
function run(v: Partial<Verdict>, extra: Partial<RunRecord> = {}): RunRecord {
  return { station: { name: 'bench-2' }, verdict: verdict(v), readback: readback(), fired: [], errors: [], ...extra } as unknown as RunRecord;
}
const toTarget = { holds: 'target' as const, holdsVersion: '2_1_0', faults: [] };

describe("whose fault a case's result is", () => {
  test('upgraded and the flash holds the target: passed', () => {
    expect(judgeRun(run({}), toTarget, 'proxy')).toMatchObject({ status: 'passed', outcome: 'upgraded', detail: 'equal (25344 bytes)' });
  });

  test('an outcome the protocol foresees but not the expected one, a wrong image, a firmware error: the image failed', () => {
    expect(judgeRun(run({ ok: false, outcome: 'failed-intact', summary: 'failed-intact (download-rejected)' }), toTarget, 'proxy')).toMatchObject({ status: 'failed' });
    expect(judgeRun(run({ ok: false, outcome: undefined, failure: { type: 'wrong-image', kind: 'firmware', message: 'torn' }, summary: 'failure (wrong-image): torn' }), toTarget, 'proxy').status).toBe('failed');
    expect(judgeRun(run({}, { readback: readback({ matchesTarget: false, identity: 'erased (25344 bytes of 0xFF)' }) }), toTarget, 'proxy')).toMatchObject({ status: 'failed', detail: 'read-back does not hold 2_1_0: erased (25344 bytes of 0xFF)' });
  });

  test("the station's equipment failed: inconclusive, retried, with the doctor hint and the typed error", () => {
    const j = judgeRun(
      run({ ok: false, outcome: undefined, failure: { type: 'infrastructure', kind: 'infrastructure', message: 'OpenOCD died' }, summary: 'failure (infrastructure): OpenOCD died' }, {
        errors: [{ t: 1, phase: 'updating', kind: 'infrastructure', name: 'InfrastructureError', message: 'bench-2: OpenOCD died', recovered: false }],
      }),
      toTarget,
      'proxy',
    );
    expect(j).toMatchObject({ status: 'inconclusive', retry: true, error: { name: 'InfrastructureError', kind: 'infrastructure' } });
    expect(j.detail).toContain('run rig doctor bench-2');
  });

  test('a protocol failure is the station\'s in proxy mode (the rig played the MCU), the image\'s in dut mode', () => {
    const r = run({ ok: false, outcome: undefined, failure: { type: 'timeout', kind: 'protocol', message: 'no 10701' }, summary: 'failure (timeout): no 10701' });
    expect(judgeRun(r, toTarget, 'proxy')).toMatchObject({ status: 'inconclusive', retry: false });
    expect(judgeRun(r, toTarget, 'dut')).toMatchObject({ status: 'failed' });
  });

  test('a fault whose moment never came: inconclusive, the run did not test what was asked', () => {
    expect(judgeRun(run({}), { ...toTarget, faults: ['event=10701:power-cycle-module=500'] }, 'proxy')).toMatchObject({ status: 'inconclusive', detail: expect.stringMatching(/never fired/) });
    expect(judgeRun(run({}, { fired: [{ fault: 'event=10701:power-cycle-module=500' }] as never }), { ...toTarget, faults: ['event=10701:power-cycle-module=500'] }, 'proxy').status).toBe('passed');
  });

  test('a config failure, and errors thrown before a verdict', () => {
    expect(judgeRun(run({ ok: false, outcome: undefined, failure: { type: 'config', kind: 'config', message: 'no declared plan' }, summary: 'failure (config)' }), toTarget, 'proxy').status).toBe('config');
    expect(judgeError(new ConfigError('no declared plan delivers it'), 'bench-2').status).toBe('config');
    expect(judgeError(new InfrastructureError('port vanished', { station: 'bench-2' }), 'bench-2')).toMatchObject({ status: 'inconclusive', retry: true });
    // The baseline (a previous release) failed to program: not the new image's doing.
    expect(judgeError(new FirmwareError('verify failed'), 'bench-2')).toMatchObject({ status: 'inconclusive', retry: false });
  });

  test.each<[CaseStatus[], boolean, string, number]>([
    [['passed', 'passed'], false, 'QUALIFIED', 0],
    [['passed', 'failed', 'inconclusive'], false, 'NOT QUALIFIED', 1],
    [['passed', 'inconclusive'], false, 'INCONCLUSIVE', 4],
    [['passed', 'skipped'], false, 'NOT QUALIFIED', 1],
    [['passed', 'skipped'], true, 'QUALIFIED', 0],
    [['skipped', 'inconclusive'], true, 'INCONCLUSIVE', 4],
    [['failed', 'config'], false, 'CONFIG ERROR', 2],
  ])('%j (allow-skip %s) → %s, exit %d', (statuses, allowSkip, v, code) => {
    expect(overall(statuses, { allowSkip })).toMatchObject({ verdict: v, exitCode: code });
  });
});

describe('the cases and what qualify writes', () => {
  test('proxy cases from one release: full, delta, two interrupted, broken, rollback', async () => {
    const fx = await loadManifest();
    const cases = await proxyCases(fx.image('2_0_0'), [fx.image('1_1_0')], ['full', 'delta', 'interrupted', 'corrupt', 'rollback']);
    expect(cases.map((c) => [c.kind, c.pkg.name, c.holds.version])).toEqual([
      ['full', 'full_2_0_0', '2_0_0'],
      ['delta', 'delta_1_1_0_to_2_0_0', '2_0_0'],
      ['interrupted', 'full_2_0_0', '2_0_0'],
      ['interrupted', 'full_2_0_0', '2_0_0'],
      ['corrupt', 'broken_2_0_0', '1_1_0'],
      ['rollback', 'full_1_1_0', '1_1_0'],
    ]);
    const broken = brokenPackage(fx.image('2_0_0'));
    // The cloud announces the broken file's own digest: only the rebuilt image's bytes can catch it.
    expect(broken.declared.sha256).toBe(broken.sha256);
    expect(() => broken.apply()).toThrow(/is not image 2_0_0/);
  });

  test('dut cases from one release: full, delta, three power cuts, a reset in the trial boot, the next upgrade by the installed image', async () => {
    const fx = await loadManifest(path.resolve(import.meta.dirname, '..', '..', 'fixtures', 'mcu', 'manifest.json'));
    const cases = await dutCases(fx.image('2_0_0'), [fx.image('1_0_0')], ['full', 'delta', 'interrupted', 'rollback', 'next']);
    expect(cases.map((c) => [c.kind, c.pkg.name, c.expect.join('|'), c.faults.join(' '), c.needs?.join(' ') ?? '', c.then ? `${c.then.from.version} → ${c.then.pkg.version}` : ''])).toEqual([
      ['full', 'full_2_0_0', 'upgraded', '', '', ''],
      ['delta', 'delta_1_0_0_to_2_0_0', 'upgraded', '', '', ''],
      ['interrupted', 'full_2_0_0', 'upgraded', 'offset=4096:power-cycle-module=300', 'cycle module', ''],
      ['interrupted', 'full_2_0_0', SAFE_OUTCOMES.join('|'), 'offset=4096:power-cycle-target=200', 'cycle target', ''],
      ['interrupted', 'full_2_0_0', SAFE_OUTCOMES.join('|'), 'after-update3+50ms:power-cycle-target=200', 'cycle target', ''],
      ['rollback', 'full_2_0_0', 'rolled-back|upgraded', 'before-version-report:reset-target=50', 'reset target', ''],
      ['next', 'full_2_0_0', 'upgraded', '', '', '2_0_0 → 1_0_0'],
    ]);
    expect(SAFE_OUTCOMES).not.toContain('bricked');
  });

  test('dut: the slot must hold the image the verdict names when several outcomes pass', () => {
    const intact = run({ outcome: 'failed-intact', expected: SAFE_OUTCOMES, summary: 'failed-intact' }, { readback: readback({ matchesTarget: false, matchesCurrent: true }) });
    expect(judgeRun(intact, toTarget, 'dut')).toMatchObject({ status: 'passed', outcome: 'failed-intact' });
    expect(judgeRun(intact, toTarget, 'proxy')).toMatchObject({ status: 'failed' });
  });

  test('JUnit XML: valid, counted, every status in its element, hostile text escaped', () => {
    const xml = junitXml({
      name: 'qualify STM32 2_1_0 on bench-2',
      timestamp: '2026-12-07T01:00:00',
      hostname: 'pi-3',
      properties: { sha256: 'ab' },
      cases: [
        { name: 'full 1_0_0 → 2_1_0', classname: 'qualify.STM32.2_1_0', seconds: 12.5, status: 'passed', message: '', detail: '' },
        { name: 'delta <1_0_0> & "x"', classname: 'qualify.STM32.2_1_0', seconds: 3, status: 'failed', message: 'failed-intact', detail: 'rebuilt image: \u0007 bell', errorName: 'FirmwareError' },
        { name: 'interrupted', classname: 'qualify.STM32.2_1_0', seconds: 1, status: 'inconclusive', message: 'OpenOCD died', detail: 'run rig doctor', errorName: 'InfrastructureError' },
        { name: 'cut', classname: 'qualify.STM32.2_1_0', seconds: 0, status: 'skipped', message: 'no module supply line', detail: '' },
      ],
    });
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml) as { testsuites: { tests: string; failures: string; errors: string; skipped: string; testsuite: { testcase: Record<string, unknown>[] } } };
    expect(doc.testsuites).toMatchObject({ tests: '4', failures: '1', errors: '1', skipped: '1', time: '16.500' });
    const [ok, bad, inconclusive, skipped] = doc.testsuites.testsuite.testcase;
    expect(ok).toEqual({ classname: 'qualify.STM32.2_1_0', name: 'full 1_0_0 → 2_1_0', time: '12.500' });
    expect(bad).toMatchObject({ name: 'delta <1_0_0> & "x"', failure: { message: 'failed-intact', type: 'FirmwareError', '#text': 'rebuilt image: \uFFFD bell' } });
    expect(inconclusive).toMatchObject({ error: { type: 'inconclusive: InfrastructureError', message: 'OpenOCD died' } });
    expect(skipped).toMatchObject({ skipped: { message: 'no module supply line' } });
  });

  test('Allure results: one result per case, steps, attachments, status and the typed error as message and trace', async () => {
    const dir = path.join(tmp, 'allure');
    const allure = new QualifyAllure(dir);
    const ok = allure.start({ name: 'full 1_0_0 → 2_1_0', fullName: 'qualify proxy STM32 full 1_0_0 → 2_1_0', labels: { station: 'bench-2', suite: 'STM32 2_1_0' }, parameters: { 'source version': '1_0_0' } });
    await ok.step('baseline', async () => ok.attach('read-back comparison', 'equal', 'text/plain'));
    ok.finish('passed', 'equal');
    const broken = allure.start({ name: 'interrupted', fullName: 'qualify proxy STM32 interrupted', labels: { station: 'bench-2' }, parameters: {} });
    await expect(broken.step('program', async () => { throw new InfrastructureError('OpenOCD died', { station: 'bench-2' }); })).rejects.toThrow();
    broken.finish('inconclusive', 'bench-2: OpenOCD died\nrun rig doctor bench-2', { name: 'InfrastructureError', kind: 'infrastructure', message: 'bench-2: OpenOCD died' });
    const results = readdirSync(dir).filter((f) => f.endsWith('-result.json')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as AllureResult);
    expect(results).toHaveLength(2);
    const passed = results.find((r) => r.status === 'passed')!;
    expect(passed).toMatchObject({ name: 'full 1_0_0 → 2_1_0', stage: 'finished', steps: [{ name: 'baseline', status: 'passed' }] });
    expect(passed.labels).toEqual(expect.arrayContaining([{ name: 'station', value: 'bench-2' }, { name: 'host', value: os.hostname() }]));
    expect(passed.parameters).toEqual([{ name: 'source version', value: '1_0_0' }]);
    const attachment = passed.steps[0]!.attachments[0]!;
    expect(readFileSync(path.join(dir, attachment.source), 'utf8')).toBe('equal');
    const b = results.find((r) => r.status === 'broken')!;
    expect(b.steps[0]).toMatchObject({ name: 'program', status: 'broken' });
    expect(b.statusDetails.message).toBe('bench-2: OpenOCD died');
    expect(b.statusDetails.trace).toMatch(/^InfrastructureError \[infrastructure\]: bench-2: OpenOCD died\n/);
    expect(b.historyId).not.toBe(passed.historyId);
  });
});
