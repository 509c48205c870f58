// Run records of a clean upgrade, written as the flows would write them, with times the tests choose: a dut
// run of the virtual MCU (taps, console, module events, the observer's phases) and a proxy run (the AT
// transcript, module events, the flow's steps). Only the fields a sweep reads are filled in.
import type { RunRecord } from '../../record.ts';
import type { PointResult } from '../model.ts';

type Line = { t: number; dir: 'mcu' | 'module' | 'console' | 'rig'; kind: string; text: string };

/**
 * A clean dut upgrade 1_0_0 → 2_0_0 of 2560 bytes in three blocks, two swap units. `shift` delays everything
 * from `shiftFrom` on (a point run that went slower there); `cutAt` ends the run there (a fault cut it).
 */
export function dutRecord(o: { shift?: number; shiftFrom?: number; cutAt?: number; fired?: { fault: string; t: number }[]; confirmReadFirst?: boolean; lateConsole?: { from: number; until: number } } = {}): RunRecord {
  const sh = (t: number) => (t >= (o.shiftFrom ?? 0) ? t + (o.shift ?? 0) : t);
  const keep = (t: number) => o.cutAt === undefined || t <= o.cutAt;
  const tap: Line[] = [];
  const consoleLines: { t: number; text: string }[] = [];
  const moduleEvents: { t: number; raw: string; code?: number }[] = [];
  const mcu = (t: number, text: string) => tap.push({ t: sh(t), dir: 'mcu', kind: 'command', text });
  const urc = (t: number, code: number, rest = '') => {
    const raw = `+QIOTEVT: 7,${code}${rest}`;
    tap.push({ t: sh(t), dir: 'module', kind: 'urc', text: raw });
    moduleEvents.push({ t: sh(t), raw, code });
  };
  const con = (t: number, text: string) => {
    // A loaded rig reads the console late, then several lines at once.
    const at = o.lateConsole && t >= o.lateConsole.from && t < o.lateConsole.until ? o.lateConsole.until : t;
    consoleLines.push({ t: sh(at), text });
    tap.push({ t: sh(at), dir: 'console', kind: 'console', text });
  };
  con(120, '[boot] BOOT vbl-1.0');
  con(121, '[boot] record seq=1 state=confirmed');
  con(122, '[boot] boot slot A STM32 1_0_0 confirmed');
  mcu(200, 'AT+QIOTMCUVER="STM32","1_0_0"');
  urc(300, 10700, ',"STM32","","2_0_0",0,0,2560');
  // The MCU's answer read before the plan it answers when its tap port is the quicker one.
  mcu(o.confirmReadFirst ? 299 : 301, 'AT+QIOTUPDATE=1');
  urc(500, 10701, ',"STM32",2560,"00","0","00"');
  urc(600, 10702);
  urc(700, 10702);
  urc(800, 10703, ',"STM32",2560,0,2560');
  mcu(810, 'AT+QIOTOTARD=0,1024');
  con(850, '[app] block 0+1024');
  mcu(900, 'AT+QIOTOTARD=1024,1024');
  con(950, '[app] block 1024+1024');
  mcu(1000, 'AT+QIOTOTARD=2048,512');
  con(1050, '[app] block 2048+512');
  mcu(1205, 'AT+QIOTUPDATE=3');
  urc(1210, 10704);
  // The boot line reaches the rig before the module's 10704 (the console is a port of its own).
  con(1208, '[boot] BOOT vbl-1.0');
  con(1235, '[boot] record seq=2 state=pending');
  con(1240, '[boot] swap unit 1/2 step 1');
  con(1300, '[boot] swap unit 1/2 step 2');
  con(1360, '[boot] swap unit 1/2 step 3');
  con(1420, '[boot] swap unit 2/2 step 1');
  con(1480, '[boot] swap unit 2/2 step 2');
  con(1540, '[boot] swap unit 2/2 step 3');
  con(1600, '[boot] swap done');
  con(1620, '[boot] boot slot A STM32 2_0_0 trial');
  con(1700, '[app] confirmed');
  mcu(1710, 'AT');
  mcu(1740, 'AT+QIOTMCUVER="STM32","2_0_0"');
  urc(1750, 10705);
  const phase = (name: string, start: number, end: number, ok = true) => ({ name, start: sh(start), end: sh(end), durationMs: sh(end) - sh(start), ok });
  const phases = [
    phase('reset the MCU (reset run over SWD)', 100, 110),
    phase('observe the upgrade', 110, 1760),
    phase('version report 1_0_0', 200, 200),
    phase('plan', 300, 301),
    phase('download (cloud → module)', 301, 800),
    phase('block reads', 810, 1210),
    phase('install (reset, swap)', 1210, 1210, false),
    phase('swap', 1240, 1620, false),
    phase('trial boot', 1620, 1740),
    phase('version report 2_0_0', 1740, 1740),
    phase('confirmation', 1740, 1750),
    phase('module 10705', 1750, 1750),
  ].filter((p) => keep(p.start));
  const record = {
    format: 'sota-rig/run-record',
    version: 1,
    flow: 'dut',
    mode: 'dut',
    startedAt: '2026-12-07T00:00:00.000Z',
    durationMs: sh(1800),
    station: { name: 'virtual' },
    phases: phases.sort((a, b) => a.start - b.start),
    events: [],
    transcript: [],
    fired: (o.fired ?? []).map((f) => ({ ...f, phase: 'observe', effect: 'target power-cycled' })),
    verdict: { outcome: 'upgraded', reason: undefined, failure: undefined, expected: ['upgraded'], ok: true, summary: 'upgraded: …' },
    dut: {
      tap: tap.filter((l) => keep(l.t)).sort((a, b) => a.t - b.t),
      console: consoleLines.filter((l) => keep(l.t)).sort((a, b) => a.t - b.t),
      moduleEvents: moduleEvents.filter((e) => keep(e.t)),
      reports: [],
      starts: [],
      options: { reportWithinMs: 5000, settleMs: 60000, consoleStart: '^\\[boot\\] BOOT\\b' },
    },
  };
  return record as unknown as RunRecord;
}

/** A clean proxy upgrade of 3072 bytes in three blocks. */
export function proxyRecord(): RunRecord {
  const events = [
    { t: 300, raw: '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,3072', kind: 'ota-plan', code: 10700 },
    { t: 420, raw: '+QIOTEVT: 7,10701,"STM32",3072,"00",0,"00"', kind: 'ota-download-start', code: 10701 },
    { t: 460, raw: '+QIOTEVT: 7,10703,"STM32",3072,0,3072', kind: 'ota-piece-ready', code: 10703 },
    { t: 905, raw: '+QIOTEVT: 7,10704', kind: 'ota-updating', code: 10704 },
    { t: 2600, raw: '+QIOTEVT: 7,10705', kind: 'ota-success', code: 10705 },
  ];
  const tx = (t: number, text: string) => ({ t, dir: 'TX', text });
  const rx = (t: number, text: string) => ({ t, dir: 'RX', text });
  const transcript = [tx(301, 'AT+QIOTUPDATE=1'), tx(470, 'AT+QIOTOTARD=0,1024'), tx(600, 'AT+QIOTOTARD=1024,1024'), tx(730, 'AT+QIOTOTARD=2048,1024'), tx(900, 'AT+QIOTUPDATE=3'), rx(904, 'AT+QIOTUPDATE=3'), rx(904.5, 'OK'), tx(2590, 'AT+QIOTMCUVER="STM32","2_0_0"')];
  const phase = (name: string, start: number, end: number) => ({ name, start, end, durationMs: end - start, ok: true });
  const record = {
    format: 'sota-rig/run-record',
    version: 1,
    flow: 'proxy',
    mode: 'proxy',
    startedAt: '2026-12-07T00:00:00.000Z',
    durationMs: 2610,
    station: { name: 'virtual' },
    phases: [
      phase('prepare plan', 0, 100),
      phase('request plan', 200, 300),
      phase('confirm', 300, 302),
      phase('download', 302, 460),
      phase('read blocks', 460, 890),
      phase('verify package', 890, 899),
      phase('update', 900, 906),
      phase('program', 906, 2400),
      phase('read back', 2400, 2580),
      phase('report version', 2585, 2600),
    ],
    events,
    transcript,
    fired: [],
    verdict: { outcome: 'upgraded', ok: true, summary: 'upgraded: …' },
  };
  return record as unknown as RunRecord;
}

/** A result as the runner keeps it, landed where the test says. */
export function result(id: number, landed: number, status: PointResult['status'], o: Partial<PointResult> = {}): PointResult {
  return {
    id,
    fault: `delay=${id}:power-cycle-target=500`,
    action: 'power-cycle-target=500',
    window: 'swap',
    at: landed,
    landed,
    landedWindow: 'swap',
    status,
    verdict: status === 'fail' ? 'bricked' : 'upgraded',
    outcome: status === 'fail' ? 'bricked' : 'upgraded',
    summary: '',
    why: '',
    next: null,
    record: null,
    nextRecord: null,
    durationMs: 1000,
    finishedAt: '',
    ...o,
  };
}

