// `rig doctor`'s checks of a station's MCU side (dut mode): the flash layout against the flash the probe
// found, the two taps and the console open, and bytes flowing on them once the MCU is reset (the firmware
// talks to its module at every start, and boards print a boot line on their console).
import type { TapFrame } from '../../at/passive.ts';
import { ConsolePort, TapPair } from '../../at/tap.ts';
import type { ConsoleLine } from '../../at/tap.ts';
import type { HardwareStationConfig, McuLayout } from '../../config/schema.ts';
import type { PowerLines } from '../../power/open.ts';
import { pulse } from '../../power/line.ts';
import type { Probe, TargetInfo } from '../../probe/probe.ts';
import type { ProtocolTimeouts } from '../../station/station.ts';

/** Where a doctor check goes (Checker's surface). */
export interface CheckSink {
  add(check: string, status: 'ok' | 'fail' | 'warn' | 'skip', detail: string, fix?: string): void;
  skip(check: string, why: string): void;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Every region of the layout inside the flash [base, base + size); the problems, one per region that is not. */
export function checkMcuLayout(layout: McuLayout, flash: { base: number; size: number }): string[] {
  const end = flash.base + flash.size;
  const regions: [string, { address: number; size: number }][] = [
    ['bootloader', layout.bootloader],
    ...layout.record.map((r, i): [string, { address: number; size: number }] => [`record ${i}`, r]),
    ['slot A', layout.slotA],
    ['slot B', layout.slotB],
    ...(layout.scratch ? [['scratch', layout.scratch] as [string, { address: number; size: number }]] : []),
  ];
  const problems: string[] = [];
  for (const [name, r] of regions) {
    if (r.address < flash.base || r.address + r.size > end) problems.push(`${name} ${hex(r.address)}+${r.size} lies outside the flash ${hex(flash.base)}..${hex(end)}`);
  }
  return problems;
}

export interface McuCheckContext {
  station: string;
  hw: HardwareStationConfig;
  timeouts: ProtocolTimeouts;
  signal: AbortSignal;
  target: TargetInfo | undefined;
  /** Resets the MCU and says how; undefined when the station has no way to. */
  reset: (() => Promise<string>) | undefined;
  /** Whether the flash base holds anything (its vector table not erased); undefined when it cannot be read. */
  firmwarePresent?: (() => Promise<boolean>) | undefined;
  /** Cleanup the doctor runs at the end. */
  undo: (() => Promise<void>)[];
}

/** Resolves true once `seen()` holds, false when `ms` pass (or the signal aborts) first; woken by `wake`. */
function until(seen: () => boolean, ms: number, signal: AbortSignal, wake: { fn: () => void }): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      wake.fn = () => undefined;
      resolve(v);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(seen()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    wake.fn = () => {
      if (seen()) done(true);
    };
    wake.fn();
  });
}

/** The doctor's way to reset the MCU: over SWD when the probe is connected, else a pulse on the target reset line. */
export function mcuReset(probe: Probe | undefined, lines: PowerLines | undefined, resetLine: string | undefined, signal: AbortSignal): (() => Promise<string>) | undefined {
  if (probe) {
    return async () => {
      await probe.reset('run', { signal });
      return 'reset run over SWD';
    };
  }
  if (lines && resetLine) {
    return async () => {
      await pulse(lines.line(resetLine), 100, { signal });
      return `a 100 ms pulse on ${resetLine}`;
    };
  }
  return undefined;
}

export async function checkMcuSide(c: CheckSink, ctx: McuCheckContext): Promise<void> {
  const m = ctx.hw.mcu;
  if (!m) return;
  const { station, timeouts, signal } = ctx;

  if (ctx.target) {
    const problems = checkMcuLayout(m.layout, ctx.target.flash);
    if (problems.length === 0) c.add('MCU layout fits the flash', 'ok', `bootloader, ${m.layout.record.length} record cop${m.layout.record.length === 1 ? 'y' : 'ies'}, slots A and B${m.layout.scratch ? ', scratch' : ''} within ${ctx.target.flash.size / 1024} KiB at ${hex(ctx.target.flash.base)}; boot record: ${m.bootRecord}`);
    else c.add('MCU layout fits the flash', 'fail', problems.join('; '), `fix stations.${station}.mcu.layout to the bootloader's real layout (its linker script or MCUboot's flash map), or check probe.target`);
  } else c.skip('MCU layout fits the flash', 'the target was not examined');

  const frames: TapFrame[] = [];
  const consoleLines: ConsoleLine[] = [];
  const wake = { fn: () => undefined as void };
  const taps = new TapPair({ station, mcu: m.taps.mcuToModule, module: m.taps.moduleToMcu, baudRate: m.taps.baudRate }, (f) => {
    frames.push(f);
    wake.fn();
  });
  let tapsOpen = false;
  try {
    await taps.open();
    tapsOpen = true;
    ctx.undo.push(() => taps.close());
    c.add('MCU taps open', 'ok', `MCU → module ${m.taps.mcuToModule}, module → MCU ${m.taps.moduleToMcu}, ${m.taps.baudRate} baud (listening only)`);
  } catch (err) {
    c.add('MCU taps open', 'fail', err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err), `the dual-channel USB-UART on the MCU↔module lines: its /dev/serial/by-id paths in stations.${station}.mcu.taps (ls -l /dev/serial/by-id/), and no other program holding them`);
  }
  let con: ConsolePort | undefined;
  if (m.console) {
    const cc = new ConsolePort({ station, path: m.console.port, baudRate: m.console.baudRate }, (l) => {
      consoleLines.push(l);
      wake.fn();
    });
    try {
      await cc.open();
      con = cc;
      ctx.undo.push(() => cc.close());
      c.add('MCU console opens', 'ok', `${m.console.port}, ${m.console.baudRate} baud`);
    } catch (err) {
      c.add('MCU console opens', 'fail', err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err), `the console's USB-UART path in stations.${station}.mcu.console.port`);
    }
  }
  if (!tapsOpen && !con) {
    c.skip('MCU talks after reset', 'no tap or console open');
    return;
  }

  if (!ctx.reset) {
    c.skip('MCU talks after reset', 'no probe and no target reset line to reset the MCU with');
    return;
  }
  // An erased chip has nothing to say: nothing is wrong with the bench, and nothing to check until dut mode
  // (or the bench's owner) puts firmware there. Said as it is, without a reset and a wait.
  if (ctx.firmwarePresent && !(await ctx.firmwarePresent().catch(() => true))) {
    c.add('MCU talks after reset', 'ok', `not checked: the flash base 0x${m.layout.bootloader.address.toString(16)} is erased, no firmware to talk yet (rig upgrade --mode dut arranges the bootloader and the image)`);
    return;
  }
  let how: string;
  try {
    how = await ctx.reset();
  } catch (err) {
    c.add('MCU talks after reset', 'fail', `could not reset the MCU: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, 'see the probe and power line checks above');
    return;
  }
  // An MCU talks to its module (and prints its boot line) at once when it starts; the module's own boot time
  // does not apply, and an MCU with nothing to say should not hold the doctor for it.
  const boundMs = Math.min(timeouts.bootMs + timeouts.marginMs, 3 * timeouts.commandMs);
  const t0 = performance.now();
  const heard = (dir: 'mcu' | 'module') => frames.some((f) => f.dir === dir && f.t >= t0);
  await until(() => (!tapsOpen || (heard('mcu') && heard('module'))) && (!con || consoleLines.some((l) => l.t >= t0)), boundMs, signal, wake);
  if (tapsOpen) {
    const fromMcu = frames.filter((f) => f.dir === 'mcu' && f.t >= t0);
    const fromModule = frames.filter((f) => f.dir === 'module' && f.t >= t0);
    if (fromMcu.length === 0) {
      // A warning, not a failure: proxy mode does not need the taps, and an MCU whose flash holds no firmware
      // that talks (an erased chip; the virtual MCU before its bootloader is in flash) is silent too.
      c.add('MCU tap carries the MCU\'s commands', 'warn', `nothing on ${m.taps.mcuToModule} within ${boundMs} ms of ${how}`, `dut mode needs it: the tap's RX on the MCU's TX line (swap the two taps if the module's answers show up here), common ground, baud ${m.taps.baudRate}, and firmware in flash that talks to its module at start (rig upgrade --mode dut arranges the bootloader and the image)`);
    } else {
      const noise = fromMcu.filter((f) => f.kind === 'noise').length;
      c.add('MCU tap carries the MCU\'s commands', noise > fromMcu.length / 2 ? 'warn' : 'ok', `${fromMcu.length} lines after ${how}, first ${JSON.stringify(fromMcu[0]!.text)}`, noise > fromMcu.length / 2 ? `mostly noise: check mcu.taps.baudRate (${m.taps.baudRate}) against the MCU's UART` : undefined);
    }
    if (fromModule.length === 0) c.add('module tap carries the module\'s answers', 'warn', `nothing on ${m.taps.moduleToMcu} within ${boundMs} ms`, `is the module powered, and the tap's RX on the module's TX line? (the MCU's AT gets no answer otherwise)`);
    else c.add('module tap carries the module\'s answers', 'ok', `${fromModule.length} lines, first ${JSON.stringify(fromModule[0]!.text)}`);
  }
  if (con) {
    const lines = consoleLines.filter((l) => l.t >= t0);
    if (lines.length === 0) c.add('MCU console prints', 'warn', `no console line within ${boundMs} ms of ${how}`, `check stations.${station}.mcu.console.baudRate and that the board's debug UART TX is on the adapter's RX; without it the rig judges by taps and flash only`);
    else c.add('MCU console prints', 'ok', `${lines.length} lines, first ${JSON.stringify(lines[0]!.text)}`);
  }
}
