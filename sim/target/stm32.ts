// The STM32 as the debug port sees it: a 32-bit AHB memory map (flash and its alias at 0, SRAM, system
// memory with the flash-size and unique-ID registers, the flash interface, DBGMCU, the Cortex-M debug
// registers, plain storage for every other peripheral/PPB word that OpenOCD's cfg event handlers touch),
// plus power and reset. Bus accesses report faults through `fault` instead of exceptions because they sit
// on the read-back hot path (one call per 32-bit word).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import type { Rails, RailName } from '../rails.ts';
import { CoreBusFault, nativeAlgorithms, type AlgorithmStep, type CoreBus, type NativeAlgorithm } from './algorithms.ts';
import { CortexMDebug, CoreState, REG_PC } from './cortex-m.ts';
import { FlashArray, createFlashInterface, type FlashInterface } from './flash.ts';
import { targetProfile, type TargetName, type TargetProfile } from './profiles.ts';

const DBGMCU_IDCODE = 0xe0042000;

/**
 * `debug-running` (OpenOCD's name for it): the core runs code the debugger started — one of the routines
 * it carries out natively, or the fault handler such a routine ended in — not the firmware, which stays
 * where the debugger halted it.
 */
export type CoreStateName = 'running' | 'debug-running' | 'halted' | 'reset' | 'off';

export interface TargetEvents {
  /** Supply switched: the debug port forgets its state on both edges. */
  power: [on: boolean];
  /** A system reset happened (power-on, NRST/SRST release, SYSRESETREQ, the watchdog). */
  reset: [cause: ResetCause];
  /**
   * What the core does changed: halted or resumed by the debugger, held in reset, released, powered off.
   * After a system reset it follows the `reset` event.
   */
  core: [state: CoreStateName];
  /**
   * A routine the core carries out natively (algorithms.ts) started, reached its breakpoint, took a bus
   * fault (the core is then lost in its fault handler, as a real one would be), or was interrupted by a
   * halt, reset or power loss.
   */
  algorithm: [name: string, outcome: 'started' | 'halted' | 'fault' | 'interrupted'];
}

export type ResetCause = 'power-on' | 'nrst' | 'srst' | 'sysresetreq' | 'watchdog';

export interface Stm32TargetOptions {
  target: TargetName;
  flashSizeKiB?: number;
  /** The routines the core recognises and carries out; default OpenOCD 0.12's (algorithms.ts). */
  algorithms?: readonly NativeAlgorithm[];
}

export class Stm32Target extends EventEmitter<TargetEvents> {
  readonly profile: TargetProfile;
  readonly flash: FlashArray;
  readonly flashInterface: FlashInterface;
  readonly core: CortexMDebug;
  readonly sram: Uint8Array;
  private readonly sramWords: Uint32Array;
  /** Set by read32/write when the access faulted on the bus; the AP turns it into STICKYERR. */
  fault = false;
  private poweredOn = true;
  private nrstLow = false;
  private srstAsserted = false;
  private readonly peripherals = new Map<number, number>();
  private readonly ppb = new Map<number, number>();
  private readonly system = new Map<number, number>();
  private readonly flashBase: number;
  private readonly flashEnd: number;
  private readonly sramBase: number;
  private readonly sramEnd: number;
  private readonly flashRegBase: number;
  /** The natively carried-out routine the core is running (or about to: `started` false), if any. */
  private algorithm: { name: string; step: AlgorithmStep; breakpoint: number; started: boolean } | undefined;
  /** A routine took a bus fault: the core spins in a fault handler until a halt, reset or power loss. */
  private lostInFault = false;
  private stepping = false;
  private readonly coreBus: CoreBus;
  private readonly algorithms: readonly NativeAlgorithm[];
  private lastCoreState: CoreStateName | undefined;
  /** Inside a system reset: the core's state settles before anyone is told. */
  private resetting = false;

  constructor(options: Stm32TargetOptions) {
    super();
    this.algorithms = options.algorithms ?? nativeAlgorithms;
    this.profile = targetProfile(options.target, options.flashSizeKiB);
    const p = this.profile;
    this.flash = new FlashArray(p.flashSizeKiB * 1024);
    this.flashInterface = createFlashInterface(this.flash, p);
    this.core = new CortexMDebug(p.cpuid, () => this.systemReset('sysresetreq'));
    this.core.onResume = () => this.prepareAlgorithm();
    this.coreBus = this.makeCoreBus();
    this.core.stateListener = () => this.notifyCore();
    this.sram = new Uint8Array(p.sramSize);
    this.sramWords = new Uint32Array(this.sram.buffer);
    this.flashBase = p.flashBase;
    this.flashEnd = p.flashBase + this.flash.size;
    this.sramBase = p.sramBase;
    this.sramEnd = p.sramBase + p.sramSize;
    this.flashRegBase = p.flashRegBase;
    // System memory words that the flash drivers read: flash size (16 bits, KiB) and the 96-bit UID.
    const sizeWord = p.flashSizeRegAddr & ~3;
    const sizeShift = 8 * (p.flashSizeRegAddr & 3);
    this.system.set(sizeWord, ((0xffff << (16 - sizeShift)) | (p.flashSizeKiB << sizeShift)) >>> 0);
    this.system.set(p.uidAddr, 0x00470032);
    this.system.set(p.uidAddr + 4, 0x33345111);
    this.system.set(p.uidAddr + 8, 0x37383932);
    this.systemReset('power-on');
  }

  private notifyCore(): void {
    if (this.resetting) return;
    const state = this.coreState;
    if (state === this.lastCoreState) return;
    this.lastCoreState = state;
    this.emit('core', state);
  }

  get powered(): boolean {
    return this.poweredOn;
  }

  get coreState(): CoreStateName {
    if (!this.poweredOn) return 'off';
    switch (this.core.state) {
      case CoreState.Halted:
        return 'halted';
      case CoreState.InReset:
        return 'reset';
      default:
        return this.algorithm !== undefined || this.lostInFault ? 'debug-running' : 'running';
    }
  }

  // ---- bus -------------------------------------------------------------------------------------------

  /** A 32-bit read of the aligned word containing addr (narrow reads take their lanes from it). */
  read32(addr: number): number {
    addr = (addr & ~3) >>> 0;
    if (addr >= this.flashBase && addr < this.flashEnd) return this.flash.words[(addr - this.flashBase) >>> 2]!;
    if (addr >= this.sramBase && addr < this.sramEnd) return this.sramWords[(addr - this.sramBase) >>> 2]!;
    if (addr < this.flash.size) return this.flash.words[addr >>> 2]!; // boot alias: BOOT0 = 0, flash at 0
    if (addr >= 0x40000000 && addr < 0x60000000) {
      const off = addr - this.flashRegBase;
      if (off >= 0 && off < 0x400) return this.flashInterface.readReg(off) >>> 0;
      return this.peripherals.get(addr) ?? 0;
    }
    if (addr >= 0xe0000000) {
      if (addr === DBGMCU_IDCODE) return this.profile.dbgmcuIdcode;
      const v = this.core.read(addr);
      if (v !== undefined) return v;
      return this.ppb.get(addr) ?? 0;
    }
    if (addr >= 0x1fff0000 && addr < 0x20000000) return this.system.get(addr) ?? 0xffffffff;
    this.fault = true;
    return 0;
  }

  /** A write of `size` bytes (1, 2 or 4) at addr; value holds those bytes right-aligned. */
  write(addr: number, size: number, value: number): void {
    addr >>>= 0;
    if (addr >= this.flashBase && addr < this.flashEnd) {
      if (!this.flashInterface.program(addr - this.flashBase, size, value)) this.fault = true;
      return;
    }
    if (addr >= this.sramBase && addr < this.sramEnd) {
      const off = addr - this.sramBase;
      if (size === 4 && !(off & 3)) this.sramWords[off >>> 2] = value;
      else for (let i = 0; i < size && off + i < this.sram.length; i++) this.sram[off + i] = (value >>> (8 * i)) & 0xff;
      // A flash loader waits on its FIFO's write pointer, which the debugger writes after the data.
      if (this.algorithm !== undefined && !this.stepping) this.stepAlgorithm();
      return;
    }
    if (addr < this.flash.size) {
      if (!this.flashInterface.program(addr, size, value)) this.fault = true;
      return;
    }
    const word = (addr & ~3) >>> 0;
    if (addr >= 0x40000000 && addr < 0x60000000) {
      const off = word - this.flashRegBase;
      if (off >= 0 && off < 0x400) {
        const merged = mergeLanes(this.flashInterface.readReg(off), addr, size, value);
        if (!this.flashInterface.writeReg(off, merged)) this.fault = true;
        return;
      }
      this.peripherals.set(word, mergeLanes(this.peripherals.get(word) ?? 0, addr, size, value));
      return;
    }
    if (addr >= 0xe0000000) {
      if (word === DBGMCU_IDCODE) return;
      // Debug registers are written whole; a narrow write merges with a read that has no side effect
      // worth keeping (OpenOCD only ever writes them as words).
      const merged = size === 4 ? value >>> 0 : mergeLanes(this.core.read(word) ?? 0, addr, size, value);
      if (this.core.write(word, merged)) {
        // A resume onto a known routine (DHCSR): the core starts carrying it out once the write is done.
        if (this.algorithm?.started === false) this.beginAlgorithm();
        return;
      }
      this.ppb.set(word, mergeLanes(this.ppb.get(word) ?? 0, addr, size, value));
      return;
    }
    this.fault = true; // system memory is read-only; everything else is unmapped
  }

  // ---- power and reset ---------------------------------------------------------------------------------

  /** Target supply. Off: the debug port goes dead; on: a power-on reset of core, debug logic and SRAM. */
  setPower(on: boolean): void {
    if (on === this.poweredOn) return;
    this.poweredOn = on;
    if (!on) this.interruptAlgorithm();
    if (on) this.systemReset('power-on');
    this.emit('power', on);
    this.notifyCore();
  }

  /**
   * A reset the running firmware causes: its own SYSRESETREQ, or the watchdog it stopped feeding. Like the
   * debugger's SYSRESETREQ it keeps the debug logic (a vector catch still halts). Ignored while unpowered or
   * held in reset.
   */
  requestSystemReset(cause: 'sysresetreq' | 'watchdog'): void {
    if (!this.poweredOn || this.nrstLow || this.srstAsserted) return;
    this.systemReset(cause);
  }

  /** NRST level: false holds the core in reset, the rising edge is a system reset. */
  setNrst(released: boolean): void {
    if (released === !this.nrstLow) return;
    this.nrstLow = !released;
    this.holdOrRelease('nrst');
  }

  /** The debug adapter's SRST line (remote_bitbang `s`/`u`), wired to NRST on a real board. */
  setSrst(asserted: boolean): void {
    if (asserted === this.srstAsserted) return;
    this.srstAsserted = asserted;
    this.holdOrRelease('srst');
  }

  /** A reset pulse on NRST (what the admin API's "reset" does). */
  reset(): void {
    this.setNrst(false);
    this.setNrst(true);
  }

  private holdOrRelease(cause: ResetCause): void {
    if (!this.poweredOn) return;
    if (this.nrstLow || this.srstAsserted) {
      this.interruptAlgorithm();
      this.core.state = CoreState.InReset;
      return;
    }
    this.systemReset(cause);
  }

  private systemReset(cause: ResetCause): void {
    this.interruptAlgorithm();
    this.resetting = true;
    try {
      if (cause === 'power-on') {
        this.core.powerOnReset();
        this.ppb.clear();
        this.sram.fill(0);
      }
      this.peripherals.clear();
      this.flashInterface.reset();
      this.core.coreReset(this.flash.words[0]!, this.flash.words[1]!, this.nrstLow || this.srstAsserted);
    } finally {
      this.resetting = false;
    }
    this.emit('reset', cause);
    this.notifyCore();
  }

  /** Follows the virtual power rails targetVdd and targetNrst; returns the unsubscribe function. */
  attachRails(rails: Rails): () => void {
    const onChange = (name: RailName, level: boolean): void => {
      if (name === 'targetVdd') this.setPower(level);
      else if (name === 'targetNrst') this.setNrst(level);
    };
    this.setPower(rails.get('targetVdd'));
    this.setNrst(rails.get('targetNrst'));
    rails.on('change', onChange);
    return () => rails.off('change', onChange);
  }

  // ---- routines the core carries out natively ----------------------------------------------------------

  /**
   * Advances the routine the core is running, if any: after a debugger write to SRAM, and for a flash model
   * whose operations take time, when one ends (a routine polling BSY waits for that).
   */
  stepAlgorithm(): void {
    const running = this.algorithm;
    if (running === undefined || !running.started) return;
    if (this.core.state !== CoreState.Running) {
      this.interruptAlgorithm(); // the debugger halted it midway
      return;
    }
    this.stepping = true;
    try {
      if (!running.step()) return;
      this.algorithm = undefined;
      this.core.breakpointAt(running.breakpoint);
      this.emit('algorithm', running.name, 'halted');
    } catch (err) {
      if (!(err instanceof CoreBusFault)) throw err;
      this.algorithm = undefined;
      this.lostInFault = true;
      this.emit('algorithm', running.name, 'fault');
    } finally {
      this.stepping = false;
    }
  }

  private beginAlgorithm(): void {
    const a = this.algorithm!;
    a.started = true;
    this.emit('algorithm', a.name, 'started');
    this.stepAlgorithm();
  }

  /** The core is about to run: if its PC is at one of the known routines, that is what it will carry out. */
  private prepareAlgorithm(): void {
    this.interruptAlgorithm();
    this.lostInFault = false;
    const pc = this.core.regs[REG_PC]! & ~1;
    if (pc < this.sramBase || pc >= this.sramEnd) return;
    const off = pc - this.sramBase;
    const hashes = new Map<number, string>();
    for (const a of this.algorithms) {
      if (off + a.size > this.sram.length) continue;
      let h = hashes.get(a.size);
      if (h === undefined) {
        h = createHash('sha256').update(this.sram.subarray(off, off + a.size)).digest('hex');
        hashes.set(a.size, h);
      }
      if (h !== a.sha256) continue;
      this.algorithm = { name: a.name, step: a.start(this.core.regs, this.coreBus), breakpoint: pc + a.breakpointOffset, started: false };
      return;
    }
  }

  private interruptAlgorithm(): void {
    this.lostInFault = false;
    const running = this.algorithm;
    if (running === undefined) return;
    this.algorithm = undefined;
    if (running.started) this.emit('algorithm', running.name, 'interrupted');
  }

  /** The core's own accesses: the debug port's bus, with a fault thrown instead of flagged. */
  private makeCoreBus(): CoreBus {
    const access = <T>(addr: number, fn: () => T): T => {
      const debugFault = this.fault;
      this.fault = false;
      const v = fn();
      const faulted = this.fault;
      this.fault = debugFault;
      if (faulted) throw new CoreBusFault(addr);
      return v;
    };
    return {
      read8: (addr) => access(addr, () => (this.read32(addr) >>> (8 * (addr & 3))) & 0xff),
      read16: (addr) => access(addr, () => (this.read32(addr) >>> (8 * (addr & 2))) & 0xffff),
      read32: (addr) => access(addr, () => this.read32(addr)),
      write16: (addr, value) => access(addr, () => this.write(addr, 2, value & 0xffff)),
      write32: (addr, value) => access(addr, () => this.write(addr, 4, value >>> 0)),
    };
  }

  // ---- flash contents, outside the debug path (preload and dump for tests and the admin API) ----------

  readFlash(offset = 0, length = this.flash.size - offset): Buffer {
    this.checkRange(offset, length);
    return Buffer.from(this.flash.bytes.subarray(offset, offset + length));
  }

  /** Replaces flash bytes directly, as a factory programmer would: no erase/program rules apply. */
  loadFlash(data: Uint8Array, offset = 0): void {
    this.checkRange(offset, data.length);
    this.flash.bytes.set(data, offset);
  }

  eraseFlash(): void {
    this.flash.eraseRange(0, this.flash.size);
  }

  async preloadFile(path: string, offset = 0): Promise<number> {
    const data = await readFile(path);
    this.loadFlash(data, offset);
    return data.length;
  }

  async dumpFile(path: string, offset = 0, length = this.flash.size - offset): Promise<number> {
    const data = this.readFlash(offset, length);
    await writeFile(path, data);
    return data.length;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.flash.size) {
      throw new RangeError(
        `flash range ${offset}+${length} is outside the ${this.profile.part} flash (0..${this.flash.size})`,
      );
    }
  }
}

/** Places a narrow write's bytes into their lanes of the old word. */
function mergeLanes(old: number, addr: number, size: number, value: number): number {
  if (size === 4) return value >>> 0;
  const shift = 8 * (addr & 3);
  const mask = (size === 1 ? 0xff : 0xffff) << shift;
  return ((old & ~mask) | ((value << shift) & mask)) >>> 0;
}
