// An in-process virtual station around the MCU for the MCU's own tests: the real module, cloud, rails,
// target and MCU models wired as sim/main.ts wires them, without ptys or child processes, so a test can
// drive a whole upgrade in a second and look at every part directly. The end-to-end tests (real sim
// process, real openocd) are in mcu.e2e.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimClock } from '../clock.ts';
import { Cloud, defaultCloudOptions, type CloudOptions } from '../cloud/cloud.ts';
import { defaultModuleOptions, defaultTimers, Module, type ModuleOptions } from '../module/module.ts';
import { NvStore } from '../module/nv.ts';
import { Rails } from '../rails.ts';
import { Stm32Target } from '../target/stm32.ts';
import type { TargetName } from '../target/profiles.ts';
import { UartWire } from '../uart.ts';
import { Mcu } from './core.ts';
import { defaultMcuOptions, type McuOptions } from './firmware.ts';
import { layoutFor, type McuLayout } from './layout.ts';
import { waitOn } from '../wait.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A file of fixtures/mcu (written by scripts/make-fixtures.ts). */
export function mcuFixture(name: string): Buffer {
  return readFileSync(path.join(root, 'fixtures', 'mcu', name));
}

export interface TestbedOptions {
  target?: TargetName;
  timeScale?: number;
  bootloader?: string;
  /** Image file loaded into slot A before power-on. */
  slotA?: string;
  mcu?: Partial<McuOptions>;
  module?: Partial<ModuleOptions>;
  cloud?: Partial<CloudOptions>;
  uartBaud?: number;
}

/** Console lines with bounded, event-driven waits on them. */
export class ConsoleLog {
  lines: string[] = [];
  /** Called after every complete line. */
  onLine: (() => void) | undefined;
  private partial = '';
  private readonly waiters = new Set<() => void>();

  feed(text: string): void {
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf('\r\n')) >= 0) {
      this.lines.push(this.partial.slice(0, nl));
      this.partial = this.partial.slice(nl + 2);
    }
    for (const w of [...this.waiters]) w();
    this.onLine?.();
  }

  mark(): number {
    return this.lines.length;
  }

  /** Waits for a line matching `re` at or after index `from`; resolves with its index. */
  waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<number> {
    return waitOn(
      this.waiters,
      () => {
        const i = this.lines.findIndex((l, k) => k >= from && re.test(l));
        return i < 0 ? undefined : i;
      },
      timeoutMs,
      () => `mcu console: expected a line matching ${re} within ${timeoutMs} ms; last lines: ${JSON.stringify(this.lines.slice(-12))}`,
    );
  }
}

export interface Testbed {
  clock: SimClock;
  rails: Rails;
  cloud: Cloud;
  module: Module;
  target: Stm32Target;
  mcu: Mcu;
  layout: McuLayout;
  console: ConsoleLog;
  /** Bytes on the UART, each direction, as the taps see them. */
  tap: { mcuToModule: Buffer[]; moduleToMcu: Buffer[] };
  /** What the module sent on its USB AT port. */
  usbat: Buffer[];
  /** A tap's bytes so far, as text. */
  tapText(direction: 'mcuToModule' | 'moduleToMcu'): string;
  /** Reads flash at an absolute address. */
  flash(address: number, length: number): Buffer;
  /**
   * Resolves once `cond()` holds, looked at whenever a console line, a tap byte or a module state change
   * arrives; rejects after `timeoutMs` naming `what` and the console's last lines.
   */
  until(cond: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function testbed(o: TestbedOptions = {}): Testbed {
  const timeScale = o.timeScale ?? 0.01;
  const clock = new SimClock(timeScale);
  const rails = new Rails();
  const cloud = new Cloud(clock, { ...defaultCloudOptions, pushIntervalMs: 0, ...o.cloud });
  const target = new Stm32Target({ target: o.target ?? 'stm32f1x' });
  const l = layoutFor(target.profile);
  if (!l.layout) throw new Error(l.why);
  const layout = l.layout;
  target.loadFlash(mcuFixture(o.bootloader ?? 'BOOT_vbl-1.0.bin'), 0);
  if (o.slotA) target.loadFlash(mcuFixture(o.slotA), layout.slotA.address - layout.flashBase);
  const baud = o.uartBaud ?? 0;
  const fromMcu = new UartWire(baud);
  const toMcu = new UartWire(baud);
  const tap = { mcuToModule: [] as Buffer[], moduleToMcu: [] as Buffer[] };
  const usbat: Buffer[] = [];
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  fromMcu.listen((b) => {
    tap.mcuToModule.push(Buffer.from(b));
    notify();
  });
  toMcu.listen((b) => {
    tap.moduleToMcu.push(Buffer.from(b));
    notify();
  });
  const nv = new NvStore(undefined, {}, () => {});
  const module = new Module(
    { ...defaultModuleOptions, imei: '861234567890123', timers: defaultTimers, ...o.module },
    clock,
    rails,
    cloud,
    nv,
    {
      usbat: { write: (b) => usbat.push(Buffer.from(b)), flush: () => {} },
      uart1: { write: (b) => toMcu.send(b), flush: () => toMcu.clear() },
    },
    () => {},
  );
  fromMcu.listen((b) => module.input('uart1', b));
  const offModule = module.onChange(notify);
  const console = new ConsoleLog();
  console.onLine = notify;
  const detachRails = target.attachRails(rails);
  // A fresh target runs from its power-on reset; a reset now makes it boot what was just loaded.
  target.reset();
  const mcu = new Mcu(target, clock, layout, { ...defaultMcuOptions, timeScale, uartBaud: baud, ...o.mcu }, {
    uartSend: (b) => fromMcu.send(b),
    clearTx: () => fromMcu.clear(),
    console: (text) => console.feed(text),
    log: () => {},
  });
  toMcu.listen((b) => mcu.receive(b));
  return {
    clock,
    rails,
    cloud,
    module,
    target,
    mcu,
    layout,
    console,
    tap,
    usbat,
    tapText: (direction) => Buffer.concat(tap[direction]).toString('latin1'),
    flash: (address, length) => target.readFlash(address - layout.flashBase, length),
    until: async (cond, what, timeoutMs = 20_000) => {
      await waitOn(waiters, () => (cond() ? true : undefined), timeoutMs, () => `testbed: ${what} did not happen within ${timeoutMs} ms; console: ${JSON.stringify(console.lines.slice(-15))}`);
    },
    close: () => {
      offModule();
      mcu.close();
      module.close();
      cloud.close();
      detachRails();
      fromMcu.close();
      toMcu.close();
      clock.stopAll();
    },
  };
}
