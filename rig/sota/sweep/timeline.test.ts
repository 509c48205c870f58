import { describe, expect, test } from 'vitest';
import { parseFault } from '../faults.ts';
import { dutRecord, proxyRecord } from './testing/records.ts';
import type { RunRecord } from '../record.ts';
import { describeMoment, faultLanding, landedAt, marksOf, mergeTimelines, timelineOf, triggerAt, triggerMoment, windowAt } from './timeline.ts';

describe('the timeline of a clean dut run', () => {
  const tl = timelineOf(dutRecord());

  test('windows from what was seen, contiguous, the swap starting at the install even when the boot line came first', () => {
    expect(tl.mode).toBe('dut');
    expect(tl.windows.map((w) => [w.name, w.start, w.end])).toEqual([
      ['plan', 300, 301],
      ['download', 301, 800],
      ['reads', 800, 1210],
      ['install', 1210, 1210],
      ['swap', 1210, 1620],
      ['trial', 1620, 1750],
    ]);
  });

  test('an answer read before the plan it answers (the taps are separate ports) does not turn the windows round', () => {
    expect(timelineOf(dutRecord({ confirmReadFirst: true })).windows.slice(0, 2).map((w) => [w.name, w.start, w.end])).toEqual([
      ['plan', 300, 300],
      ['download', 300, 800],
    ]);
  });

  test('marks: events by occurrence, block offsets, the named moments, console lines that fire only there', () => {
    const byTrigger = new Map(tl.marks.map((m) => [m.trigger, m.t]));
    expect(byTrigger.get('event=10702')).toBe(600);
    expect(byTrigger.get('event=10702#2')).toBe(700);
    expect(byTrigger.get('offset=1024')).toBe(900);
    expect(byTrigger.get('programming')).toBe(810);
    expect(byTrigger.get('after-update3')).toBe(1210);
    expect(byTrigger.get('before-version-report')).toBe(1710);
    expect(byTrigger.get('delay=0')).toBe(100);
    // A sequence number changes from run to run: generalised, since the line is the only one of its kind.
    expect(byTrigger.get('console=^\\[boot\\] record seq=\\d+ state=pending$')).toBe(1235);
    // Swap steps are many of a kind: literal.
    expect(byTrigger.get('console=^\\[boot\\] swap unit 2/2 step 1$')).toBe(1420);
    // The second boot line cannot be named apart from the first: no mark.
    expect(tl.marks.filter((m) => m.trigger.includes('BOOT')).map((m) => m.t)).toEqual([120]);
    expect(tl.marks.map((m) => m.t)).toEqual([...tl.marks.map((m) => m.t)].sort((a, b) => a - b));
  });

  test('every mark, read back as a trigger on the same run, comes at its own time', () => {
    const r = dutRecord();
    for (const m of marksOf(r)) expect([m.trigger, triggerMoment(r, m.trigger)]).toEqual([m.trigger, m.t]);
  });

  test('a moment becomes the latest mark before it plus the rest in ms; a mark itself needs no offset', () => {
    expect(triggerAt(tl, 1330).trigger).toBe('console=^\\[boot\\] swap unit 1/2 step 2$+30ms');
    expect(triggerAt(tl, 1420).trigger).toBe('console=^\\[boot\\] swap unit 2/2 step 1$');
    expect(triggerAt(tl, 930).trigger).toBe('offset=1024+30ms');
    // Before any other mark, the delay counts from the schedule's start.
    expect(triggerAt(tl, 115).trigger).toBe('delay=15');
    // The text is the fault model's: it parses, with an action after it.
    expect(parseFault(`${triggerAt(tl, 1330).trigger}:power-cycle-target`).trigger).toMatchObject({ kind: 'console', afterMs: 30 });
  });

  test('where a point landed: from the point run’s own marks, whatever its timing did before them', () => {
    // The point run went 200 ms slower from the download on; its fault fired 30 ms after unit 1 step 2.
    const point = dutRecord({ shift: 200, shiftFrom: 400, cutAt: 1330 + 200 });
    expect(landedAt(tl, point, 1330 + 200)).toBe(1330);
    // Nothing reached: no place.
    expect(landedAt(tl, dutRecord(), 50)).toBeUndefined();
  });

  test('several clean runs merge: windows at their median lengths, each mark at its median time into its window', () => {
    const slower = dutRecord({ shift: 50, shiftFrom: 400 });
    // This run read the console 100 ms late in the swap, then all at once.
    const burst = dutRecord({ lateConsole: { from: 1290, until: 1420 } });
    const merged = mergeTimelines([dutRecord(), slower, burst].map(timelineOf));
    expect(merged.windows).toEqual(tl.windows);
    const at = (trigger: string) => merged.marks.find((m) => m.trigger === trigger)?.t;
    expect(at('console=^\\[boot\\] swap unit 1/2 step 2$')).toBe(1300);
    expect(at('event=10702#2')).toBe(700);
    // Runs that went through other windows: the first run's timeline stands.
    const cut = timelineOf(dutRecord({ cutAt: 1630 }));
    expect(mergeTimelines([cut, tl])).toBe(cut);
  });

  test('windows and moments in words', () => {
    expect(windowAt(tl, 1300)?.name).toBe('swap');
    expect(windowAt(tl, 5000)?.name).toBe('trial');
    expect(describeMoment(tl, 1300)).toBe('swap +90 ms');
  });
});

describe('the timeline of a clean proxy run', () => {
  const tl = timelineOf(proxyRecord());

  test('windows from the module events and the flow steps', () => {
    expect(tl.mode).toBe('proxy');
    expect(tl.windows.map((w) => [w.name, w.start, w.end])).toEqual([
      ['plan', 300, 302],
      ['download', 302, 460],
      ['reads', 460, 900],
      ['install', 900, 906],
      ['program', 906, 2400],
      ['report', 2400, 2600],
    ]);
  });

  test('marks from the transcript and the steps; each comes at its own time', () => {
    const byTrigger = new Map(tl.marks.map((m) => [m.trigger, m.t]));
    expect(byTrigger.get('offset=2048')).toBe(730);
    expect(byTrigger.get('after-update3')).toBe(904.5);
    expect(byTrigger.get('programming')).toBe(906);
    expect(byTrigger.get('before-version-report')).toBe(2580);
    expect(byTrigger.get('event=10704')).toBe(905);
    for (const m of tl.marks) expect(triggerMoment(proxyRecord(), m.trigger)).toBe(m.t);
    expect(triggerAt(tl, 1500).trigger).toBe('programming+594ms');
  });
});

describe('where a fault landed in its own run', () => {
  const cut = 'console=^\\[boot\\] swap unit 1/2 step 2$:power-cycle-target=200';
  /** A clean dut run cut off at `cutAt`, the fault noted at `firedAt`, and the MCU's restart after it. */
  function cutRun(cutAt: number, firedAt: number, after: { t: number; text: string }[]): RunRecord {
    const r = dutRecord({ cutAt, fired: [{ fault: cut, t: firedAt }] });
    for (const l of after) {
      r.dut!.console.push(l);
      r.dut!.tap.push({ t: l.t, dir: 'console', kind: 'console', text: l.text });
    }
    return r;
  }
  const resumed = [
    { t: 1520, text: '[boot] BOOT vbl-1.0' },
    { t: 1530, text: '[boot] resume swap unit 1/2 step 3' },
    { t: 1700, text: '[boot] boot slot A STM32 2_0_0 trial' },
  ];

  test('a cut noted during the swap, the MCU silent from then until it booted again: in the swap', () => {
    const r = cutRun(1300, 1305, resumed);
    expect(faultLanding(r, r.fired[0]!)).toEqual({ t: 1305, window: 'swap' });
  });

  test('a cut the MCU outran (it finished the swap and began its trial boot before its supply went): in the trial, at its last line', () => {
    const r = cutRun(1625, 1590, [{ t: 1830, text: '[boot] BOOT vbl-1.0' }]);
    expect(faultLanding(r, r.fired[0]!)).toEqual({ t: 1620, window: 'trial' });
  });

  test('a module fault lands when it was executed; before the plan there is no window', () => {
    const r = dutRecord();
    expect(faultLanding(r, { fault: 'offset=1024:power-cycle-module=300', t: 905 })).toEqual({ t: 905, window: 'reads' });
    expect(faultLanding(r, { fault: 'delay=50:power-cycle-target=200', t: 50 }).window).toBeUndefined();
    const p = proxyRecord();
    expect(faultLanding(p, { fault: 'offset=1024:network-cut=100', t: timelineOf(p).windows.find((w) => w.name === 'reads')!.start + 1 }).window).toBe('reads');
  });
});
