// The STM32's JTAG side as a debug adapter sees it: a two-TAP chain (TDI → boundary-scan TAP, irlen 5 → CPU
// TAP with the JTAG-DP, irlen 4 → TDO), the ADIv5 JTAG-DP with posted reads, and the AHB-AP (MEM-AP #0) in
// front of the target's bus. docs/virtual-station.md, OpenOCD §1–2. Two adapters drive it: OpenOCD's remote_bitbang
// (one character per pin change, `process`) and a shift-based one (TMS/TDI bit strings, `shift`), both
// through the same rising edge of TCK.
//
// Speed matters here: a 512 KiB read-back is ~6.7 million TCK cycles. The scan register is three 32-bit
// numbers (never a BigInt or an array), and the answers of a whole chunk or batch go out in one write.
import type { Stm32Target } from '../target/stm32.ts';

// TAP controller states (IEEE 1149.1). Shift-xR + 1 is Exit1-xR, which the hot path relies on.
const TLR = 0;
const RTI = 1;
const SELDR = 2;
const CAPDR = 3;
const SHDR = 4;
const EX1DR = 5;
const PAUSEDR = 6;
const EX2DR = 7;
const UPDDR = 8;
const SELIR = 9;
const CAPIR = 10;
const SHIR = 11;
const EX1IR = 12;
const PAUSEIR = 13;
const EX2IR = 14;
const UPDIR = 15;

export const tapStateNames = [
  'TLR', 'RTI', 'SELDR', 'CAPDR', 'SHDR', 'EX1DR', 'PAUSEDR', 'EX2DR',
  'UPDDR', 'SELIR', 'CAPIR', 'SHIR', 'EX1IR', 'PAUSEIR', 'EX2IR', 'UPDIR',
] as const;

/** NEXT[state * 2 + tms]. */
const NEXT = Uint8Array.from([
  RTI, TLR, //       TLR
  RTI, SELDR, //     RTI
  CAPDR, SELIR, //   SELDR
  SHDR, EX1DR, //    CAPDR
  SHDR, EX1DR, //    SHDR
  PAUSEDR, UPDDR, // EX1DR
  PAUSEDR, EX2DR, // PAUSEDR
  SHDR, UPDDR, //    EX2DR
  RTI, SELDR, //     UPDDR
  CAPIR, TLR, //     SELIR
  SHIR, EX1IR, //    CAPIR
  SHIR, EX1IR, //    SHIR
  PAUSEIR, UPDIR, // EX1IR
  PAUSEIR, EX2IR, // PAUSEIR
  SHIR, UPDIR, //    EX2IR
  RTI, SELDR, //     UPDIR
]);

// CPU TAP instructions (ADIv5 JTAG-DP, irlen 4). Anything else selects BYPASS.
const IR_ABORT = 0x8;
const IR_DPACC = 0xa;
const IR_APACC = 0xb;
const IR_IDCODE = 0xe;
// Boundary-scan TAP (irlen 5): TLR selects IDCODE; OpenOCD only ever loads BYPASS (0x1F).
const BS_IR_IDCODE = 0x01;
/** IR capture of the whole chain: CPU 0b0001 (bits 0..3), BS 0b00001 (bits 4..8). */
const IR_CAPTURE = 0x11;
const IR_LENGTH = 9;

// JTAG-DP CTRL/STAT.
const STICKYORUN = 1 << 1;
const STICKYCMP = 1 << 4;
const STICKYERR = 1 << 5;
const STICKY_BITS = STICKYORUN | STICKYCMP | STICKYERR;
const CDBGRSTREQ = 1 << 26;
const CDBGRSTACK = 1 << 27;
const CDBGPWRUPREQ = 1 << 28;
const CDBGPWRUPACK = 1 << 29;
const CSYSPWRUPREQ = 1 << 30;
const CSYSPWRUPACK = 1 << 31;
const CTRL_WRITABLE = 0x54ffff0d; // ORUNDETECT, TRNMODE, MASKLANE, TRNCNT, the three REQ bits

/** ACK OK/FAULT of ADIv5 JTAG (WAIT is never answered: every transaction completes at Update-DR). */
const ACK_OK = 0b010;

// AHB-AP.
const AP_IDR = 0x24770011; // ARM, MEM-AP, AHB3 (what cortex_m_find_mem_ap looks for)
const AP_BASE = 0xe00ff003;
const CSW_DEVICE_EN = 1 << 6;
const CSW_PACKED = 1 << 5;
const CSW_RESET = 0x23000042; // 32-bit, no increment, DeviceEn

const CHAR_0 = 0x30;
const CHAR_R = 0x52;

export interface DebugPortStats {
  /** Bytes processed since the port was created. */
  bytes: number;
  /** Chunks (socket reads) processed: about one per DAP scan, the round trips. */
  chunks: number;
  /** Bytes that are not part of the 0.12 remote_bitbang protocol (ignored). */
  unknownBytes: number;
  /** DPACC/APACC transactions completed. */
  transactions: number;
  /** Bus faults turned into STICKYERR. */
  busFaults: number;
}

export class DebugPort {
  // TAP and the chain's combined shift register: bits 0..Lcpu-1 belong to the CPU TAP (nearest TDO),
  // the rest to the BS TAP; TDI enters at bit L-1, held as the insertion word and mask.
  private state = TLR;
  private tck = 0;
  private w0 = 0;
  private w1 = 0;
  private w2 = 0;
  private insWord = 0;
  private insMask = 1;
  private cpuIr = IR_IDCODE;
  private bsIr = BS_IR_IDCODE;
  // JTAG-DP.
  private ctrl = 0;
  private sticky = 0;
  private select = 0;
  /** The posted read result: captured by the next DPACC/APACC scan, whatever it is. */
  private readResult = 0;
  // AHB-AP.
  private csw = CSW_RESET;
  private tar = 0;

  /** Set when OpenOCD sent `Q` (quit); the server then closes the connection. */
  quit = false;
  /** The adapter whose debugger has the TAP (see claim). */
  private holder: object | undefined;
  readonly stats: DebugPortStats = { bytes: 0, chunks: 0, unknownBytes: 0, transactions: 0, busFaults: 0 };
  /** Called with each byte that is not part of the protocol (for the simulator's log). */
  onUnknownByte: ((byte: number) => void) | undefined;

  constructor(readonly target: Stm32Target) {
    // A dead chip loses all debug state; when power returns, the TAP is in Test-Logic-Reset and the DP
    // is unpowered (OpenOCD notices through CTRL/STAT and reconnects).
    target.on('power', () => this.powerReset());
  }

  private powerReset(): void {
    this.state = TLR;
    this.cpuIr = IR_IDCODE;
    this.bsIr = BS_IR_IDCODE;
    this.w0 = this.w1 = this.w2 = 0;
    this.ctrl = 0;
    this.sticky = 0;
    this.select = 0;
    this.readResult = 0;
    this.csw = CSW_RESET;
    this.tar = 0;
  }

  /**
   * One debugger at a time, whatever adapter it comes through: the adapter that starts a session (a
   * remote_bitbang connection, a Bus Pirate entering its OpenOCD mode) takes the TAP, and the one that had
   * it is cut off (`holds` turns false), as if its cable had been pulled.
   */
  claim(adapter: object): void {
    this.holder = adapter;
  }

  holds(adapter: object): boolean {
    return this.holder === adapter;
  }

  get tapState(): string {
    return tapStateNames[this.state]!;
  }

  /**
   * Processes one chunk of remote_bitbang characters and writes the `R` answers ('0'/'1') to `out`
   * (at least input.length bytes). Returns the number of answer bytes.
   */
  process(input: Uint8Array, out: Uint8Array): number {
    const n = input.length;
    this.stats.bytes += n;
    this.stats.chunks++;
    let o = 0;
    for (let i = 0; i < n; i++) {
      const c = input[i]!;
      const k = c - CHAR_0;
      if (k >= 0 && k < 8) {
        // '0'..'7' = TCK<<2 | TMS<<1 | TDI; only the rising edge of TCK does anything.
        if ((k & 4) === 0) this.tck = 0;
        else if (this.tck === 0) {
          this.tck = 1;
          this.clock(k & 2, k & 1);
        }
      } else if (c === CHAR_R) out[o++] = CHAR_0 + this.tdo();
      else this.control(c);
    }
    return o;
  }

  /**
   * A shift-based adapter's batch (a Bus Pirate's TAP_SHIFT, a J-Link's or an FTDI MPSSE's shift): `bits`
   * TCK cycles with TMS and TDI taken LSB first from the two bit strings; TDO, sampled before each rising
   * edge as a bit-banging host does, goes to `tdo` (at least ceil(bits / 8) bytes, overwritten).
   */
  shift(tms: Uint8Array, tdi: Uint8Array, bits: number, tdo: Uint8Array): void {
    this.stats.bytes += Math.ceil(bits / 8) * 2;
    this.stats.chunks++;
    tdo.fill(0, 0, Math.ceil(bits / 8));
    for (let i = 0; i < bits; i++) {
      const at = i >>> 3;
      const bit = 1 << (i & 7);
      if (this.tdo()) tdo[at]! |= bit;
      this.tck = 1;
      this.clock(tms[at]! & bit, tdi[at]! & bit);
      this.tck = 0;
    }
  }

  /**
   * TDO as the adapter samples it: the LSB of the selected shift path in Shift-DR/IR, else 0. An unpowered
   * chip drives nothing and TDO sits at the adapter's pull-up, so every sample reads 1: to OpenOCD that is
   * "all ones" on the chain and an invalid ACK (7) on every DAP scan — commands fail at once instead of
   * hanging, and the connection (the probe's cable) stays up as it would on a bench.
   */
  private tdo(): number {
    if (!this.target.powered) return 1;
    return this.state === SHDR || this.state === SHIR ? this.w0 & 1 : 0;
  }

  /**
   * One rising edge of TCK: the TAP does the current state's action (capture, or shift with TDI entering
   * at the chain's far end), then moves by TMS, then latches on Update. A dead chip ignores the clock.
   */
  private clock(tms: number, tdi: number): void {
    if (!this.target.powered) return;
    const state = this.state;
    if (state === SHDR || state === SHIR) {
      this.w0 = (this.w0 >>> 1) | (this.w1 << 31);
      this.w1 = (this.w1 >>> 1) | (this.w2 << 31);
      this.w2 >>>= 1;
      if (tdi) {
        if (this.insWord === 0) this.w0 |= this.insMask;
        else if (this.insWord === 1) this.w1 |= this.insMask;
        else this.w2 |= this.insMask;
      }
      if (tms) this.state = state + 1; // → Exit1-xR
      return;
    }
    if (state === CAPDR) this.captureDr();
    else if (state === CAPIR) {
      this.w0 = IR_CAPTURE;
      this.w1 = this.w2 = 0;
      this.insWord = 0;
      this.insMask = 1 << (IR_LENGTH - 1);
    }
    const next = NEXT[state * 2 + (tms ? 1 : 0)]!;
    this.state = next;
    if (next === UPDDR) this.updateDr(this.w0, this.w1);
    else if (next === UPDIR) {
      this.cpuIr = this.w0 & 0xf;
      this.bsIr = (this.w0 >>> 4) & 0x1f;
    } else if (next === TLR) {
      this.cpuIr = IR_IDCODE;
      this.bsIr = BS_IR_IDCODE;
    }
  }

  /** The adapter's SRST output, wired to NRST on a board. */
  setSrst(asserted: boolean): void {
    this.target.setSrst(asserted);
  }

  /** TRST asserted: an asynchronous reset of both TAPs to Test-Logic-Reset. */
  trst(): void {
    this.state = TLR;
    this.cpuIr = IR_IDCODE;
    this.bsIr = BS_IR_IDCODE;
  }

  private control(c: number): void {
    switch (c) {
      case 0x42: // 'B' blink on
      case 0x62: // 'b' blink off
        return;
      case 0x72: // 'r'..'u': TRST<<1 | SRST, 1 = asserted
      case 0x73:
      case 0x74:
      case 0x75: {
        const v = c - 0x72;
        if (v & 2) this.trst();
        this.setSrst((v & 1) === 1);
        return;
      }
      case 0x51: // 'Q'
        this.quit = true;
        return;
      case 0x0a:
      case 0x0d:
        return;
      default:
        this.stats.unknownBytes++;
        this.onUnknownByte?.(c);
    }
  }

  private captureDr(): void {
    let cpuLo: number;
    let cpuHi = 0;
    let cpuLen: number;
    switch (this.cpuIr) {
      case IR_IDCODE:
        cpuLo = this.target.profile.cpuTapId;
        cpuLen = 32;
        break;
      case IR_DPACC:
      case IR_APACC:
      case IR_ABORT:
        // ACK in bits 2:0, the previous read's result in bits 34:3.
        cpuLo = ACK_OK | (this.readResult << 3);
        cpuHi = this.readResult >>> 29;
        cpuLen = 35;
        break;
      default:
        cpuLo = 0; // BYPASS captures 0
        cpuLen = 1;
    }
    const bsIdcode = this.bsIr === BS_IR_IDCODE;
    const len = cpuLen + (bsIdcode ? 32 : 1);
    let w0 = cpuLo;
    let w1 = cpuLen === 35 ? cpuHi : 0;
    let w2 = 0;
    if (bsIdcode) {
      const v = this.target.profile.bsTapId;
      if (cpuLen === 1) {
        w0 |= v << 1;
        w1 |= v >>> 31;
      } else {
        const q = cpuLen - 32;
        w1 |= v << q;
        if (q > 0) w2 |= v >>> (32 - q);
      }
    }
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.insWord = (len - 1) >>> 5;
    this.insMask = 1 << ((len - 1) & 31);
  }

  private updateDr(w0: number, w1: number): void {
    const ir = this.cpuIr;
    if (ir !== IR_DPACC && ir !== IR_APACC) return; // ABORT (DAPABORT) needs nothing: nothing ever waits
    this.stats.transactions++;
    const read = (w0 & 1) === 1;
    const a = (w0 >>> 1) & 3;
    const data = ((w0 >>> 3) | (w1 << 29)) >>> 0;
    if (ir === IR_DPACC) this.dpAccess(read, a, data);
    else this.apAccess(read, a, data);
  }

  private dpAccess(read: boolean, a: number, data: number): void {
    switch (a) {
      case 0: // reserved on JTAG-DP v0 (no DPIDR)
        if (read) this.readResult = 0;
        return;
      case 1: // CTRL/STAT
        if (read) this.readResult = this.ctrlStat();
        else {
          this.sticky &= ~(data & STICKY_BITS); // write-1-to-clear on JTAG-DP
          this.ctrl = data & CTRL_WRITABLE;
        }
        return;
      case 2: // SELECT
        if (read) this.readResult = this.select;
        else this.select = data;
        return;
      default: // RDBUFF: no side effect, returns the last read result again
        return;
    }
  }

  private ctrlStat(): number {
    let v = this.ctrl | this.sticky;
    // The power domains acknowledge their requests at once.
    if (v & CDBGPWRUPREQ) v |= CDBGPWRUPACK;
    if (v & CSYSPWRUPREQ) v |= CSYSPWRUPACK;
    if (v & CDBGRSTREQ) v |= CDBGRSTACK;
    return v >>> 0;
  }

  private apAccess(read: boolean, a: number, data: number): void {
    if (this.sticky & STICKYERR) {
      // Transactions are discarded until the debugger clears the sticky error.
      if (read) this.readResult = 0;
      return;
    }
    const select = this.select;
    if (select >>> 24 !== 0) {
      if (read) this.readResult = 0; // no AP behind APSEL ≠ 0: IDR reads 0 and OpenOCD's search stops
      return;
    }
    const reg = (select & 0xf0) | (a << 2);
    switch (reg) {
      case 0x0c: {
        // DRW: the bus access at TAR, then TAR auto-increment (single) by the access size. Like the
        // Cortex-M3/M4 AHB-AP, only TAR[11:0] counts: the debugger must rewrite TAR at each 4 KiB boundary.
        const addr = this.tar;
        const size = this.accessBytes();
        this.busAccess(read, addr, size, data);
        if ((this.csw & 0x30) === 0x10) this.tar = ((addr & ~0xfff) | ((addr + size) & 0xfff)) >>> 0;
        return;
      }
      case 0x00:
        if (read) this.readResult = ((this.csw & ~0x80) | CSW_DEVICE_EN) >>> 0;
        else this.csw = (data & ~CSW_PACKED) >>> 0; // packed transfers refused: AddrInc 0b10 does not stick
        return;
      case 0x04:
        if (read) this.readResult = this.tar;
        else this.tar = data;
        return;
      case 0x10:
      case 0x14:
      case 0x18:
      case 0x1c:
        // Banked data: BDn reaches (TAR & ~0xF) + 4n, with no increment.
        this.busAccess(read, ((this.tar & ~0xf) + (a << 2)) >>> 0, this.accessBytes(), data);
        return;
      case 0xfc:
        if (read) this.readResult = AP_IDR;
        return;
      case 0xf8:
        if (read) this.readResult = AP_BASE;
        return;
      default:
        if (read) this.readResult = 0; // CFG (0xF4) = 0: little-endian, 32-bit addresses and data
    }
  }

  private accessBytes(): number {
    const size = this.csw & 7;
    return size === 0 ? 1 : size === 1 ? 2 : 4;
  }

  private busAccess(read: boolean, addr: number, size: number, data: number): void {
    const target = this.target;
    if (read) {
      // A narrow read finds its byte lanes in place within the aligned word.
      this.readResult = target.read32(addr);
    } else if (size === 4) {
      target.write(addr, 4, data);
    } else {
      const shift = 8 * (addr & (size === 2 ? 2 : 3));
      target.write(addr, size, (data >>> shift) & (size === 2 ? 0xffff : 0xff));
    }
    if (target.fault) {
      target.fault = false;
      this.sticky |= STICKYERR;
      this.stats.busFaults++;
      if (read) this.readResult = 0;
    }
  }
}
