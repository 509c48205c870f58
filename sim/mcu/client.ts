// The reference SOTA client, the application in slot A (docs/virtual-mcu.md §7): the MCU's side of the
// QuecThing dialogue (docs/protocol.md §5) on the module's main UART, with the download written
// into slot B through the MCU's own flash writes, checked (MD5, CRC, the image in slot B) and handed to the
// bootloader with a pending record. The planted application defects of §6 are branches here, selected by the
// running image's descriptor.
import { createHash, type Hash } from 'node:crypto';
import { decode } from '@ably/vcdiff-decoder';
import { CrcStream } from '../cloud/hash.ts';
import { AtDriver } from './at-driver.ts';
import { offsetOf, type Firmware } from './firmware.ts';
import { checkImage, Defect, readHeader, type ImageHeader } from './image.ts';
import { readRecord, writeRecord } from './record.ts';

export interface AppImage {
  header: ImageHeader;
  trial: boolean;
  defects: number;
  params: readonly number[];
}

/** What the application is doing, for the admin API. */
export interface AppStatus {
  state: 'starting' | 'self-test' | 'unconfirmed' | 'crashed' | 'connecting' | 'idle' | 'plan' | 'downloading' | 'installing' | 'stuck';
  reportedVersion: string | undefined;
  /** An image booted in trial confirmed itself (it is confirmed from the start otherwise). */
  confirmed: boolean;
  plan: { source: string; target: string } | undefined;
  download: { size: number; offset: number; pieceEnd: number } | undefined;
  moduleReboots: number;
}

interface Download {
  size: number;
  md5: string | undefined;
  crc: number | undefined;
  hash: Hash;
  crcStream: CrcStream;
  /** Next byte offset to read, absolute in the file. */
  offset: number | undefined;
  pieceEnd: number;
  /** Erase units of slot B erased for this download. */
  erased: Set<number>;
  /** A delta is kept in RAM and applied once it is whole. */
  delta: Uint8Array | undefined;
}

const RETRY_MS = 1_000;
const REGISTER_MS = 30_000;
const READ_TRIES = 3;

/** Splits a +QIOTEVT payload: quoted strings keep their commas. */
function fields(payload: string): string[] {
  const out: string[] = [];
  const re = /\s*("([^"]*)"|[^,]*)\s*(,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < payload.length && (m = re.exec(payload)) !== null) {
    out.push(m[2] ?? m[1]!.trim());
    if (m[3] === '') break;
  }
  return out;
}

export class Client {
  readonly status: AppStatus = { state: 'starting', reportedVersion: undefined, confirmed: false, plan: undefined, download: undefined, moduleReboots: 0 };
  private readonly at: AtDriver;
  private readonly component: string;
  /** The version this firmware believes it is (the wrong-version defect gets it wrong). */
  private readonly version: string;
  private dl: Download | undefined;
  private delta = false;

  constructor(
    private readonly fw: Firmware,
    private readonly image: AppImage,
  ) {
    this.at = new AtDriver(fw);
    this.component = image.header.component;
    this.version = this.has(Defect.wrongVersion) ? `${image.header.version}_x` : image.header.version;
  }

  private has(defect: number): boolean {
    return (this.image.defects & defect) !== 0;
  }

  private get mode(): AppStatus['state'] {
    return this.status.state;
  }

  private set mode(s: AppStatus['state']) {
    this.status.state = s;
  }

  async run(): Promise<void> {
    const { fw } = this;
    fw.console(`[app] ${this.component} ${this.version} start ${this.image.trial ? 'trial' : 'confirmed'}`);
    if (this.has(Defect.crashAtBoot)) {
      fw.console('[app] crash: HardFault at boot (invalid instruction in the startup code)');
      this.mode = 'crashed';
      return; // locked up in the fault handler; only the watchdog gets it out
    }
    if (this.image.trial) {
      this.mode = 'self-test';
      await fw.rt.sleep(fw.options.selfTestMs);
      if (this.has(Defect.neverConfirms)) {
        fw.console('[app] self-test failed');
        this.mode = 'unconfirmed';
        return; // waits for the watchdog, which the bootloader armed and nobody feeds
      }
      fw.console('[app] self-test ok');
      // Confirmed before the version report: a cut in between then leaves a confirmed image the module has
      // not heard of yet, never a reported one the bootloader reverts (docs/virtual-mcu.md §4).
      const view = readRecord(fw.view(fw.layout.flashBase, fw.layout.slotA.address - fw.layout.flashBase), fw.layout);
      await writeRecord(fw.flash, fw.layout, view, { state: 'confirmed', units: 0, crc: 0, length: 0 });
      fw.console('[app] confirmed');
    }
    this.status.confirmed = true;
    this.feedWatchdog();
    for (;;) {
      const inFlight = this.mode === 'plan' || this.mode === 'downloading' || this.mode === 'stuck';
      if (!inFlight) this.mode = 'connecting';
      if (!(await this.bringUp())) continue;
      if (!inFlight) this.mode = 'idle';
      await this.serve();
    }
  }

  private feedWatchdog(): void {
    this.fw.watchdogFeed();
    this.fw.rt.after(this.fw.options.watchdogMs / 4, () => this.feedWatchdog());
  }

  private async ok(line: string): Promise<boolean> {
    return (await this.at.command(line))?.final === 'OK';
  }

  /** Module up, echo off, URCs to this UART, registered, version reported, plan requested. */
  private async bringUp(): Promise<boolean> {
    const { fw, at } = this;
    // A module that is off or still booting does not answer: probe every second, and at once after its RDY.
    while ((await at.command('AT', 64, RETRY_MS))?.final !== 'OK') await fw.rt.until(() => at.urcs.includes('RDY'), RETRY_MS);
    at.takeUrc((u) => u === 'RDY');
    if (!(await this.ok('ATE0')) || !(await this.ok('AT+QURCCFG="urcport","uart1"'))) return false;
    const reg = await at.command('AT+QIOTREG?');
    const mode = Number(/\+QIOTREG: (\d+)/.exec(reg?.lines.join('\n') ?? '')?.[1] ?? -1);
    if (mode < 0) return false;
    if (mode === 0) {
      if (!(await this.ok(`AT+QIOTCFG="productinfo","${fw.options.productKey}","${fw.options.productSecret}"`))) return false;
      if (!(await this.ok('AT+QIOTREG=1'))) return false;
    }
    if (!(await this.registered())) return false;
    // With an OTA in flight (the module rebooted under it), the version is not announced again: the module
    // kept it, and announcing the old one would settle the OTA as failed (protocol §4.3, §10).
    if (this.mode !== 'connecting') return true;
    this.status.reportedVersion = this.version;
    if (!(await this.ok(`AT+QIOTMCUVER="${this.component}","${this.version}"`))) return false;
    return this.ok('AT+QIOTOTAREQ=1');
  }

  /** Waits for +QIOTEVT: 3,10200 or AT+QIOTSTATE? 8, bounded. */
  private async registered(): Promise<boolean> {
    const end = this.fw.rt.now() + REGISTER_MS;
    while (this.fw.rt.now() < end) {
      if (this.at.takeUrc((u) => u.startsWith('+QIOTEVT: 3,10200'))) return true;
      if (this.at.urcs.includes('RDY')) return false;
      const st = await this.at.command('AT+QIOTSTATE?');
      if (/\+QIOTSTATE: 8/.test(st?.lines.join('\n') ?? '')) return true;
      await this.fw.rt.until(() => this.at.urcs.some((u) => u.startsWith('+QIOTEVT: 3,10200') || u === 'RDY'), RETRY_MS);
    }
    return false;
  }

  /** Follows the OTA dialogue until the module reboots (RDY). */
  private async serve(): Promise<void> {
    for (;;) {
      const urc = await this.at.nextUrc(60_000);
      if (urc === undefined) continue;
      if (urc === 'RDY') return this.moduleRebooted();
      const m = /^\+QIOTEVT: (\d+),(\d+)(?:,(.*))?$/.exec(urc);
      if (!m || m[1] !== '7') continue;
      const args = fields(m[3] ?? '');
      switch (m[2]) {
        case '10700':
          await this.onPlan(args);
          break;
        case '10701':
          this.onFileInfo(args);
          break;
        case '10703':
          await this.onPiece(args);
          break;
        case '10705':
          if (this.mode !== 'stuck') this.idle();
          break;
        case '10706':
          this.on10706();
          break;
      }
    }
  }

  private idle(): void {
    this.mode = 'idle';
    this.status.plan = undefined;
    this.status.download = undefined;
    this.dl = undefined;
  }

  private moduleRebooted(): void {
    this.status.moduleReboots++;
    // §4.4: a download does not survive the module's reboot; the module announces it again from 0. The
    // no-restart defect keeps its read position.
    if (!this.has(Defect.noRestart)) this.dl = undefined;
    if (this.mode === 'downloading' && !this.dl) this.mode = 'plan';
  }

  private on10706(): void {
    if (this.has(Defect.ignores10706)) {
      if (this.mode !== 'idle') this.mode = 'stuck';
      return;
    }
    this.fw.console('[app] 10706: upgrade failed');
    this.idle();
  }

  private async onPlan(args: string[]): Promise<void> {
    const [component, source = '', target = '', battery = '0', signal = '0', space = '0'] = args;
    if (component !== this.component || (this.mode !== 'idle' && this.mode !== 'plan')) return;
    const why = await this.refusal(source, Number(battery), Number(signal), Number(space));
    const plan = `${source}->${target}`;
    if (why) {
      await this.at.command('AT+QIOTUPDATE=0');
      this.fw.console(`[app] plan ${plan} refused: ${why}`);
      this.idle();
      return;
    }
    if (!(await this.ok('AT+QIOTUPDATE=1'))) return;
    this.fw.console(`[app] plan ${plan} accepted`);
    this.mode = 'plan';
    this.status.plan = { source, target };
    this.delta = source !== '';
  }

  /** Why this plan is refused, or undefined (the module does not enforce the limits, §5). */
  private async refusal(source: string, batteryLimit: number, minSignal: number, space: number): Promise<string | undefined> {
    const { batteryPercent } = this.fw.options;
    if (batteryLimit > 0 && batteryPercent < batteryLimit) return `battery ${batteryPercent}% below ${batteryLimit}%`;
    if (minSignal !== 0) {
      const csq = /\+CSQ: (\d+),/.exec((await this.at.command('AT+CSQ'))?.lines.join('\n') ?? '');
      const rssi = csq ? Number(csq[1]) : 99;
      if (rssi === 99) return 'no signal reading (CSQ 99)';
      const dbm = -113 + 2 * rssi;
      if (dbm < minSignal) return `signal ${dbm} dBm below ${minSignal} dBm`;
    }
    if (space > this.fw.layout.slotB.size) return `${space} bytes do not fit slot B (${this.fw.layout.slotB.size})`;
    if (source !== '' && source !== this.version) return `delta from ${source}, running ${this.version}`;
    return undefined;
  }

  private onFileInfo(args: string[]): void {
    const [component, size, md5, crc] = args;
    if (component !== this.component || (this.mode !== 'plan' && this.mode !== 'downloading')) return;
    const kept = this.has(Defect.noRestart) ? this.dl?.offset : undefined;
    this.dl = this.freshDownload(Number(size), md5, Number(crc));
    this.dl.offset = kept;
    this.mode = 'downloading';
  }

  private freshDownload(size: number, md5: string | undefined, crc: number | undefined): Download {
    return {
      size,
      md5,
      crc,
      hash: createHash('md5'),
      crcStream: new CrcStream(this.fw.options.crcAlgorithm),
      offset: undefined,
      pieceEnd: 0,
      erased: new Set(),
      delta: this.delta ? new Uint8Array(size) : undefined,
    };
  }

  private async onPiece(args: string[]): Promise<void> {
    const [component, total, start, length] = args.map((a, i) => (i === 0 ? a : Number(a))) as [string, number, number, number];
    if (component !== this.component || (this.mode !== 'plan' && this.mode !== 'downloading')) return;
    const { fw } = this;
    // Without a 10701 since the last reboot there is no MD5 to check against: the download fails at the end.
    this.dl ??= this.freshDownload(total, undefined, undefined);
    const dl = this.dl;
    this.mode = 'downloading';
    fw.console(`[app] piece ${start}+${length} of ${total}`);
    const keep = this.has(Defect.noRestart) && dl.offset !== undefined && dl.offset >= start && dl.offset < start + length;
    if (!keep) {
      if (start === 0 && dl.offset !== undefined) Object.assign(dl, this.freshDownload(dl.size, dl.md5, dl.crc));
      dl.offset = start;
    }
    dl.pieceEnd = start + length;
    const block = fw.options.blockSize;
    while (dl.offset! < dl.pieceEnd) {
      // A reboot or a failure of the module ends this piece; serve() takes the URC next.
      if (this.at.urcs.some((u) => u === 'RDY' || u.startsWith('+QIOTEVT: 7,10706'))) return;
      const off = dl.offset!;
      this.status.download = { size: dl.size, offset: off, pieceEnd: dl.pieceEnd };
      const data = await this.readBlock(off, Math.min(block, dl.pieceEnd - off));
      if (!data) {
        if (this.at.urcs.some((u) => u === 'RDY' || u.startsWith('+QIOTEVT: 7,10706'))) return;
        return this.reject(`AT+QIOTOTARD=${off},${block} failed ${READ_TRIES} times`);
      }
      fw.console(`[app] block ${off}+${data.length}`);
      dl.hash.update(data);
      dl.crcStream.update(data);
      if (dl.delta) dl.delta.set(data.subarray(0, Math.max(0, dl.delta.length - off)), off);
      else {
        const err = await this.writeSlotB(dl, off, data);
        if (err) return this.reject(err);
      }
      dl.offset = off + data.length;
    }
    this.status.download = { size: dl.size, offset: dl.offset!, pieceEnd: dl.pieceEnd };
    if (dl.pieceEnd < total) {
      if (!(await this.ok('AT+QIOTUPDATE=2'))) return this.reject('AT+QIOTUPDATE=2 refused');
      return;
    }
    await this.finish(dl);
  }

  private async readBlock(off: number, length: number): Promise<Buffer | undefined> {
    for (let i = 0; i < READ_TRIES; i++) {
      const r = await this.at.command(`AT+QIOTOTARD=${off},${length}`, length + 64);
      if (r?.final === 'OK' && r.data && r.data.length > 0) return r.data;
      if (this.at.urcs.some((u) => u === 'RDY' || u.startsWith('+QIOTEVT: 7,10706'))) return undefined;
      await this.fw.rt.sleep(RETRY_MS / 2);
    }
    return undefined;
  }

  /** The wrong-offset defect writes (and reads back) everything `params[0]` bytes further on. */
  private get skew(): number {
    return this.has(Defect.wrongOffset) ? this.image.params[0] || 4 : 0;
  }

  /** Programs download bytes at `off` of slot B, erasing each unit the first time this download reaches it. */
  private async writeSlotB(dl: Download, off: number, data: Uint8Array): Promise<string | undefined> {
    const { fw } = this;
    const slotB = fw.layout.slotB;
    const cell = fw.flash.cellSize;
    const at = slotB.address + off + this.skew;
    const padded = new Uint8Array(Math.ceil(data.length / cell) * cell).fill(0xff);
    padded.set(data);
    // An odd start (the wrong-offset defect with an odd parameter) still programs whole cells.
    const lead = (at - fw.layout.flashBase) % cell;
    const bytes = lead === 0 ? padded : Uint8Array.from([...new Uint8Array(lead).fill(0xff), ...padded, ...new Uint8Array(cell - lead).fill(0xff)]);
    const from = at - lead;
    if (from + bytes.length > slotB.address + slotB.size) return `block ${off}+${data.length} does not fit slot B`;
    for (let u = from - slotB.address - ((from - slotB.address) % fw.layout.swapUnit); u < from + bytes.length - slotB.address; u += fw.layout.swapUnit) {
      if (dl.erased.has(u)) continue;
      await fw.flash.erase(fw.flash.unitAt(offsetOf(fw, slotB.address + u)));
      dl.erased.add(u);
    }
    try {
      await fw.flash.program(offsetOf(fw, from), bytes);
    } catch (err) {
      return `flash write failed: ${(err as Error).message}`;
    }
    return undefined;
  }

  private async finish(dl: Download): Promise<void> {
    const { fw } = this;
    const checks = !this.has(Defect.skipMd5);
    if (checks) {
      const md5 = dl.hash.digest('hex');
      if (dl.md5 === undefined) return this.reject('no 10701 (MD5, CRC) for this download');
      if (md5 !== dl.md5.toLowerCase()) return this.reject(`md5 ${md5}, 10701 says ${dl.md5}`);
      const crc = dl.crcStream.value();
      if (dl.crc !== undefined && crc !== dl.crc >>> 0) return this.reject(`crc ${crc}, 10701 says ${dl.crc}`);
    }
    if (dl.delta) {
      const source = readHeader(fw.readRegion(fw.layout.slotA));
      if (!source) return this.reject('no image in slot A to apply the delta to');
      let target: Uint8Array;
      try {
        target = decode(dl.delta, fw.read(fw.layout.slotA.address, source.length));
      } catch (err) {
        return this.reject(`delta does not apply to slot A: ${(err as Error).message}`);
      }
      for (let off = 0; off < target.length; off += fw.layout.swapUnit) {
        const err = await this.writeSlotB(dl, off, target.subarray(off, off + fw.layout.swapUnit));
        if (err) return this.reject(err);
      }
    }
    const slotB = fw.read(fw.layout.slotB.address + this.skew, fw.layout.slotB.size - this.skew);
    const image = checkImage(slotB, { loadAddress: fw.layout.slotA.address, component: this.component });
    if (checks && !image.ok) return this.reject(`slot B: ${image.why}`);
    fw.console(`[app] download complete: ${checks ? 'md5 ok' : 'md5 not checked'}`);
    this.mode = 'installing';
    if (!(await this.ok('AT+QIOTUPDATE=3'))) return this.reject('AT+QIOTUPDATE=3 refused');
    const a = readHeader(fw.readRegion(fw.layout.slotA));
    const length = image.header?.length ?? dl.size;
    const units = Math.ceil(Math.min(fw.layout.slotB.size, Math.max(length, a?.length ?? 0)) / fw.layout.swapUnit);
    const view = readRecord(fw.view(fw.layout.flashBase, fw.layout.slotA.address - fw.layout.flashBase), fw.layout);
    await writeRecord(fw.flash, fw.layout, view, { state: 'pending', units, crc: image.header?.bodyCrc ?? 0, length });
    fw.console('[app] install pending, reset');
    fw.systemReset();
  }

  /** The download is refused: the module is told by the version this image runs (§4.3: 10706 follows). */
  private async reject(why: string): Promise<void> {
    this.fw.console(`[app] download rejected: ${why}`);
    this.dl = undefined;
    this.status.download = undefined;
    await this.at.command(`AT+QIOTMCUVER="${this.component}","${this.version}"`);
  }
}
