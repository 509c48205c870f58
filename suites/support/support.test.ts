// The suites' own helpers, without a station: the read-phase chart, the health ledger, attachments wrapped
// for the report, the root-cause error of a failed run, and which errors the suites retry.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { TestError } from 'vitest';
import { AbortedError, FirmwareError, InfrastructureError, InternalError, ProtocolError } from '../../rig/errors.ts';
import { isRetryable, retry } from '../fixtures.ts';
import { ATTACHMENT_WIDTH, wrapLongLines } from './allure.ts';
import { assignLanes, escapeXml, niceStep, readPhaseChart, textWidth } from './chart.ts';
import { timelineFromRecord } from './timeline.ts';
import { BROKEN_AFTER, HealthLedger, StationBrokenError, stationScope } from './health.ts';
import { secretLeaks, stationSecrets } from './secrets.ts';
import { testBudget } from './station-config.ts';
import { expectFaultsFired, expectOutcome, runFailure } from './evidence.ts';
import { parseFault } from '../../rig/sota/index.ts';
import type { ProxyRun } from '../../rig/sota/index.ts';
import { resolveTimeouts } from '../../rig/station/timeouts.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'sota-suites-test-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An error as vitest hands it to retry.condition: its toJSON() when it has one (RigError does). */
const serialized = (e: Error): TestError =>
  ('toJSON' in e && typeof e.toJSON === 'function' ? (e.toJSON as () => object)() : { name: e.name, message: e.message }) as TestError;

describe('read-phase chart', () => {
  const input = {
    progress: [
      { t: 1000, offset: 1024 },
      { t: 1100, offset: 2048 },
      { t: 2500, offset: 3000 },
    ],
    phases: [
      { name: 'download', start: 0, end: 900, ok: true },
      { name: 'read blocks <1>', start: 900, end: 2600, ok: false },
    ],
    faults: [{ fault: 'offset=2048:power-cycle-module=500', t: 1200 }],
    size: 3000,
    durationMs: 3000,
    title: 'virtual: full_2_0_0 & more',
  };

  test('draws one step pair per block, every phase, every fault, with names escaped', () => {
    const svg = readPhaseChart(input);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    const points = /<polyline points="([^"]+)"/.exec(svg)![1]!.split(' ');
    expect(points).toHaveLength(2 * input.progress.length);
    // The last point is the end of the file: the top of the plot, under the title and one lane of fault labels.
    expect(points.at(-1)!.split(',')[1]).toBe(String(24 + 16 + 14));
    expect(svg).toContain('2. read blocks &lt;1&gt;: at 0.90 s, 1700 ms (failed)');
    expect(svg).toContain('virtual: full_2_0_0 &amp; more');
    expect(svg).toContain('offset=2048:power-cycle-module=500');
    // A failed phase is drawn in red.
    expect(svg).toContain('fill="#fde8e8"');
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  test('says so when no block was read', () => {
    const svg = readPhaseChart({ ...input, progress: [], faults: [] });
    expect(svg).toContain('no block was read in this run');
    expect(svg).not.toContain('<polyline');
  });

  test('tick steps are 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(7.3, 8)).toBe(1);
    expect(niceStep(25_344, 5)).toBe(10_000);
    expect(niceStep(0.4, 8)).toBe(0.05);
    expect(niceStep(0, 8)).toBe(1);
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });
});

describe('dut timeline picture', () => {
  test('one row per phase name (repeats share it), every fault, every MCU start, names escaped', () => {
    const record = {
      station: { name: 'bench<3>' },
      current: { version: '1_0_0' },
      package: { version: '2_0_0' },
      mode: 'dut',
      flow: 'dut',
      verdict: { summary: 'rolled-back: the new image ran in trial' },
      durationMs: 4000,
      phases: [
        { name: 'block reads', start: 100, end: 1000, durationMs: 900, ok: true },
        { name: 'swap', start: 1200, end: 1500, durationMs: 300, ok: false },
        { name: 'swap #2', start: 1600, end: 1900, durationMs: 300, ok: true },
        { name: 'trial boot', start: 2000, end: 3000, durationMs: 1000, ok: false },
      ],
      fired: [{ fault: 'console=swap unit 2/:power-cycle-target=200', t: 1500, phase: 'swap', effect: 'target power-cycled' }],
      dut: { starts: [{ t: 0, why: 'reset', reported: true }, { t: 1510, why: 'fault', reported: true }] },
    } as unknown as Parameters<typeof timelineFromRecord>[0];
    const svg = timelineFromRecord(record);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('bench&lt;3&gt;: 1_0_0 → 2_0_0 (dut), rolled-back');
    // block reads, swap (twice, one row), trial boot: three rows, four bars (one cut short, orange).
    expect(svg.match(/<text x="\d+" y="\d+" text-anchor="end">/g)).toHaveLength(3);
    expect(svg.match(/<rect [^>]*fill="#(4a7bd0|d08a4a)"/g)).toHaveLength(4);
    expect(svg.match(/fill="#d08a4a"/g)).toHaveLength(2);
    expect(svg.match(/stroke="#c0392b"/g)).toHaveLength(1);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg).toContain('power-cycle-target=200');
  });
});

describe('read-phase chart, crowded', () => {
  // A run with a restarted download: eighteen phases, some with long names, and four faults, three of them
  // within 100 ms of each other — the case where labels used to land on top of each other.
  const names = ['prepare plan', 'register', 'set version', 'request plan', 'confirm', 'download', 'read blocks', 'register (attempt 2)', 'request plan (attempt 2)', 'confirm (attempt 2)', 'download (attempt 2)', 'read blocks (attempt 2) #2', 'verify package', 'update', 'program', 'read back', 'report version', 'read back #2'];
  const phases: { name: string; start: number; end: number; ok: boolean }[] = [];
  let t = 0;
  names.forEach((name, i) => {
    const d = i === 6 || i === 11 ? 2500 : i === 14 ? 9000 : 40 + i * 13;
    phases.push({ name, start: t, end: t + d, ok: i !== 6 });
    t += d;
  });
  const faults = [
    { fault: 'offset=8192:power-cycle-module=500', t: 1700 },
    { fault: 'event=10703:reset-module=100', t: 1750 },
    { fault: 'delay=300:network-cut=300', t: 1800 },
    { fault: 'before-version-report:close-port', t: t - 30 },
  ];
  const svg = readPhaseChart({
    progress: Array.from({ length: 25 }, (_, i) => ({ t: 900 + i * 100, offset: (i + 1) * 1024 })),
    phases,
    faults,
    size: 25_344,
    durationMs: t,
    title: 'bench-2: 1_0_0 → 2_0_0 (delta package delta_1_0_0_to_2_0_0_for_a_long_customer_name), read phase (25344 bytes in 25 blocks, 10095 B/s)',
  });

  /** Every horizontal text of the chart as a box: its position, anchor and size, the same estimate of width. */
  function textBoxes(): { text: string; x0: number; x1: number; y0: number; y1: number }[] {
    return [...svg.matchAll(/<text ([^>]*)>(.*?)<\/text>/g)]
      .filter((m) => !m[1]!.includes('rotate('))
      .map((m) => {
        const attr = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(m[1]!)?.[1];
        const text = m[2]!.replace(/<title>.*?<\/title>/, '').replace(/&[a-z]+;/g, '&');
        const size = Number(attr('font-size') ?? 11);
        const w = textWidth(text, size);
        const x = Number(attr('x'));
        const x0 = attr('text-anchor') === 'end' ? x - w : attr('text-anchor') === 'middle' ? x - w / 2 : x;
        const y = Number(attr('y'));
        return { text, x0, x1: x0 + w, y0: y - size, y1: y };
      });
  }

  test('no two labels overlap, and none leaves the picture', () => {
    const boxes = textBoxes();
    const width = Number(/width="(\d+)"/.exec(svg)![1]);
    const overlaps: string[] = [];
    boxes.forEach((a, i) => {
      expect(a.x0, `"${a.text}" starts left of the picture`).toBeGreaterThanOrEqual(0);
      expect(a.x1, `"${a.text}" ends right of the picture`).toBeLessThanOrEqual(width);
      for (const b of boxes.slice(i + 1)) {
        if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1) overlaps.push(`"${a.text}" × "${b.text}"`);
      }
    });
    expect(overlaps).toEqual([]);
    // Nothing was dropped to get there: every phase in the legend, every fault named.
    for (const [i, p] of phases.entries()) expect(svg).toContain(`${i + 1}. ${escapeXml(p.name)}: at`);
    for (const f of faults) expect(svg).toContain(`>${f.fault}</text>`);
  });

  test('labels of nearby moments go to separate lanes; labels far apart share one', () => {
    expect(assignLanes([{ x: 100, width: 200 }, { x: 150, width: 100 }, { x: 400, width: 50 }, { x: 120, width: 40 }])).toEqual([0, 2, 0, 1]);
  });
});

describe('attachments in the report', () => {
  test('a line longer than the code view is continued under its text, cut after a comma; nothing is lost', () => {
    const line = '    2.640 [RX]+QIOTEVT: 7,10701,"STM32",25344,"558deea8851a55910ef82d23e0b9c5d5",2414178375,"43ce9bb0fc7f6e3736eff0feacf54a1150f555ecdb2f84d6ece2aa526590957d"';
    const out = wrapLongLines(`short line\n${line}\n${'x'.repeat(250)}`);
    const rows = out.split('\n');
    expect(rows[0]).toBe('short line');
    expect(rows[1]).toBe('    2.640 [RX]+QIOTEVT: 7,10701,"STM32",25344,"558deea8851a55910ef82d23e0b9c5d5",2414178375,');
    expect(rows[2]).toBe('              ↳ "43ce9bb0fc7f6e3736eff0feacf54a1150f555ecdb2f84d6ece2aa526590957d"');
    for (const r of rows) expect(r.length, r).toBeLessThanOrEqual(ATTACHMENT_WIDTH);
    const joined = rows.map((r) => r.replace(/^\s*↳ /, '')).join('');
    expect(joined.replace(/\s/g, '')).toBe(`short line${line}${'x'.repeat(250)}`.replace(/\s/g, ''));
  });
});

describe('a failed run as the test failure', () => {
  // A run record as runProxyUpgrade returns it when the module answered ERROR to a block read.
  const failed = {
    station: { name: 'bench-2' },
    verdict: { outcome: undefined, reason: undefined, failure: { type: 'unexpected-event', kind: 'protocol', message: 'bench-2: AT+QIOTOTARD=27648,1024: ERROR' }, expected: ['upgraded'], ok: false, summary: 'failure (unexpected-event): bench-2: AT+QIOTOTARD=27648,1024: ERROR' },
    errors: [
      { t: 1, phase: 'download', kind: 'infrastructure', name: 'AtPortError', message: 'bench-2: /dev/ttyUSB2 closed', recovered: true },
      { t: 2, phase: 'download', kind: 'protocol', name: 'AtCommandError', message: 'bench-2: AT+QIOTOTARD=27648,1024: ERROR\n  (expected +QIOTOTARD: 27648,<n>)', recovered: false },
    ],
    events: [{ t: 0, raw: '+QIOTEVT: 7,10703,"STM32",25344,0,25344', kind: 'ota-piece-ready', code: 10703 }],
    fired: [],
  } as unknown as ProxyRun;

  test('the status message is the error that ended the run, under its own name, in its kind’s class', () => {
    const e = runFailure(failed)!;
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.name).toBe('AtCommandError');
    expect(e.message.split('\n')[0]).toBe('bench-2: AT+QIOTOTARD=27648,1024: ERROR');
    expect(e.message).toContain('the run\'s verdict: failure (unexpected-event)');
    expect((e.toJSON() as { stack: string }).stack).toMatch(/^AtCommandError \[protocol\]: bench-2: AT\+QIOTOTARD=27648,1024: ERROR\n/);
    // Whatever the test asserts afterwards, the root cause comes first.
    expect(() => expectOutcome(failed, 'upgraded')).toThrow(expect.objectContaining({ name: 'AtCommandError', kind: 'protocol' }));
    expect(() => expectFaultsFired(failed, [parseFault('offset=8192:power-cycle-module=500')])).toThrow(expect.objectContaining({ name: 'AtCommandError' }));
  });

  test('a run that did not fail has no failure to throw', () => {
    expect(runFailure({ ...failed, verdict: { ...failed.verdict, failure: undefined, outcome: 'upgraded', ok: true } } as ProxyRun)).toBeUndefined();
  });
});

describe('health ledger', () => {
  test(`${BROKEN_AFTER} infrastructure failures in a row mark the station broken; a pass in between resets the count`, () => {
    const dir = tmp();
    const a = new HealthLedger(dir, 'bench-2');
    a.infrastructureFailure('t1', 'port gone');
    a.passed();
    for (let i = 1; i < BROKEN_AFTER; i++) expect(a.infrastructureFailure(`t${i + 1}`, 'OpenOCD died')).toBe(false);
    expect(() => a.check()).not.toThrow();
    expect(a.infrastructureFailure('t9', 'bench-2: OpenOCD died\n  (details)')).toBe(true);
    // Another worker process reads the same ledger.
    const b = new HealthLedger(dir, 'bench-2');
    let err: unknown;
    try {
      b.check();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StationBrokenError);
    expect((err as Error).name).toBe('InfrastructureError');
    expect((err as Error).message).toMatch(/^bench-2: station bench-2 is marked broken/);
    expect((err as Error).message).toContain(`${BROKEN_AFTER} infrastructure failures in a row, the last: bench-2: OpenOCD died`);
    expect((err as Error).message).toContain('marked by "t9"');
    // Other stations are not affected; a broken station stays broken.
    expect(() => new HealthLedger(dir, 'bench-3').check()).not.toThrow();
    b.passed();
    expect(() => b.check()).toThrow(StationBrokenError);
  });
});

describe('retries', () => {
  test('only infrastructure errors are retried, never an abort or a broken station', () => {
    expect(isRetryable(serialized(new InfrastructureError('port vanished', { station: 'virtual' })))).toBe(true);
    expect(isRetryable(serialized(new ProtocolError('10706', { station: 'virtual' })))).toBe(false);
    expect(isRetryable(serialized(new FirmwareError('wrong image', { station: 'virtual' })))).toBe(false);
    expect(isRetryable(serialized(new AbortedError('test timed out', { station: 'virtual' })))).toBe(false);
    expect(isRetryable(serialized(new Error('expected 1 to be 2')))).toBe(false);
    expect(isRetryable(serialized(new InternalError("a rig bug: Cannot read properties of undefined (reading 'size')", { station: 'virtual' })))).toBe(false);
    const ledger = new HealthLedger(tmp(), 'virtual');
    for (let i = 0; i < BROKEN_AFTER; i++) ledger.infrastructureFailure('t', 'gone');
    expect(() => ledger.check()).toThrow(StationBrokenError);
    try {
      ledger.check();
    } catch (e) {
      expect(isRetryable(serialized(e as Error))).toBe(false);
    }
  });
});

// Through vitest itself, with the suites' retry option (see InfrastructureOnly in fixtures.ts for why it
// is not a plain function): a firmware failure runs once, an infrastructure failure is tried again.
describe('retry option', () => {
  const attempts = { firmware: 0, infrastructure: 0 };
  test('a firmware failure is not retried', { retry, fails: true }, () => {
    attempts.firmware++;
    throw new FirmwareError(`wrong image (attempt ${attempts.firmware})`, { station: 'virtual' });
  });
  test('an infrastructure failure is retried', { retry }, () => {
    attempts.infrastructure++;
    if (attempts.infrastructure < 3) throw new InfrastructureError(`port vanished (attempt ${attempts.infrastructure})`, { station: 'virtual' });
  });
  test('attempts', () => {
    expect(attempts).toEqual({ firmware: 1, infrastructure: 3 });
  });
});

describe('time budgets', () => {
  test('a stalled download ends in the flow’s own timeout verdict, inside the test’s time limit', () => {
    for (const timeScale of [1, 0.1]) {
      const t = resolveTimeouts({ timeScale });
      const b = testBudget(t, { imageBytes: 25 * 1024, slotBytes: 64 * 1024, baudRate: 115200 });
      // From the test's start to the flow's verdict on a first piece that never comes: the baseline, the
      // registration, the plan, a few commands, then the flow's whole limit on that piece.
      const toVerdict = b.baseline + t.registerMs + t.planWaitMs + 6 * (t.commandMs + t.marginMs) + b.downloadLimitMs;
      expect(toVerdict, `time scale ${timeScale}: ${toVerdict} ms to the flow's verdict, test limit ${b.baseline + b.upgrade} ms`).toBeLessThan(b.baseline + b.upgrade);
      // The limit still lets a real download through: the URL wait plus a minute of 10702 periods.
      expect(b.downloadLimitMs).toBeGreaterThanOrEqual(t.urlWaitMs + 12 * t.downloadNotifyMs);
    }
  });
});

// Suite files run in parallel workers; each file of the virtual station has its own sim.
describe('records of parallel suite files', () => {
  const files = ['/w/suites/full-package.test.ts', '/w/suites/interrupted-download.test.ts'];

  test('the virtual station keeps one health ledger per file; a bench one for the whole run', () => {
    const dir = tmp();
    const [a, b] = files.map((f) => new HealthLedger(dir, 'virtual', stationScope('virtual', true, f)));
    for (let i = 0; i < BROKEN_AFTER; i++) a!.infrastructureFailure('t', 'sim gone');
    expect(() => a!.check()).toThrow(/virtual: station virtual is marked broken/);
    expect(() => b!.check(), "another file's sim is not broken by this one's").not.toThrow();
    const [c, d] = files.map((f) => new HealthLedger(dir, 'bench-1', stationScope('bench-1', false, f)));
    for (let i = 0; i < BROKEN_AFTER; i++) c!.infrastructureFailure('t', 'port gone');
    expect(() => d!.check(), 'a bench is one station whichever file uses it').toThrow(StationBrokenError);
  });
});

describe('the ProductSecret check over what a suite run wrote', () => {
  test('names each file written during the run that holds a secret; older files and clean ones are not its business', async () => {
    const dir = tmp();
    const started = Date.now() - 1000;
    writeFileSync(path.join(dir, 'a-attachment.txt'), '   1.000 [TX]AT+QIOTCFG="productinfo","pk","S3cr3t-planted"\nS3cr3t-planted\n');
    writeFileSync(path.join(dir, 'b-result.json'), '{"name":"upgrade","steps":[]}');
    writeFileSync(path.join(dir, 'c-old.txt'), 'S3cr3t-planted');
    utimesSync(path.join(dir, 'c-old.txt'), new Date(started - 60_000), new Date(started - 60_000));
    expect(secretLeaks(dir, started, ['S3cr3t-planted'])).toEqual([`${path.join(dir, 'a-attachment.txt')}: 2 occurrence(s)`]);
    expect(secretLeaks(dir, started, [])).toEqual([]);
    expect(secretLeaks(path.join(dir, 'missing'), started, ['S3cr3t-planted'])).toEqual([]);
    // The suites' virtual station hands the module its configured secret: that is the one looked for.
    expect(await stationSecrets(tmp(), 'virtual')).toEqual(['VirtualStationProductSecret']);
  });
});
