// Cortex-M3/M4 debug registers and the halt/run/reset state OpenOCD's cortex_m driver drives
// (docs/virtual-station.md, OpenOCD §3.3–3.5). There is no instruction-set emulator: "running" only means "not
// halted", the PC does not move, and the core registers are what the last reset loaded from the vector
// table (or what the debugger wrote) — unless the debugger started one of the routines the chip carries
// out natively (algorithms.ts), which halts at its breakpoint as the real code would.

const DHCSR = 0xe000edf0;
const DCRSR = 0xe000edf4;
const DCRDR = 0xe000edf8;
const DEMCR = 0xe000edfc;
const CPUID = 0xe000ed00;
const AIRCR = 0xe000ed0c;
const DFSR = 0xe000ed30;
const FP_CTRL = 0xe0002000;
const DWT_CTRL = 0xe0001000;
const DWT_DEVARCH = 0xe0001fbc;
const MVFR0 = 0xe000ef40;
const MVFR1 = 0xe000ef44;

const DHCSR_KEY = 0xa05f;
const C_DEBUGEN = 1 << 0;
const C_HALT = 1 << 1;
const S_REGRDY = 1 << 16;
const S_HALT = 1 << 17;
const S_RETIRE_ST = 1 << 24;
const S_RESET_ST = 1 << 25;
const DEMCR_VC_CORERESET = 1 << 0;
const DFSR_HALTED = 1 << 0;
const DFSR_BKPT = 1 << 1;
const DFSR_VCATCH = 1 << 3;
const AIRCR_VECTKEY = 0x05fa;
const AIRCR_VECTRESET = 1 << 0;
const AIRCR_SYSRESETREQ = 1 << 2;

/** InReset: held by NRST (or the adapter's SRST), neither running nor halted. */
export const CoreState = { Running: 0, Halted: 1, InReset: 2 } as const;
export type CoreState = (typeof CoreState)[keyof typeof CoreState];

/** Register numbers of DCRSR.REGSEL that matter for a reset (ARMv7-M ARM C1.6.3). */
export const REG_SP = 13;
export const REG_LR = 14;
export const REG_PC = 15;
export const REG_XPSR = 16;
export const REG_MSP = 17;
export const REG_PSP = 18;
export const REG_CONTROL = 20;

export class CortexMDebug {
  private coreState: CoreState = CoreState.Running;
  /** Called after every change of `state` (halt, resume, reset hold and release): the chip tells the MCU model. */
  stateListener: (() => void) | undefined;
  /** DHCSR control bits C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS, C_SNAPSTALL as last written. */
  private control = 0;
  private resetSeen = false;
  private demcr = 0;
  private dfsr = 0;
  private dcrdr = 0;
  private fpbEnabled = 0;
  private aircrPrigroup = 0;
  /** Core registers by REGSEL (0x00–0x5F). */
  readonly regs = new Uint32Array(0x60);
  /**
   * Called when the debugger lets a halted core run (`resume`, the start of a target algorithm), with the
   * registers it wrote and before the core's state changes: what the core will run is known by then.
   */
  onResume: (() => void) | undefined;

  /** Set by a reset request; the owner (the chip) performs the system reset. */
  constructor(
    private readonly cpuid: number,
    private readonly requestSystemReset: () => void,
  ) {}

  /** Power-on reset: the debug logic itself restarts (an NRST or SYSRESETREQ reset keeps it). */
  powerOnReset(): void {
    this.control = 0;
    this.demcr = 0;
    this.dfsr = 0;
    this.dcrdr = 0;
    this.fpbEnabled = 0;
    this.aircrPrigroup = 0;
  }

  /**
   * A system reset has loaded the core: it halts at the reset vector if the debugger asked for it
   * (DEMCR.VC_CORERESET with C_DEBUGEN), as OpenOCD's `reset halt` expects; otherwise it runs.
   */
  coreReset(sp: number, pc: number, heldInReset: boolean): void {
    this.regs.fill(0);
    this.regs[REG_SP] = sp;
    this.regs[REG_MSP] = sp;
    this.regs[REG_PC] = pc & ~1;
    this.regs[REG_LR] = 0xffffffff;
    this.regs[REG_XPSR] = 0x01000000;
    this.resetSeen = true;
    this.control &= ~C_HALT;
    this.aircrPrigroup = 0;
    if (heldInReset) {
      this.state = CoreState.InReset;
    } else if (this.demcr & DEMCR_VC_CORERESET && this.control & C_DEBUGEN) {
      this.state = CoreState.Halted;
      this.control |= C_HALT;
      this.dfsr |= DFSR_VCATCH;
    } else {
      this.state = CoreState.Running;
    }
  }

  get state(): CoreState {
    return this.coreState;
  }

  set state(s: CoreState) {
    if (s === this.coreState) return;
    this.coreState = s;
    this.stateListener?.();
  }

  get halted(): boolean {
    return this.state === CoreState.Halted;
  }

  /** The running core executed a `bkpt` at `pc`: it halts in debug state, as a debugger expects. */
  breakpointAt(pc: number): void {
    if (this.state !== CoreState.Running) return;
    this.regs[REG_PC] = pc;
    this.state = CoreState.Halted;
    this.control |= C_HALT;
    this.dfsr |= DFSR_BKPT;
  }

  /** Reads a debug register; undefined if the address is not one of them (then it is plain storage). */
  read(addr: number): number | undefined {
    switch (addr) {
      case DHCSR: {
        let v = this.control | S_REGRDY;
        if (this.state === CoreState.Halted) v |= S_HALT;
        else if (this.state === CoreState.Running) v |= S_RETIRE_ST;
        if (this.resetSeen || this.state === CoreState.InReset) v |= S_RESET_ST;
        this.resetSeen = false; // S_RESET_ST is cleared by the read that reports it
        return v >>> 0;
      }
      case DCRDR:
        return this.dcrdr;
      case DEMCR:
        return this.demcr;
      case DCRSR:
        return 0;
      case CPUID:
        return this.cpuid;
      case AIRCR:
        return (0xfa050000 | (this.aircrPrigroup << 8)) >>> 0;
      case DFSR:
        return this.dfsr;
      case FP_CTRL:
        return 0x260 | this.fpbEnabled; // 6 code + 2 literal comparators
      case DWT_CTRL:
        return 0x40000000; // 4 comparators
      case DWT_DEVARCH:
      case MVFR0:
      case MVFR1:
        return 0; // no FPU registers advertised: fewer accesses per halt
      default:
        return undefined;
    }
  }

  /** Writes a debug register; false if the address is not one of them. */
  write(addr: number, value: number): boolean {
    switch (addr) {
      case DHCSR:
        if (value >>> 16 !== DHCSR_KEY) return true; // writes without the key are ignored
        this.writeControl(value & 0x2f);
        return true;
      case DCRSR: {
        const regsel = value & 0x7f;
        if (regsel < this.regs.length) {
          if (value & 0x10000) this.regs[regsel] = this.dcrdr;
          else this.dcrdr = this.regs[regsel]!;
        }
        return true;
      }
      case DCRDR:
        this.dcrdr = value >>> 0;
        return true;
      case DEMCR:
        this.demcr = value & 0x010f07f1;
        return true;
      case AIRCR:
        if (value >>> 16 !== AIRCR_VECTKEY) return true;
        this.aircrPrigroup = (value >>> 8) & 7;
        if (value & (AIRCR_SYSRESETREQ | AIRCR_VECTRESET)) this.requestSystemReset();
        return true;
      case DFSR:
        this.dfsr &= ~(value & 0x1f);
        return true;
      case FP_CTRL:
        if (value & 2) this.fpbEnabled = value & 1; // KEY must be set for ENABLE to change
        return true;
      case CPUID:
      case DWT_CTRL:
      case DWT_DEVARCH:
      case MVFR0:
      case MVFR1:
        return true; // read-only
      default:
        return false;
    }
  }

  private writeControl(bits: number): void {
    this.control = bits;
    if (!(bits & C_DEBUGEN)) {
      this.control = bits & ~C_HALT; // halting needs debug enabled
      if (this.state === CoreState.Halted) {
        this.onResume?.();
        this.state = CoreState.Running;
      }
      return;
    }
    if (this.state === CoreState.InReset) return;
    if (bits & C_HALT) {
      if (this.state !== CoreState.Halted) this.dfsr |= DFSR_HALTED;
      this.state = CoreState.Halted;
    } else if (bits & 4 /* C_STEP */ && this.state === CoreState.Halted) {
      this.dfsr |= DFSR_HALTED; // a step without an ISA: the core halts again at once
      this.control |= C_HALT;
    } else {
      if (this.state === CoreState.Halted) this.onResume?.();
      this.state = CoreState.Running;
    }
  }
}
