// Typed QuecThing commands (protocol §2) and decoded events (§3) on top of an AtPort. Each method sends
// exactly the command text of Quectel's documentation, so the TX side of a transcript reads like the
// SOTA example, and checks the answer's shape: a malformed answer is a ProtocolError naming the station.
import { AtCommandError, AtResponseError, Emitter } from '../at/index.ts';
import type { Answered, AtPort, AtResponse, CommandOptions } from '../at/index.ts';
import { ConfigError } from '../errors.ts';
import { EventCursor } from './cursor.ts';
import type { CursorSource } from './cursor.ts';
import { parseModuleEvent } from './events.ts';
import type { ModuleEvent } from './events.ts';
import { afterPrefix, fieldValues, quote, splitFields } from './fields.ts';

/** AT+QIOTUPDATE actions (protocol §2.6). */
export const UpdateAction = {
  refuse: 0,
  confirm: 1,
  nextPiece: 2,
  updating: 3,
} as const;
export type UpdateAction = (typeof UpdateAction)[keyof typeof UpdateAction];

/** AT+QIOTREG modes: 0 deregister, 1 connect now (reverts to 0 at boot), 2 connect at every boot. */
export type RegistrationMode = 0 | 1 | 2;

export const QIOT_STATES = [
  'uninitialised',
  'initialised',
  'authenticating',
  'authenticated',
  'authentication failed',
  'registering',
  'registered, waiting to subscribe',
  'registration failed',
  'subscribed',
  'subscription failed',
  'deregistering',
  'deregistered',
  'deregistration failed',
] as const;

export interface QiotState {
  state: number;
  /** From §2.3; undefined for a state no source documents. */
  name: (typeof QIOT_STATES)[number] | undefined;
}

export interface ProductInfo {
  productKey: string;
  productSecret: string;
  /** Authentication protocol version, when the module reports it. */
  authVersion: string | undefined;
}

export interface DeviceKey {
  deviceKey: string;
  /** Empty when the module holds no DeviceSecret for the custom DeviceKey. */
  deviceSecret: string;
}

export interface McuVersion {
  component: string;
  version: string;
}

export interface OtaBlock {
  /** Offset the module says the data starts at. */
  start: number;
  data: Buffer;
}

export interface QuecThingOptions {
  /** Timeout of an AT+QIOTOTARD read (header, data, OK); default 5000 ms. */
  readTimeoutMs?: number;
  /** Timeout of AT+CFUN; modules take seconds to change functionality; default 15000 ms. */
  cfunTimeoutMs?: number;
}

type CallOptions = Pick<CommandOptions, 'timeoutMs' | 'signal'>;

export type QuecThingEvents = { event: [ModuleEvent] };

export class QuecThing extends Emitter<QuecThingEvents> {
  private readonly readTimeoutMs: number;
  private readonly cfunTimeoutMs: number;
  private readonly source: CursorSource;
  private readonly detach: () => void;

  constructor(
    readonly port: AtPort,
    opts: QuecThingOptions = {},
  ) {
    super();
    this.readTimeoutMs = opts.readTimeoutMs ?? 5000;
    this.cfunTimeoutMs = opts.cfunTimeoutMs ?? 15_000;
    this.detach = port.on('urc', (u) => this.emit('event', parseModuleEvent(u.line, u.data)));
    this.source = {
      station: port.station,
      portPath: port.path,
      subscribe: (fn) => this.on('event', fn),
      onDisconnect: (fn) => port.on('disconnected', fn),
    };
  }

  /** Stops decoding the port's URCs (the port itself stays open: it belongs to the station). */
  dispose(): void {
    this.detach();
  }

  get station(): string {
    return this.port.station;
  }

  /**
   * A cursor over module events that buffers from now on. Arm it before sending the command whose
   * events you will wait for: `const c = qt.events(); await qt.otaRequest(); await c.next(isPlan, …)`.
   */
  events(limit?: number): EventCursor {
    return new EventCursor(this.source, limit);
  }

  // --- Basic module commands -------------------------------------------------------------------------

  async at(o: CallOptions = {}): Promise<void> {
    await this.port.command('AT', o);
  }

  /** ATE1/ATE0. Not saved on some modules: set it again after every reboot. */
  async setEcho(on: boolean, o: CallOptions = {}): Promise<void> {
    await this.port.command(on ? 'ATE1' : 'ATE0', o);
  }

  /** ATI: manufacturer, model and revision lines. */
  async identify(o: CallOptions = {}): Promise<{ manufacturer: string; model: string; revision: string | undefined; lines: string[] }> {
    const r = await this.port.command('ATI', { ...o, prefix: 'all', expected: 'manufacturer, model, "Revision: …" lines then OK' });
    if (r.lines.length < 2) throw this.shapeError(r, 'at least a manufacturer and a model line');
    const rev = r.lines.find((l) => l.startsWith('Revision:'));
    return { manufacturer: r.lines[0]!, model: r.lines[1]!, revision: rev?.slice(9).trim(), lines: r.lines };
  }

  /** AT+QGMR: the module firmware revision. */
  async firmwareRevision(o: CallOptions = {}): Promise<string> {
    const r = await this.port.command('AT+QGMR', { ...o, prefix: 'all', expected: 'the revision line then OK' });
    if (r.lines.length !== 1) throw this.shapeError(r, 'exactly one revision line');
    return r.lines[0]!;
  }

  /** AT+GSN: the IMEI (the default QuecThing DeviceKey on cellular modules). */
  async imei(o: CallOptions = {}): Promise<string> {
    const r = await this.port.command('AT+GSN', { ...o, prefix: 'all', expected: 'a 15-digit IMEI then OK' });
    const imei = r.lines[0];
    if (r.lines.length !== 1 || !/^\d{14,17}$/.test(imei!)) throw this.shapeError(r, 'a 15-digit IMEI');
    return imei!;
  }

  /** AT+CFUN=<fun>[,1]: 0 minimum, 1 full, 4 airplane (drops the network, a fault action). */
  async setFunctionality(fun: 0 | 1 | 4, reset = false, o: CallOptions = {}): Promise<void> {
    await this.port.command(`AT+CFUN=${fun}${reset ? ',1' : ''}`, { timeoutMs: this.cfunTimeoutMs, ...o });
  }

  async functionality(o: CallOptions = {}): Promise<number> {
    const r = await this.port.command('AT+CFUN?', { ...o, prefix: '+CFUN:' });
    return this.singleInt(r, '+CFUN:');
  }

  /** AT+CSQ: rssi 0–31 (99 unknown), ber 0–7 (99 unknown); dBm = −113 + 2·rssi. */
  async signalQuality(o: CallOptions = {}): Promise<{ rssi: number; ber: number; dbm: number | undefined }> {
    const r = await this.port.command('AT+CSQ', { ...o, prefix: '+CSQ:' });
    const v = this.values(r, '+CSQ:');
    const [rssi, ber] = v;
    if (v.length !== 2 || typeof rssi !== 'number' || typeof ber !== 'number') throw this.shapeError(r, '+CSQ: <rssi>,<ber>');
    return { rssi, ber, dbm: rssi === 99 ? undefined : -113 + 2 * rssi };
  }

  // --- QuecThing configuration -----------------------------------------------------------------------

  /** Only while disconnected (QIOTREG=0); the secret is masked in the transcript and in errors. */
  async setProductInfo(productKey: string, productSecret: string, o: CallOptions = {}): Promise<void> {
    const command = `AT+QIOTCFG="productinfo",${this.str(productKey)},${this.str(productSecret, 'the ProductSecret')}`;
    this.port.addSecret(productSecret);
    await this.port.command(command, o);
  }

  async productInfo(o: CallOptions = {}): Promise<ProductInfo> {
    const r = await this.port.command('AT+QIOTCFG="productinfo"', { ...o, prefix: '+QIOTCFG:' });
    const f = r.lines.length === 1 ? splitFields(afterPrefix(r.lines[0]!, '+QIOTCFG:')!) : [];
    if (f.length < 3 || f[0]!.text !== 'productinfo') {
      // A malformed answer may still hold the secret where the mask cannot recognise it.
      throw this.shapeError({ ...r, lines: [`${r.lines.length} line(s), withheld: they may contain the ProductSecret`] }, '+QIOTCFG: "productinfo","<pk>","<ps>"[,"<ver>"]');
    }
    this.port.addSecret(f[2]!.text);
    return { productKey: f[1]!.text, productSecret: f[2]!.text, authVersion: f[3]?.text };
  }

  /**
   * AT+QIOTCFG="dk_ds","<dk>"[,"<ds>"]: a custom DeviceKey (≤ 16 alphanumerics in SDK 2.9.0) and its
   * DeviceSecret (≤ 32); only while disconnected. The secret is masked in the transcript and in errors.
   */
  async setDeviceKey(deviceKey: string, deviceSecret?: string, o: CallOptions = {}): Promise<void> {
    const ds = deviceSecret === undefined ? '' : `,${this.str(deviceSecret, 'the DeviceSecret')}`;
    if (deviceSecret) this.port.addSecret(deviceSecret);
    await this.port.command(`AT+QIOTCFG="dk_ds",${this.str(deviceKey)}${ds}`, o);
  }

  /** AT+QIOTCFG="dk_ds": the module answers ERROR unless the DeviceKey was customised (§2.1). */
  async deviceKey(o: CallOptions = {}): Promise<DeviceKey> {
    const r = await this.port.command('AT+QIOTCFG="dk_ds"', { ...o, prefix: '+QIOTCFG:' });
    const f = r.lines.length === 1 ? splitFields(afterPrefix(r.lines[0]!, '+QIOTCFG:')!) : [];
    if (f.length < 2 || f.length > 3 || f[0]!.text !== 'dk_ds') {
      throw this.shapeError({ ...r, lines: [`${r.lines.length} line(s), withheld: they may contain the DeviceSecret`] }, '+QIOTCFG: "dk_ds","<dk>","<ds>"');
    }
    const deviceSecret = f[2]?.text ?? '';
    if (deviceSecret) this.port.addSecret(deviceSecret);
    return { deviceKey: f[1]!.text, deviceSecret };
  }

  /** `type` 1 = MQTT (cellular). */
  async setServer(type: number, url: string, o: CallOptions = {}): Promise<void> {
    await this.port.command(`AT+QIOTCFG="server",${type},${this.str(url)}`, o);
  }

  async server(o: CallOptions = {}): Promise<{ type: number; url: string }> {
    const r = await this.port.command('AT+QIOTCFG="server"', { ...o, prefix: '+QIOTCFG:' });
    const f = this.fields(r, '+QIOTCFG:');
    if (f.length !== 3 || f[0]!.text !== 'server' || !/^\d+$/.test(f[1]!.text)) throw this.shapeError(r, '+QIOTCFG: "server",<type>,"<url>"');
    return { type: Number(f[1]!.text), url: f[2]!.text };
  }

  /** AT+QIOTREG=<mode>; the connection events (2,10200 and 3,10200) follow as URCs. */
  async register(mode: RegistrationMode, o: CallOptions = {}): Promise<void> {
    await this.port.command(`AT+QIOTREG=${mode}`, o);
  }

  async registration(o: CallOptions = {}): Promise<number> {
    const r = await this.port.command('AT+QIOTREG?', { ...o, prefix: '+QIOTREG:' });
    return this.singleInt(r, '+QIOTREG:');
  }

  /** AT+QIOTSTATE?: 8 means subscribed and ready. */
  async state(o: CallOptions = {}): Promise<QiotState> {
    const r = await this.port.command('AT+QIOTSTATE?', { ...o, prefix: '+QIOTSTATE:' });
    const state = this.singleInt(r, '+QIOTSTATE:');
    return { state, name: QIOT_STATES[state] };
  }

  /**
   * AT+QURCCFG="urcport": the port URCs go to (`usbat`, `uart1`, `all` …; protocol §6). An MCU on the main
   * UART sees no +QIOTEVT unless it is `uart1` or `all`. Read-only: dut mode observes what the MCU set.
   */
  async urcPort(o: CallOptions = {}): Promise<string> {
    const r = await this.port.command('AT+QURCCFG="urcport"', { ...o, prefix: '+QURCCFG:' });
    const line = r.lines.find((l) => l.startsWith('+QURCCFG:'));
    const f = line ? splitFields(afterPrefix(line, '+QURCCFG:')!) : [];
    if (f.length < 2 || f[0]!.text !== 'urcport') throw this.shapeError(r, '+QURCCFG: "urcport","<port>"');
    return f[1]!.text;
  }

  /** AT+QIOTINFO?: `+QIOTINFO: <item>,<value>` lines (the SDK version among them). */
  async info(o: CallOptions = {}): Promise<{ item: string; value: string }[]> {
    const r = await this.port.command('AT+QIOTINFO?', { ...o, prefix: '+QIOTINFO:' });
    return r.lines.map((l) => {
      const f = splitFields(afterPrefix(l, '+QIOTINFO:')!);
      return { item: f[0]?.text ?? '', value: f.slice(1).map((x) => x.text).join(',') };
    });
  }

  // --- MCU versions --------------------------------------------------------------------------------

  /**
   * AT+QIOTMCUVER="<component>","<version>". While an OTA of that component is active this settles it
   * (10705 if the version is the target, else 10706): never re-announce an old version mid-upgrade.
   */
  async setMcuVersion(component: string, version: string, o: CallOptions = {}): Promise<void> {
    await this.port.command(`AT+QIOTMCUVER=${this.str(component)},${this.str(version)}`, o);
  }

  /** AT+QIOTMCUVER?: every component and its version. */
  async mcuVersions(o: CallOptions = {}): Promise<McuVersion[]> {
    const r = await this.port.command('AT+QIOTMCUVER?', { ...o, prefix: '+QIOTMCUVER:' });
    return r.lines.map((l) => this.mcuVersionLine(r, l));
  }

  /**
   * AT+QIOTMCUVER="<component>": its version, or undefined for a component the module does not know.
   * What a module answers then is undocumented: protocol §2.4 shows only the found case, the SDK's lookup
   * (Ql_iotConfigGetMcuVersion) just returns nothing, and the AT glue that turns that into an answer is not
   * public (§9). A bare OK and ERROR (the simulator's answer) are both plausible, so both are accepted; an
   * ERROR means "unknown" only once the whole list (AT+QIOTMCUVER?) confirms the component is absent, since
   * ERROR is also how a module refuses a command for any other reason.
   */
  async mcuVersion(component: string, o: CallOptions = {}): Promise<string | undefined> {
    const command = `AT+QIOTMCUVER=${this.str(component)}`;
    let r: AtResponse;
    try {
      r = await this.port.command(command, { ...o, prefix: '+QIOTMCUVER:' });
    } catch (err) {
      if (!(err instanceof AtCommandError) || err.final.result !== 'ERROR') throw err;
      const all = await this.mcuVersions(o).catch(() => undefined);
      if (all && !all.some((v) => v.component === component)) return undefined;
      throw err;
    }
    if (r.lines.length === 0) return undefined;
    const v = this.mcuVersionLine(r, r.lines[0]!);
    if (v.component !== component) throw this.shapeError(r, `+QIOTMCUVER: "${component}","<version>"`);
    return v.version;
  }

  // --- OTA ---------------------------------------------------------------------------------------------

  /**
   * AT+QIOTOTAREQ: `sha256: true` sends `=1` (10701 then carries the SHA-256; sticky in the module),
   * `false` sends `=0`, omitted sends the bare command. The plan arrives later as 7,10700.
   */
  async otaRequest(opts: { sha256?: boolean } & CallOptions = {}): Promise<void> {
    const { sha256, ...o } = opts;
    await this.port.command(sha256 === undefined ? 'AT+QIOTOTAREQ' : `AT+QIOTOTAREQ=${sha256 ? 1 : 0}`, o);
  }

  /** AT+QIOTUPDATE=<action>: 0 refuse, 1 confirm, 2 next piece, 3 all pieces read (→ 10704). */
  async otaUpdate(action: UpdateAction, o: CallOptions = {}): Promise<void> {
    await this.port.command(`AT+QIOTUPDATE=${action}`, o);
  }

  /**
   * AT+QIOTOTARD=<start>,<length>: raw bytes of the stored piece. The module may return fewer bytes than
   * asked (the end of a piece); it must return data from `start`, and never more than asked.
   */
  async otaRead(start: number, length: number, o: CallOptions = {}): Promise<OtaBlock> {
    const command = otaReadCommand(start, length);
    return this.otaBlock(await this.port.command(command, this.otaReadOptions(start, length, o)), start, length);
  }

  /**
   * AT+QIOTOTARD=<start>,<length> read ahead: queued now, behind the read of `after`, and sent the moment
   * that read ends with all the bytes it asked for, if `when()` (asked then) agrees. Resolves undefined
   * when it was not sent: the read before it failed or came back short, or `when()` said no (a fault due
   * between the two blocks). Saves the caller's own turnaround between two blocks; the module still sees
   * one command at a time.
   */
  async otaReadAfter(after: { start: number; length: number }, start: number, length: number, o: CallOptions & { when?: () => boolean } = {}): Promise<OtaBlock | undefined> {
    const command = otaReadCommand(start, length);
    const previous = otaReadCommand(after.start, after.length);
    const { when, ...call } = o;
    // The usual header, compared as a string: this runs between the OK and the next command leaving.
    const usual = `+QIOTOTARD: ${after.start},${after.length}`;
    const follows = (a: Answered | undefined): boolean => {
      const block = a?.command === previous ? a.response?.block : undefined;
      if (!block || block.data.length !== after.length) return false;
      if (block.header !== usual) {
        const [gotStart, gotLength] = fieldValues(afterPrefix(block.header, '+QIOTOTARD:') ?? '');
        if (gotStart !== after.start || gotLength !== after.length) return false;
      }
      return when?.() ?? true;
    };
    const r = await this.port.commandAfter(command, follows, this.otaReadOptions(start, length, call));
    return r === undefined ? undefined : this.otaBlock(r, start, length);
  }

  private otaReadOptions(start: number, length: number, o: CallOptions): CommandOptions {
    return { timeoutMs: this.readTimeoutMs, ...o, prefix: '+QIOTOTARD:', binary: true, expected: `+QIOTOTARD: ${start},<n ≤ ${length}> then <n> bytes then OK` };
  }

  private otaBlock(r: AtResponse, start: number, length: number): OtaBlock {
    const block = r.block!;
    const [gotStart, gotLength] = fieldValues(afterPrefix(block.header, '+QIOTOTARD:')!);
    if (gotStart !== start || gotLength !== block.data.length || block.data.length > length || block.data.length === 0) {
      throw new AtResponseError({
        station: this.station,
        port: this.port.path,
        command: r.command,
        expected: `+QIOTOTARD: ${start},<n> with 0 < n ≤ ${length}`,
        seen: `${block.header} with ${block.data.length} bytes`,
        lastLines: [block.header],
      });
    }
    return { start: gotStart, data: block.data };
  }

  // --- helpers -----------------------------------------------------------------------------------------

  /** @param secretName set for a secret: the message names it instead of showing it */
  private str(value: string, secretName?: string): string {
    try {
      return quote(value);
    } catch (err) {
      const message = secretName ? `cannot send ${secretName} as an AT string parameter (contains a quote or a control character)` : (err as Error).message;
      throw new ConfigError(message, { station: this.station });
    }
  }

  private fields(r: AtResponse, prefix: string) {
    if (r.lines.length !== 1) throw this.shapeError(r, `exactly one ${prefix} line`);
    return splitFields(afterPrefix(r.lines[0]!, prefix)!);
  }

  private values(r: AtResponse, prefix: string) {
    if (r.lines.length !== 1) throw this.shapeError(r, `exactly one ${prefix} line`);
    return fieldValues(afterPrefix(r.lines[0]!, prefix)!);
  }

  private singleInt(r: AtResponse, prefix: string): number {
    const v = this.values(r, prefix);
    if (v.length !== 1 || typeof v[0] !== 'number') throw this.shapeError(r, `${prefix} <n>`);
    return v[0];
  }

  private mcuVersionLine(r: AtResponse, line: string): McuVersion {
    const f = splitFields(afterPrefix(line, '+QIOTMCUVER:')!);
    if (f.length !== 2 || !f[0]!.quoted || !f[1]!.quoted) throw this.shapeError(r, '+QIOTMCUVER: "<component>","<version>"');
    return { component: f[0]!.text, version: f[1]!.text };
  }

  private shapeError(r: AtResponse, expected: string): AtResponseError {
    return new AtResponseError({
      station: this.station,
      port: this.port.path,
      command: this.port.mask(r.command),
      expected,
      seen: r.lines.length > 0 ? r.lines.map((l) => JSON.stringify(this.port.mask(l))).join(', ') : 'no information line',
      lastLines: r.lines.map((l) => this.port.mask(l)),
    });
  }
}

function otaReadCommand(start: number, length: number): string {
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(length) || length <= 0) {
    throw new RangeError(`AT+QIOTOTARD needs a start ≥ 0 and a length > 0, got ${start},${length}`);
  }
  return `AT+QIOTOTARD=${start},${length}`;
}
