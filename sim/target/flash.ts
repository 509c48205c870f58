// STM32 flash: the array and the two flash interfaces (FPEC of the F103, FLASH of the F407) with the rules
// a programmer runs into on silicon: programming only clears bits, erase sets a whole page/sector to 0xFF,
// CR is locked until the two-key sequence, a wrong key locks it until the next reset, and every mistake
// raises the error bit the reference manual names (RM0008 §3 for the F1, RM0090 §3 for the F4).
// Register offsets and the exact sequences OpenOCD uses are in docs/virtual-station.md, OpenOCD §4.4.
import type { FlashUnit, TargetProfile } from './profiles.ts';

export const KEY1 = 0x45670123;
export const KEY2 = 0xcdef89ab;
const OPTKEY1_F4 = 0x08192a3b;
const OPTKEY2_F4 = 0x4c5d6e7f;

/** Result of a bus write into the flash interface: false means the AHB access itself faulted. */
export type BusOk = boolean;

/** What programming one cell did: the silicon's rule, shared by the debugger's path and the MCU's own writes. */
export type CellResult = 'ok' | 'not-erased' | 'protected';

/**
 * A defective flash (an admin fault): programming the cells of [offset, offset+length) does nothing
 * (`ignore`: the array keeps its bits, the interface reports success) or leaves other bits than asked
 * (`garble`), as worn cells do. Erasing still works. Only a read-back of what was written can tell.
 */
export interface FlashDefect {
  kind: 'ignore' | 'garble';
  offset: number;
  length: number;
}

export class FlashArray {
  readonly bytes: Uint8Array;
  /** Little-endian word view for the read-back hot path (x86 and the Pi's ARM are both little-endian). */
  readonly words: Uint32Array;
  defect: FlashDefect | undefined;

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(size);
    this.words = new Uint32Array(this.bytes.buffer, 0, size >>> 2);
    this.bytes.fill(0xff);
  }

  eraseRange(offset: number, size: number): void {
    this.bytes.fill(0xff, offset, offset + size);
  }

  /** Programming clears bits only (AND), a cell of `size` bytes little-endian; a defect applies first. */
  program(offset: number, size: number, value: number): void {
    const d = this.defect;
    if (d && offset < d.offset + d.length && offset + size > d.offset) {
      if (d.kind === 'ignore') return;
      value ^= 0x5a5a5a5a;
    }
    for (let i = 0; i < size; i++) this.bytes[offset + i]! &= (value >>> (8 * i)) & 0xff;
  }
}

export interface FlashInterface {
  /** Register read at an offset from the interface base; side-effect free. */
  readReg(offset: number): number;
  /** Register write (32-bit value already merged for narrow writes). */
  writeReg(offset: number, value: number): BusOk;
  /** A write into the flash array through the AHB (size 1, 2 or 4 bytes, value right-aligned). */
  program(offset: number, size: number, value: number): BusOk;
  /** System reset: the interface relocks and forgets the key sequence (RM0008 §3.3.1, RM0090 §3.5.1). */
  reset(): void;
  /** Marks erase units write-protected (the option bytes' WRP/nWRP bits) for protection tests. */
  setWriteProtected(unitIndexes: readonly number[]): void;
  readonly locked: boolean;
  /** Whether the option bytes write-protect an erase unit. */
  unitProtected(unitIndex: number): boolean;
  /**
   * Programs one cell of `size` bytes (the F1: a half-word; the F4: its PSIZE) with the array's rules, as
   * the programming sequence does once PG is set: only 1 → 0 bits, the F1 refuses a half-word that is not
   * erased (PGERR, the cell keeps its value), a protected unit is refused. Sets no status bits.
   */
  programCell(offset: number, size: number, value: number): CellResult;
}

export function unitIndexAt(units: readonly FlashUnit[], offset: number): number {
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (offset >= u.offset && offset < u.offset + u.size) return i;
  }
  return -1;
}


// ---------------------------------------------------------------------------------------------------------
// STM32F1 FPEC at 0x40022000: ACR 0x00, KEYR 0x04, OPTKEYR 0x08, SR 0x0C, CR 0x10, AR 0x14, OBR 0x1C, WRPR 0x20.
const F1_SR_BSY = 1 << 0;
const F1_SR_PGERR = 1 << 2;
const F1_SR_WRPRTERR = 1 << 4;
const F1_SR_EOP = 1 << 5;
const F1_CR_PG = 1 << 0;
const F1_CR_PER = 1 << 1;
const F1_CR_MER = 1 << 2;
const F1_CR_STRT = 1 << 6;
const F1_CR_LOCK = 1 << 7;
const F1_CR_WRITABLE = 0x1677; // PG PER MER OPTPG OPTER STRT OPTWRE ERRIE EOPIE

export class F1FlashInterface implements FlashInterface {
  private acr = 0x30;
  private sr = 0;
  private cr = F1_CR_LOCK;
  private ar = 0;
  private keyStage = 0;
  private lockedOut = false;
  private wrpr = 0xffffffff;

  constructor(
    private readonly flash: FlashArray,
    private readonly profile: TargetProfile,
  ) {}

  get locked(): boolean {
    return (this.cr & F1_CR_LOCK) !== 0;
  }

  reset(): void {
    this.acr = 0x30;
    this.sr = 0;
    this.cr = F1_CR_LOCK;
    this.ar = 0;
    this.keyStage = 0;
    this.lockedOut = false;
  }

  setWriteProtected(pages: readonly number[]): void {
    // WRPR bit n protects pages 2n and 2n+1 (4 KiB) on high-density parts; 0 = protected.
    this.wrpr = 0xffffffff;
    for (const p of pages) this.wrpr &= ~(1 << Math.min(31, p >> 1));
  }

  private pageProtected(page: number): boolean {
    return (this.wrpr & (1 << Math.min(31, page >> 1))) === 0;
  }

  unitProtected(page: number): boolean {
    return this.pageProtected(page);
  }

  programCell(offset: number, size: number, value: number): CellResult {
    if (this.pageProtected(unitIndexAt(this.profile.units, offset))) return 'protected';
    const now = this.flash.bytes[offset]! | (this.flash.bytes[offset + 1]! << 8);
    const half = value & 0xffff;
    // The FPEC refuses to program a half-word that is not erased, except to write 0x0000.
    if (now !== 0xffff && half !== 0) return 'not-erased';
    this.flash.program(offset, size, half);
    return 'ok';
  }

  readReg(offset: number): number {
    switch (offset) {
      case 0x00:
        return this.acr;
      case 0x0c:
        return this.sr;
      case 0x10:
        return this.cr;
      case 0x14:
        return this.ar;
      case 0x1c:
        return 0x03fffffc; // OBR: no read protection, default user options
      case 0x20:
        return this.wrpr >>> 0;
      default:
        return 0; // KEYR, OPTKEYR read as zero
    }
  }

  writeReg(offset: number, value: number): BusOk {
    switch (offset) {
      case 0x00:
        this.acr = value & 0x3f;
        return true;
      case 0x04:
        return this.writeKey(value >>> 0);
      case 0x08:
        return true; // option bytes are not modelled beyond their read values
      case 0x0c:
        this.sr &= ~(value & (F1_SR_PGERR | F1_SR_WRPRTERR | F1_SR_EOP));
        return true;
      case 0x10:
        this.writeCr(value);
        return true;
      case 0x14:
        this.ar = value >>> 0;
        return true;
      default:
        return true;
    }
  }

  // The F1 accepts the key pair even when already unlocked (OpenOCD's stm32f1x driver relies on it);
  // any other value ends in lock-out and a bus error until reset.
  private writeKey(value: number): BusOk {
    if (this.lockedOut) return false;
    if (this.keyStage === 0 && value === KEY1) {
      this.keyStage = 1;
      return true;
    }
    if (this.keyStage === 1 && value === KEY2) {
      this.keyStage = 0;
      this.cr &= ~F1_CR_LOCK;
      return true;
    }
    this.keyStage = 0;
    this.lockedOut = true;
    this.cr |= F1_CR_LOCK;
    return false;
  }

  private writeCr(value: number): void {
    if (this.cr & F1_CR_LOCK) return; // a locked CR ignores writes; only KEYR opens it
    this.cr = (value & (F1_CR_WRITABLE | F1_CR_LOCK)) >>> 0;
    if (this.cr & F1_CR_STRT) {
      this.cr &= ~F1_CR_STRT;
      if (this.cr & F1_CR_MER) this.massErase();
      else if (this.cr & F1_CR_PER) this.pageErase();
    }
  }

  private pageErase(): void {
    const offset = (this.ar >>> 0) - this.profile.flashBase;
    const page = offset >= 0 && offset < this.flash.size ? unitIndexAt(this.profile.units, offset) : -1;
    if (page < 0) {
      this.sr |= F1_SR_EOP; // an address outside the array erases nothing
      return;
    }
    if (this.pageProtected(page)) {
      this.sr |= F1_SR_WRPRTERR;
      return;
    }
    const u = this.profile.units[page]!;
    this.flash.eraseRange(u.offset, u.size);
    this.sr |= F1_SR_EOP;
  }

  private massErase(): void {
    if (this.wrpr !== 0xffffffff) {
      this.sr |= F1_SR_WRPRTERR;
      return;
    }
    this.flash.eraseRange(0, this.flash.size);
    this.sr |= F1_SR_EOP;
  }

  program(offset: number, size: number, value: number): BusOk {
    if (!(this.cr & F1_CR_PG) || this.cr & F1_CR_LOCK) return true; // plain writes to flash are ignored
    if (size !== 2 || offset & 1) return false; // RM0008: only half-word programming, else bus error
    const r = this.programCell(offset, 2, value);
    if (r === 'protected') this.sr |= F1_SR_WRPRTERR;
    else if (r === 'not-erased') this.sr |= F1_SR_PGERR;
    else this.sr = (this.sr | F1_SR_EOP) & ~F1_SR_BSY;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// STM32F4 FLASH at 0x40023C00: ACR 0x00, KEYR 0x04, OPTKEYR 0x08, SR 0x0C, CR 0x10, OPTCR 0x14.
const F4_SR_EOP = 1 << 0;
const F4_SR_OPERR = 1 << 1;
const F4_SR_WRPERR = 1 << 4;
const F4_SR_PGAERR = 1 << 5;
const F4_SR_PGPERR = 1 << 6;
const F4_SR_PGSERR = 1 << 7;
const F4_SR_W1C = F4_SR_EOP | F4_SR_OPERR | F4_SR_WRPERR | F4_SR_PGAERR | F4_SR_PGPERR | F4_SR_PGSERR;
const F4_CR_PG = 1 << 0;
const F4_CR_SER = 1 << 1;
const F4_CR_MER = 1 << 2;
const F4_CR_STRT = 1 << 16;
const F4_CR_EOPIE = 1 << 24;
const F4_CR_LOCK = 1 << 31;
const F4_CR_WRITABLE = 0x0301_03ff; // PG SER MER SNB PSIZE STRT EOPIE ERRIE (and LOCK, handled apart)
const F4_OPTCR_RESET = 0x0fffaaed; // nWRP all set, RDP level 0 (0xAA), OPTLOCK

export class F4FlashInterface implements FlashInterface {
  private acr = 0;
  private sr = 0;
  private cr = F4_CR_LOCK;
  private optcr = F4_OPTCR_RESET;
  private keyStage = 0;
  private lockedOut = false;
  private optKeyStage = 0;

  constructor(
    private readonly flash: FlashArray,
    private readonly profile: TargetProfile,
  ) {}

  get locked(): boolean {
    return (this.cr & F4_CR_LOCK) !== 0;
  }

  reset(): void {
    this.acr = 0;
    this.sr = 0;
    this.cr = F4_CR_LOCK;
    this.optcr = (this.optcr & 0x0fffffec) | 1; // option bytes persist; OPTLOCK comes back
    this.keyStage = 0;
    this.optKeyStage = 0;
    this.lockedOut = false;
  }

  setWriteProtected(sectors: readonly number[]): void {
    let nwrp = 0xfff;
    for (const s of sectors) nwrp &= ~(1 << s);
    this.optcr = ((this.optcr & ~0x0fff0000) | (nwrp << 16)) >>> 0;
  }

  private sectorProtected(sector: number): boolean {
    return ((this.optcr >>> 16) & (1 << sector)) === 0;
  }

  unitProtected(sector: number): boolean {
    return this.sectorProtected(sector);
  }

  programCell(offset: number, size: number, value: number): CellResult {
    if (this.sectorProtected(unitIndexAt(this.profile.units, offset))) return 'protected';
    this.flash.program(offset, size, value);
    return 'ok';
  }

  readReg(offset: number): number {
    switch (offset) {
      case 0x00:
        return this.acr;
      case 0x0c:
        return this.sr;
      case 0x10:
        return this.cr >>> 0;
      case 0x14:
        return this.optcr >>> 0;
      default:
        return 0;
    }
  }

  writeReg(offset: number, value: number): BusOk {
    switch (offset) {
      case 0x00:
        this.acr = value & 0x1f0f;
        return true;
      case 0x04:
        return this.writeKey(value >>> 0);
      case 0x08:
        return this.writeOptKey(value >>> 0);
      case 0x0c:
        this.sr &= ~(value & F4_SR_W1C);
        return true;
      case 0x10:
        this.writeCr(value >>> 0);
        return true;
      case 0x14:
        if (!(this.optcr & 1)) this.optcr = (value & 0x0fffffef) >>> 0; // OPTSTRT applies at once
        return true;
      default:
        return true;
    }
  }

  // RM0090 §3.5.1: "any wrong sequence will return a bus error and lock up the FLASH_CR register until the
  // next reset". Writing keys to an unlocked CR is a wrong sequence too.
  private writeKey(value: number): BusOk {
    if (this.lockedOut || !(this.cr & F4_CR_LOCK)) {
      this.lockedOut = true;
      this.cr |= F4_CR_LOCK;
      return false;
    }
    if (this.keyStage === 0 && value === KEY1) {
      this.keyStage = 1;
      return true;
    }
    if (this.keyStage === 1 && value === KEY2) {
      this.keyStage = 0;
      this.cr &= ~F4_CR_LOCK;
      return true;
    }
    this.keyStage = 0;
    this.lockedOut = true;
    return false;
  }

  private writeOptKey(value: number): BusOk {
    if (this.optKeyStage === 0 && value === OPTKEY1_F4) {
      this.optKeyStage = 1;
      return true;
    }
    if (this.optKeyStage === 1 && value === OPTKEY2_F4) {
      this.optKeyStage = 0;
      this.optcr &= ~1;
      return true;
    }
    this.optKeyStage = 0;
    return false;
  }

  private writeCr(value: number): void {
    if (this.cr & F4_CR_LOCK) return;
    this.cr = ((value & F4_CR_WRITABLE) | (value & F4_CR_LOCK)) >>> 0;
    if (!(this.cr & F4_CR_STRT)) return;
    this.cr = (this.cr & ~F4_CR_STRT) >>> 0;
    const ser = (this.cr & F4_CR_SER) !== 0;
    const mer = (this.cr & F4_CR_MER) !== 0;
    if (ser === mer || this.cr & F4_CR_PG) {
      this.sr |= F4_SR_PGSERR; // STRT needs exactly one erase mode
      return;
    }
    if (mer) {
      for (let s = 0; s < this.profile.units.length; s++) {
        if (this.sectorProtected(s)) {
          this.sr |= F4_SR_WRPERR;
          return;
        }
      }
      this.flash.eraseRange(0, this.flash.size);
    } else {
      const snb = (this.cr >>> 3) & 0xf;
      const sector = this.profile.units[snb];
      if (!sector) {
        this.sr |= F4_SR_PGSERR;
        return;
      }
      if (this.sectorProtected(snb)) {
        this.sr |= F4_SR_WRPERR;
        return;
      }
      this.flash.eraseRange(sector.offset, sector.size);
    }
    if (this.cr & F4_CR_EOPIE) this.sr |= F4_SR_EOP;
  }

  program(offset: number, size: number, value: number): BusOk {
    const cr = this.cr;
    if (cr & F4_CR_LOCK || !(cr & F4_CR_PG) || cr & (F4_CR_SER | F4_CR_MER)) {
      this.sr |= F4_SR_PGSERR; // a write into flash outside a program sequence
      return true;
    }
    const psizeBytes = 1 << ((cr >>> 8) & 3);
    if (size !== psizeBytes) {
      this.sr |= F4_SR_PGPERR;
      return true;
    }
    if (offset & (size - 1)) {
      this.sr |= F4_SR_PGAERR;
      return true;
    }
    if (this.programCell(offset, size, value) === 'protected') {
      this.sr |= F4_SR_WRPERR;
      return true;
    }
    if (cr & F4_CR_EOPIE) this.sr |= F4_SR_EOP;
    return true;
  }
}

export function createFlashInterface(flash: FlashArray, profile: TargetProfile): FlashInterface {
  return profile.name === 'stm32f1x' ? new F1FlashInterface(flash, profile) : new F4FlashInterface(flash, profile);
}
