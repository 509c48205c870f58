import { afterEach, describe, expect, test, vi } from 'vitest';
import { ConfigError } from '../errors.ts';
import { parseQiotEvent } from '../quecthing/events.ts';
import type { ModuleEvent } from '../quecthing/events.ts';
import { parseFault } from './faults.ts';
import { checkFaults, FaultSchedule, whyNotFired } from './schedule.ts';

const ev = (line: string): ModuleEvent => parseQiotEvent(line)!;
const texts = (s: FaultSchedule) => s.take().map((x) => x.text);

afterEach(() => {
  vi.useRealTimers();
});

describe('fault schedule', () => {
  test('the n-th occurrence of an event code, counted over the whole run', () => {
    const s = new FaultSchedule([parseFault('event=10702#2:close-port'), parseFault('event=10703:network-cut=10')]);
    s.onEvent(ev('+QIOTEVT: 7,10702'));
    expect(s.pending).toBe(false);
    s.onEvent(ev('+QIOTEVT: 2,10200')); // another type with the same code space is not counted
    s.onEvent({ kind: 'reboot', raw: 'RDY' });
    s.onEvent(ev('+QIOTEVT: 7,10702'));
    expect(texts(s)).toEqual(['event=10702#2:close-port']);
    s.onEvent(ev('+QIOTEVT: 7,10703,"STM32",100,0,100'));
    s.onEvent(ev('+QIOTEVT: 7,10703,"STM32",100,0,100'));
    expect(texts(s)).toEqual(['event=10703:network-cut=10']);
    expect(s.pending).toBe(false);
  });

  test('an offset trigger fires before the block that reaches it, once per run', () => {
    const s = new FaultSchedule([parseFault('offset=3000:power-cycle-module')]);
    s.atOffset(0, 1024);
    s.atOffset(1024, 1024);
    expect(s.pending).toBe(false);
    s.atOffset(2048, 1024);
    expect(texts(s)).toEqual(['offset=3000:power-cycle-module=500']);
    // The download restarts from 0 after the reboot: the trigger is not hit again.
    s.atOffset(0, 1024);
    s.atOffset(2048, 1024);
    expect(s.pending).toBe(false);
    expect(s.unfired()).toEqual([]);
  });

  test('named moments, in schedule order, and faults that never fired', () => {
    const s = new FaultSchedule([
      parseFault('before-version-report:reset-target'),
      parseFault('after-update3:close-port'),
      parseFault('programming:power-cycle-target=50'),
      parseFault('after-update3:network-cut=5'),
    ]);
    s.at('after-update3');
    expect(texts(s)).toEqual(['after-update3:close-port', 'after-update3:network-cut=5']);
    s.at('after-update3');
    expect(s.pending).toBe(false);
    s.at('before-version-report');
    expect(texts(s)).toEqual(['before-version-report:reset-target=100']);
    expect(s.unfired().map((u) => u.text)).toEqual(['programming:power-cycle-target=50']);
  });

  test('a delay trigger becomes due on its timer and wakes the flow; stop() cancels the rest', () => {
    vi.useFakeTimers();
    const s = new FaultSchedule([parseFault('delay=100:close-port'), parseFault('delay=500:reset-module')]);
    const woken = vi.fn();
    s.start(woken);
    vi.advanceTimersByTime(99);
    expect(woken).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(woken).toHaveBeenCalledTimes(1);
    expect(texts(s)).toEqual(['delay=100:close-port']);
    s.stop();
    vi.advanceTimersByTime(1000);
    expect(woken).toHaveBeenCalledTimes(1);
    expect(s.pending).toBe(false);
  });

  test('event triggers do not wake the flow (it checks after each wait and before each block)', () => {
    const s = new FaultSchedule([parseFault('event=10701:close-port')]);
    const woken = vi.fn();
    s.start(woken);
    s.onEvent(ev('+QIOTEVT: 7,10701,"STM32",100,"00000000000000000000000000000000",1'));
    expect(s.pending).toBe(true);
    expect(woken).not.toHaveBeenCalled();
    s.stop();
  });
});

describe('faults a station cannot execute', () => {
  const caps = (lines: string[]) => ({ can: (a: 'cycle' | 'reset', p: 'module' | 'target') => lines.includes(`${a}-${p}`) });

  test('are refused before the run, all of them named', () => {
    const faults = ['event=10703:power-cycle-module', 'programming:reset-target', 'offset=0:network-cut=5', 'delay=5:close-port'].map(parseFault);
    let caught: unknown;
    try {
      checkFaults('bench-2', faults, caps(['reset-module']));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const e = caught as ConfigError;
    expect(e.station).toBe('bench-2');
    expect(e.seen).toBe('event=10703:power-cycle-module=500 (no module supply line), programming:reset-target=100 (no target reset line)');
  });

  test('network cuts and port faults need no line', () => {
    expect(() => checkFaults('bench-2', ['offset=0:network-cut=5', 'delay=5:close-port'].map(parseFault), caps([]))).not.toThrow();
    expect(() => checkFaults('bench-2', ['after-update3:power-cycle-target'].map(parseFault), caps(['cycle-target']))).not.toThrow();
  });
});

describe('why a fault never fired', () => {
  const run = {
    events: [{ code: 10700, raw: '+QIOTEVT: 7,10700,"STM32","","2_0_0",0,0,25344' }, { code: 10701, raw: '+QIOTEVT: 7,10701,"STM32",25344,"x",1' }, { code: 10703, raw: '+QIOTEVT: 7,10703,"STM32",25344,0,25344' }],
    progress: [{ offset: 1024 }, { offset: 2048 }],
    phases: [{ name: 'download' }, { name: 'read blocks' }],
    durationMs: 1234.5,
  };

  test('names the moment that never came, in the protocol’s words', () => {
    expect(whyNotFired(parseFault('event=10702:power-cycle-module'), run)).toBe(
      '+QIOTEVT: 7,10702 came 0 time(s), the trigger waits for occurrence 1: the download finished before the module reported progress (10702 comes 0..n times, about every 5 s)',
    );
    expect(whyNotFired(parseFault('event=10703#2:reset-module'), run)).toBe('+QIOTEVT: 7,10703 came 1 time(s), the trigger waits for occurrence 2');
    expect(whyNotFired(parseFault('offset=8192:close-port'), run)).toBe('the block reads never reached byte 8192 (the furthest read ended at byte 2048)');
    expect(whyNotFired(parseFault('after-update3:reset-target'), run)).toBe('the run never sent AT+QIOTUPDATE=3 (no verified download to install)');
    expect(whyNotFired(parseFault('delay=5000:close-port'), run)).toBe('the run ended after 1235 ms, before the 5000 ms delay');
  });
});

describe('dut triggers', () => {
  test('a console pattern fires on the first matching line, once', () => {
    const s = new FaultSchedule([parseFault('console=swap unit 2/\\d+ step 1:power-cycle-target')]);
    s.onConsole('[boot] swap unit 1/13 step 1');
    expect(s.pending).toBe(false);
    s.onConsole('[boot] swap unit 2/13 step 1');
    expect(texts(s)).toEqual(['console=swap unit 2/\\d+ step 1:power-cycle-target=500']);
    s.onConsole('[boot] resume swap at unit 2/13 step 1');
    expect(s.pending).toBe(false);
  });

  test('a time offset makes the fault due that long after its trigger, waking the flow; until then it counts as unfired', () => {
    vi.useFakeTimers();
    const s = new FaultSchedule([parseFault('after-update3+350ms:power-cycle-target')]);
    let woken = 0;
    s.start(() => woken++);
    expect(s.waitingOffset).toBe(false);
    s.at('after-update3');
    expect(s.pending).toBe(false);
    // A flow that looks settled keeps observing while this is true (dut mode).
    expect(s.waitingOffset).toBe(true);
    expect(s.unfired().map((u) => u.text)).toEqual(['after-update3+350ms:power-cycle-target=500']);
    vi.advanceTimersByTime(349);
    expect(s.pending).toBe(false);
    vi.advanceTimersByTime(1);
    expect(woken).toBe(1);
    expect(s.waitingOffset).toBe(false);
    expect(texts(s)).toEqual(['after-update3+350ms:power-cycle-target=500']);
    expect(s.unfired()).toEqual([]);
    s.stop();
  });

  test('a stopped schedule never makes a waiting fault due', () => {
    vi.useFakeTimers();
    const s = new FaultSchedule([parseFault('console=BOOT+100ms:reset-target')]);
    s.start(() => undefined);
    s.onConsole('[boot] BOOT 1_0_0');
    s.stop();
    vi.advanceTimersByTime(1000);
    expect(s.pending).toBe(false);
    expect(s.unfired()).toHaveLength(1);
  });

  test('console triggers need a console: the station is told before anything is sent', () => {
    const caps = { can: () => true };
    expect(() => checkFaults('bench-3', [parseFault('console=BOOT:reset-target')], caps)).toThrow(/console=BOOT:reset-target=100 \(only dut mode reads the MCU console\)/);
    expect(() => checkFaults('bench-3', [parseFault('console=BOOT:reset-target')], caps, { available: true, why: '' })).not.toThrow();
  });

  test('why a console trigger never fired', () => {
    expect(whyNotFired(parseFault('console=swap unit 9:power-cycle-target'), { events: [], progress: [], phases: [], durationMs: 10, console: ['a', 'b'] })).toBe('no console line matched /swap unit 9/ (2 console lines seen)');
  });
});
