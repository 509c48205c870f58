// The virtual MCU's core: it runs while its supply is on, NRST is released and the debugger has not halted
// it (docs/virtual-mcu.md §1). What it runs is decided by the flash, as on silicon: a virtual bootloader at
// the flash base runs, then the application it boots; anything else is code the sim cannot execute, and the
// core stays inert. Every reset (power-on, NRST, the debugger's or the firmware's SYSRESETREQ, the
// watchdog) starts from the flash base again with RAM lost.
import { FlashWriter } from '../target/flash-writer.ts';
import type { CoreStateName, ResetCause, Stm32Target } from '../target/stm32.ts';
import { runBootloader } from './bootloader.ts';
import { Client, type AppStatus } from './client.ts';
import type { Firmware, McuOptions } from './firmware.ts';
import { checkImage, Defect, DescriptorKind, namesOf, readDescriptor, type ImageHeader } from './image.ts';
import type { McuLayout, Region } from './layout.ts';
import { readRecord } from './record.ts';
import { McuRuntime, type WallClock } from './runtime.ts';

export type McuPhase = 'inert' | 'bootloader' | 'application' | 'bricked';

export interface McuIo {
  /** Bytes the MCU puts on its UART toward the module. */
  uartSend(bytes: Buffer): void;
  /** The MCU's UARTs (to the module, the console) were reset: bytes not yet on their lines are gone. */
  clearTx(): void;
  /** One console line, line end included. */
  console(text: string): void;
  log(msg: string): void;
}

const BOOT_LOG_LINES = 400;

export class Mcu {
  readonly rt: McuRuntime;
  readonly flash: FlashWriter;
  private phaseNow: McuPhase = 'inert';
  private phaseDetail: Record<string, unknown> = {};
  /** Console lines since the last reset. */
  bootLog: string[] = [];
  private bootloader: { header: ImageHeader; defects: string[] } | undefined;
  private running: { header: ImageHeader; trial: boolean; defects: string[] } | undefined;
  private app: Client | undefined;
  private receiver: ((bytes: Buffer) => void) | undefined;
  private watchdog: { windowMs: number; fire: () => void; timer: { cancel(): void } } | undefined;
  readonly stats = { boots: 0, watchdogResets: 0, selfResets: 0 };
  private lastReset: ResetCause | undefined;
  private readonly detach: () => void;

  constructor(
    readonly target: Stm32Target,
    clock: WallClock,
    readonly layout: McuLayout | null,
    readonly options: McuOptions,
    private readonly io: McuIo,
  ) {
    this.rt = new McuRuntime(clock);
    this.flash = new FlashWriter(target, this.rt);
    const onReset = (cause: ResetCause): void => this.restart(cause);
    const onCore = (state: CoreStateName): void => {
      this.rt.setRunning(state === 'running');
      // NRST low or the supply gone: the program is lost at once, not at the release.
      if (state === 'reset' || state === 'off') this.stop();
    };
    target.on('reset', onReset);
    target.on('core', onCore);
    this.detach = () => {
      target.off('reset', onReset);
      target.off('core', onCore);
    };
    if (target.coreState !== 'off' && target.coreState !== 'reset') this.restart('power-on');
    this.rt.setRunning(target.coreState === 'running');
  }

  get phase(): McuPhase {
    return this.phaseNow;
  }

  /** Bytes from the module's TX line (the MCU's RX pin). */
  receive(bytes: Buffer): void {
    this.receiver?.(bytes);
  }

  close(): void {
    this.stop();
    this.flash.close();
    this.detach();
  }

  private stop(): void {
    this.rt.restart();
    this.receiver = undefined;
    this.watchdog = undefined;
    this.app = undefined;
    this.io.clearTx();
  }

  private restart(cause: ResetCause): void {
    this.stop();
    this.lastReset = cause;
    // The watchdog's line is the last the old program's console got; the new boot's log starts with it.
    this.bootLog = cause === 'watchdog' ? ['[wdg] watchdog reset'] : [];
    this.running = undefined;
    this.bootloader = undefined;
    this.phaseDetail = {};
    this.phaseNow = 'inert';
    if (!this.layout) return;
    const base = this.target.readFlash(this.layout.bootloader.address - this.layout.flashBase, this.layout.bootloader.size);
    const boot = checkImage(base, { loadAddress: this.layout.bootloader.address });
    const desc = readDescriptor(base);
    if (!boot.ok || desc?.kind !== DescriptorKind.bootloader) return; // not our bootloader: nothing observable runs
    this.bootloader = { header: boot.header, defects: namesOf(desc.defects) };
    this.stats.boots++;
    const epoch = this.rt.epoch;
    const fw = this.firmware(epoch);
    this.phaseNow = 'bootloader';
    void (async () => {
      // Nothing of the program runs before the core does (a reset can end in a halt: `reset halt`).
      await this.rt.sleep(0);
      const booted = await runBootloader(fw, boot.header, (desc.defects & Defect.unsafeSwap) !== 0);
      if (!booted || !fw.alive()) return;
      const area = this.target.readFlash(this.layout!.slotA.address - this.layout!.flashBase, booted.header.length);
      const d = readDescriptor(area);
      const appDefects = d?.kind === DescriptorKind.application ? d.defects : 0;
      this.running = { header: booted.header, trial: booted.trial, defects: namesOf(appDefects) };
      this.phaseNow = 'application';
      this.app = new Client(fw, { header: booted.header, trial: booted.trial, defects: appDefects, params: d?.params ?? [0, 0, 0] });
      await this.app.run();
    })().catch((err: unknown) => {
      if (fw.alive()) this.io.log(`mcu: firmware model error: ${(err as Error).stack ?? String(err)}`);
    });
  }

  private firmware(epoch: number): Firmware {
    const alive = (): boolean => epoch === this.rt.epoch;
    const flashBase = this.layout!.flashBase;
    const read = (address: number, length: number): Uint8Array => this.target.readFlash(address - flashBase, length);
    return {
      rt: this.rt,
      flash: this.flash,
      layout: this.layout!,
      options: this.options,
      alive,
      read,
      view: (address, length) => this.target.flash.bytes.subarray(address - flashBase, address - flashBase + length),
      readRegion: (r: Region) => read(r.address, r.size),
      console: (line) => {
        if (!alive()) return;
        this.bootLog.push(line);
        if (this.bootLog.length > BOOT_LOG_LINES) this.bootLog.splice(0, this.bootLog.length - BOOT_LOG_LINES);
        this.io.console(`${line}\r\n`);
        this.io.log(`mcu: ${line}`);
      },
      uartSend: (bytes) => {
        if (alive()) this.io.uartSend(bytes);
      },
      uartReceive: (fn) => {
        if (alive()) this.receiver = fn;
      },
      watchdogArm: (windowMs) => {
        if (!alive()) return;
        this.watchdog?.timer.cancel();
        const fire = (): void => {
          if (!alive()) return;
          this.stats.watchdogResets++;
          this.io.console('[wdg] watchdog reset\r\n');
          this.io.log('mcu: [wdg] watchdog reset');
          this.target.requestSystemReset('watchdog');
        };
        this.watchdog = { windowMs, fire, timer: this.rt.after(windowMs, fire) };
      },
      watchdogFeed: () => {
        const w = this.watchdog;
        if (!alive() || !w) return;
        w.timer.cancel();
        w.timer = this.rt.after(w.windowMs, w.fire);
      },
      systemReset: () => {
        if (!alive()) return;
        this.stats.selfResets++;
        this.target.requestSystemReset('sysresetreq');
      },
      setPhase: (phase, detail = {}) => {
        if (!alive()) return;
        this.phaseNow = phase;
        this.phaseDetail = detail;
      },
    };
  }

  /** What GET /mcu reports. */
  snapshot(): Record<string, unknown> {
    const t = this.target;
    const state = t.coreState;
    const runs = state === 'off' ? 'off' : state === 'reset' ? 'reset' : state === 'halted' ? 'halted' : this.phaseNow;
    const layout = this.layout;
    const record = layout ? readRecord(t.flash.bytes.subarray(0, layout.slotA.address - layout.flashBase), layout) : undefined;
    const app: AppStatus | undefined = this.app?.status;
    return {
      powered: t.powered,
      running: state === 'running',
      halted: state === 'halted',
      inReset: state === 'reset',
      runs,
      program: this.phaseNow,
      ...(Object.keys(this.phaseDetail).length > 0 ? { detail: this.phaseDetail } : {}),
      lastReset: this.lastReset,
      mcuTimeMs: Math.round(this.rt.now() * 1000) / 1000,
      layout,
      bootRecord: record
        ? {
            inForce: record.inForce ?? null,
            copies: record.copies.map((c) => (c.record ? { copy: c.index, ...c.record } : { copy: c.index, invalid: c.why })),
            log: record.log,
          }
        : null,
      bootloader: this.bootloader ? { component: this.bootloader.header.component, version: this.bootloader.header.version, defects: this.bootloader.defects } : null,
      image: this.running
        ? {
            component: this.running.header.component,
            version: this.running.header.version,
            state: this.running.trial && !app?.confirmed ? 'trial' : 'confirmed',
            defects: this.running.defects,
          }
        : null,
      application: app ? { ...app } : null,
      watchdog: { armed: this.watchdog !== undefined, windowMs: this.watchdog?.windowMs ?? null },
      flash: { busy: this.flash.busy, ...this.flash.stats, lastTorn: this.flash.lastTorn ?? null },
      stats: { ...this.stats },
      console: [...this.bootLog],
    };
  }
}
