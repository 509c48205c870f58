// DutObserver on a scripted dialogue: the bytes the two taps would carry and the console lines of
// docs/virtual-mcu.md §9, framed by the real passive framer, with times chosen by the test.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PassiveFramer } from '../at/passive.ts';
import type { TapFrame } from '../at/passive.ts';
import { DutObserver, formatTapLine } from './dut-observe.ts';
import { parseFault } from './faults.ts';
import { silentRecorder } from './recorder.ts';
import { RunLog } from './run-log.ts';
import { FaultSchedule } from './schedule.ts';

/** Feeds lines to an observer the way the taps deliver them, at times the test sets. */
function rig(faults: string[] = [], reportWithinMs = 5000) {
  const log = new RunLog(silentRecorder);
  const schedule = new FaultSchedule(faults.map(parseFault));
  const obs = new DutObserver(log, schedule, { component: 'STM32', targetVersion: '2_0_0', reportWithinMs });
  const origin = log.origin;
  let clock = 0;
  const framers = {
    mcu: new PassiveFramer('mcu', (f: TapFrame) => obs.frame(f)),
    module: new PassiveFramer('module', (f: TapFrame) => obs.frame(f)),
  };
  // The first line of each tap is judged as possibly partial: start both in step.
  framers.mcu.push(Buffer.from('AT\r'), origin);
  framers.module.push(Buffer.from('\r\nOK\r\n'), origin);
  const at = (ms: number) => (clock = ms);
  const mcu = (text: string) => framers.mcu.push(Buffer.from(`${text}\r`, 'latin1'), origin + clock);
  const mod = (text: string | Buffer) => framers.module.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, origin + clock);
  const con = (text: string) => obs.consoleLine({ t: origin + clock, text });
  return { obs, schedule, log, at, mcu, mod, con, now: () => clock };
}

const answer = (...lines: string[]) => lines.map((l) => `\r\n${l}\r\n`).join('');

describe('DutObserver', () => {
  it('follows a whole upgrade: phases from what is seen, the report after the restart, 10705, settled', () => {
    const r = rig(['offset=1024:power-cycle-target', 'after-update3+350ms:reset-target', 'console=swap unit 2/\\d+:power-cycle-module']);
    r.obs.mcuStarted('the rig reset the MCU', 0);
    r.at(100);
    r.con('[boot] BOOT vbl-1.0');
    r.con('[app] STM32 1_0_0 start confirmed');
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.mod(answer('OK'));
    expect(r.obs.settled(200)).toBeUndefined();
    r.mcu('AT+QIOTOTAREQ=1');
    r.at(300);
    r.mod(answer('OK', '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,2048'));
    r.mcu('AT+QIOTUPDATE=1');
    r.mod(answer('OK'));
    r.at(800);
    r.mod(answer('+QIOTEVT: 7,10701,"STM32",2048,"0123456789abcdef0123456789abcdef",12345', '+QIOTEVT: 7,10703,"STM32",2048,0,2048'));
    for (const off of [0, 1024]) {
      r.at(900 + off / 10);
      r.mcu(`AT+QIOTOTARD=${off},1024`);
      if (off === 1024) expect(r.schedule.take().map((f) => f.text)).toEqual(['offset=1024:power-cycle-target=500']);
      r.mod(Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: ${off},1024\r\n`), Buffer.alloc(1024, off / 1024), Buffer.from('\r\n\r\nOK\r\n')]));
    }
    r.con('[app] download complete: md5 ok');
    r.at(1200);
    // The module's 10704 may come through its tap before the command shows on the MCU's: either order installs.
    r.mod(answer('OK', '+QIOTEVT: 7,10704'));
    expect(r.obs.installAt).toBeUndefined();
    r.mcu('AT+QIOTUPDATE=3');
    expect(r.obs.installAt).toBe(1200);
    // 10701 announced an MD5 the 2048 bytes the MCU read do not have: it asked to install them all the same.
    expect(r.obs.installedBadDownload).toMatch(/^md5 [0-9a-f]{32} of the 2048 bytes it read, 10701 says 0123456789abcdef0123456789abcdef$/);
    r.at(1300);
    r.con('[boot] BOOT vbl-1.0');
    r.con('[boot] swap unit 1/2 step 1');
    r.con('[boot] swap unit 2/2 step 1');
    expect(r.schedule.take().map((f) => f.text)).toEqual(['console=swap unit 2/\\d+:power-cycle-module=500']);
    r.at(1500);
    r.con('[boot] swap done');
    r.con('[boot] boot slot A STM32 2_0_0 trial');
    r.con('[app] STM32 2_0_0 start trial');
    expect(r.obs.trialSeen).toBe(true);
    r.at(1600);
    r.mcu('AT');
    r.con('[app] self-test ok');
    r.con('[app] confirmed');
    expect(r.obs.settled(1650)).toBeUndefined();
    r.mcu('AT+QIOTMCUVER="STM32","2_0_0"');
    r.at(1700);
    r.mod(answer('OK', '+QIOTEVT: 7,10705'));

    expect(r.obs.decision).toBe('confirmed');
    // The boot lines confirm the starts the rig expected (its reset, the reset to install): two starts, not four.
    expect(r.obs.starts.map((x) => [x.t, x.confirmed, x.reported])).toEqual([
      [0, true, true],
      [1200, true, true],
    ]);
    expect(r.obs.moduleResult).toBe(10705);
    expect(r.obs.lastReport).toBe('2_0_0');
    expect(r.obs.settled(1700)).toBe('the module said 10705 and the MCU reported 2_0_0 after the MCU resets to install after AT+QIOTUPDATE=3');
    r.obs.finish(1800);
    expect(r.log.phases.map((p) => [p.name, p.start, p.end, p.ok])).toEqual([
      ['version report 1_0_0', 100, 100, true],
      ['plan', 300, 300, true],
      ['download (cloud → module)', 300, 800, true],
      ['block reads', 900, 1200, true],
      ['install (reset, swap)', 1200, 1300, true],
      ['swap', 1300, 1500, true],
      ['trial boot', 1500, 1600, true],
      ['version report 2_0_0', 1600, 1600, true],
      ['confirmation', 1600, 1700, true],
      ['module 10705', 1700, 1700, true],
    ]);
    // Both directions and the console in one transcript, in order, with direction marks.
    const text = r.obs.tap.map(formatTapLine);
    expect(text.find((l) => l.includes('+QIOTOTARD: 1024,1024'))).toMatch(/^ {4}1\.002 \[mod→mcu\] \+QIOTOTARD: 1024,1024 <1024 bytes sha256=[0-9a-f]{64}>$/);
    expect(text.find((l) => l.includes('swap done'))).toBe('    1.500 [console] [boot] swap done');
    expect(r.obs.blockLine(1500)).toMatch(/^tap line \d+ \(1\.002 \[mod→mcu\] \+QIOTOTARD: 1024,1024 </);
    expect(r.obs.blockBytes).toBe(2048);
  });

  it('a start with no version report within the bound is a silent start (bricked), and the wait is known in advance', () => {
    const r = rig([], 3000);
    r.obs.mcuStarted('fault programming:power-cycle-target', 1000);
    expect(r.obs.nextDeadline()).toBe(4000);
    expect(r.obs.settled(3999)).toBeUndefined();
    expect(r.obs.settled(4001)).toBe('no version report within 3000 ms of fault programming:power-cycle-target');
  });

  it('a boot line read before the fault that caused it came back: one start, named by the fault', () => {
    const r = rig();
    r.obs.mcuStarted('reset', 0);
    r.at(100);
    r.con('[boot] BOOT vbl-1.0');
    r.mcu('AT+QIOTMCUVER="STM32","2_0_0"');
    r.mod(answer('OK'));
    // The cut at 900 ms returns at 1100 ms; the console's boot line at 1150 ms is seen before the rig notes it.
    r.at(1150);
    r.con('[boot] BOOT vbl-1.0');
    r.obs.mcuStarted('fault console=^\\[app\\] confirmed$+15ms:power-cycle-target=200', 900);
    expect(r.obs.starts.map((s) => s.why)).toEqual(['reset', 'fault console=^\\[app\\] confirmed$+15ms:power-cycle-target=200']);
    expect(r.obs.starts.at(-1)!.t).toBe(1150);
  });

  it('a refusal settles once the module answered it; an old OTA settled at start does not count as this run’s result', () => {
    const r = rig();
    r.obs.mcuStarted('reset', 0);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    // A 10706 from an OTA an earlier run left in UPDATING: settled by this very report, before any plan.
    r.mod(answer('OK', '+QIOTEVT: 7,10706'));
    expect(r.obs.moduleResult).toBeUndefined();
    r.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",80,0,2048'));
    r.mcu('AT+QIOTUPDATE=0');
    expect(r.obs.settled(10)).toBeUndefined();
    r.mod(answer('OK'));
    expect(r.obs.decision).toBe('refused');
    expect(r.obs.settled(20)).toBe('the MCU refused the plan');
  });

  it('a rollback: the trial image never reports, the watchdog restarts it, the old image reports, 10706', () => {
    const r = rig();
    r.obs.mcuStarted('reset', 0);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.mod(answer('OK', '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,2048'));
    r.mcu('AT+QIOTUPDATE=1');
    r.mod(answer('OK'));
    r.at(500);
    r.mcu('AT+QIOTUPDATE=3');
    r.mod(answer('OK', '+QIOTEVT: 7,10704'));
    r.at(700);
    r.con('[boot] BOOT vbl-1.0');
    r.con('[boot] boot slot A STM32 2_0_0 trial');
    r.con('[app] self-test failed');
    r.at(2000);
    r.con('[wdg] watchdog reset');
    r.con('[boot] BOOT vbl-1.0');
    r.con('[boot] revert: STM32 2_0_0 was not confirmed');
    r.con('[boot] boot slot A STM32 1_0_0 confirmed');
    expect(r.obs.settled(2100)).toBeUndefined();
    r.at(2200);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.mod(answer('OK', '+QIOTEVT: 7,10706'));
    expect(r.obs).toMatchObject({ trialSeen: true, moduleResult: 10706, lastReport: '1_0_0' });
    expect(r.obs.settled(2300)).toMatch(/^the module said 10706 and the MCU reported 1_0_0 after console: \[boot\] BOOT/);
  });

  it('a download whose tapped bytes match 10701 is not held against the install; a hole in the tap leaves it untold', () => {
    const md5 = createHash('md5').update(Buffer.alloc(512, 7)).digest('hex');
    // A match; and a hole (the second block never tapped) with an MD5 that would not match: untold, not accused.
    for (const [blocks, announced] of [
      [[0, 256], md5],
      [[0], 'f'.repeat(32)],
    ] as const) {
      const r = rig();
      r.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,512', `+QIOTEVT: 7,10701,"STM32",512,"${announced}",1`, '+QIOTEVT: 7,10703,"STM32",512,0,512'));
      for (const off of blocks) {
        r.mcu(`AT+QIOTOTARD=${off},256`);
        r.mod(Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: ${off},256\r\n`), Buffer.alloc(256, 7), Buffer.from('\r\n\r\nOK\r\n')]));
      }
      r.mcu('AT+QIOTUPDATE=3');
      r.mod(answer('OK', '+QIOTEVT: 7,10704'));
      expect(r.obs.installAt).toBeDefined();
      expect(r.obs.installedBadDownload).toBeUndefined();
    }
  });

  it('after the module rebooted mid-download, a first read away from the announced piece start is held against the MCU', () => {
    for (const [readAt, verdict] of [
      [0, undefined],
      [3072, /^after the module restarted \(RDY at 0\.500 s\) the piece starts at 0, but the MCU read at 3072 \(tap line \d+\)$/],
    ] as const) {
      const r = rig();
      r.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,8192'));
      r.mcu('AT+QIOTUPDATE=1');
      r.mod(answer('OK', '+QIOTEVT: 7,10703,"STM32",8192,0,8192'));
      r.mcu('AT+QIOTOTARD=2048,1024');
      r.at(500);
      r.mod(answer('RDY'));
      r.at(900);
      r.mod(answer('+QIOTEVT: 7,10702', '+QIOTEVT: 7,10703,"STM32",8192,0,8192'));
      r.mcu(`AT+QIOTOTARD=${readAt},1024`);
      if (verdict) expect(r.obs.downloadNotRestarted).toMatch(verdict);
      else expect(r.obs.downloadNotRestarted).toBeUndefined();
    }
  });

  it('a version report after the MCU confirmed and stopped reading ends the OTA, whichever port tells of the rejection first', () => {
    const r = rig();
    r.obs.mcuStarted('reset', 0);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.mod(answer('OK', '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,8192'));
    r.at(10);
    r.mcu('AT+QIOTUPDATE=1');
    r.at(20);
    r.mcu('AT+QIOTOTARD=2048,1024');
    expect(r.obs.settled(30)).toBeUndefined();
    r.at(40);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    expect(r.obs.settled(50)).toBe('the MCU reported 1_0_0 during the download: this OTA is over');
    r.con('[app] download rejected: AT+QIOTOTARD=2048,1024 failed 3 times');
    expect(r.obs.settled(60)).toBe('the MCU reported 1_0_0 during the download (download rejected: AT+QIOTOTARD=2048,1024 failed 3 times): this OTA is over');
  });

  it('the taps and the console in a burst, out of order: the restart the console and the report already showed is not a new, silent start, and its cause names it', () => {
    const r = rig([], 3000);
    r.obs.mcuStarted('reset', 0);
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.mod(answer('OK', '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,8192'));
    r.mcu('AT+QIOTUPDATE=1');
    r.at(100);
    r.mcu('AT+QIOTUPDATE=3');
    // The console's boot line and the old image's report reach the rig before the module's OK and 10704 do.
    r.at(101);
    r.con('[boot] BOOT vbl-1.0');
    r.con('[boot] slot B bad: STM32 2_0_0: body CRC 0x055335d0, header says 0xf10f1f8e');
    r.mcu('AT+QIOTMCUVER="STM32","1_0_0"');
    r.at(102);
    r.mod(answer('OK', '+QIOTEVT: 7,10704', 'OK', '+QIOTEVT: 7,10706'));
    expect(r.obs.installAt).toBe(102);
    expect(r.obs.starts.map((x) => [x.t, x.reported])).toEqual([
      [0, true],
      [101, true],
    ]);
    expect(r.obs.silentStart(10_000)).toBeUndefined();
    expect(r.obs.settled(200)).toBe('the module said 10706 and the MCU reported 1_0_0 after the MCU resets to install after AT+QIOTUPDATE=3');
  });

  it('a 10700 the MCU leaves unanswered past the bound settles the run as such; an answered one does not', () => {
    const r = rig([], 2000);
    r.at(100);
    r.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,8192'));
    expect(r.obs.nextDeadline()).toBe(2100);
    expect(r.obs.settled(2000)).toBeUndefined();
    expect(r.obs.settled(2101)).toBe('the MCU did not answer the 10700 of 0.100 s (no AT+QIOTUPDATE=1 or =0 within 2000 ms)');
    expect(r.obs.planNotAnswered).toBeDefined();
    const ok = rig([], 2000);
    ok.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,8192'));
    ok.mcu('AT+QIOTUPDATE=1');
    expect(ok.obs.nextDeadline()).toBeUndefined();
    expect(ok.obs.settled(5000)).toBeUndefined();
  });

  it('the MCU’s own account of a rejected download, and the moment the new image starts', () => {
    const r = rig(['before-version-report:reset-target', 'programming:power-cycle-target']);
    r.mod(answer('+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,256'));
    r.con('[app] download rejected: image in slot B has a bad body CRC');
    expect(r.obs.downloadRejected).toBe('image in slot B has a bad body CRC');
    r.mcu('AT+QIOTOTARD=0,256');
    expect(r.schedule.take().map((f) => f.text)).toEqual(['programming:power-cycle-target=500']);
    r.at(50);
    r.mcu('AT+QIOTUPDATE=3');
    r.mod(answer('OK', '+QIOTEVT: 7,10704'));
    r.at(60);
    r.mcu('AT');
    expect(r.schedule.take().map((f) => f.text)).toEqual(['before-version-report:reset-target=100']);
  });
});
