// The virtual Quectel module: the AT command set a SOTA flow uses, the QuecThing OTA state machine with its
// timers (docs/protocol.md §2, §4), power behaviour driven by the rails, and the MQTT side that talks
// to the Developer Center model. Two AT channels share the one state machine, as on a real module: the USB
// AT port (the rig's) and the main UART `uart1` (the MCU's). Each has its own line assembly and echo (ATE is
// per channel), a command is answered on the channel it came in on, RDY goes out on both, and URCs go where
// AT+QURCCFG="urcport" says (§6). Everything observable leaves through the channels' ports, already framed
// as on the wire.
import type { SimClock, SimTimer } from '../clock.ts';
import type { Rails } from '../rails.ts';
import type { Cloud } from '../cloud/cloud.ts';
import type { DeviceEndpoint, OtaStatus, PlanComponentMsg, Transfer, UrlMsg } from '../cloud/link.ts';
import { intArg, LineAssembler, parseArgs, parseCommand, strArg, type Arg, type ParsedCommand } from './at-line.ts';
import type { NvStore } from './nv.ts';

/** §4.1 states; the numbers are the §3.4 status codes. */
export const Ota = {
  IDLE: 0,
  RECEIVED_PLAN: 1,
  CONFIRMED: 2,
  REFUSED: 3,
  DOWNLOAD_START: 4,
  DOWNLOADING: 5,
  DOWNLOAD_ERROR: 6,
  DOWNLOAD_OK: 8,
  UPDATING: 9,
  SUCCESS: 11,
  FAIL: 12,
} as const;
export type OtaState = (typeof Ota)[keyof typeof Ota];

/** The module's AT channels: the USB AT port and the main UART (to the MCU). */
export type ChannelName = 'usbat' | 'uart1';
export const channelNames: readonly ChannelName[] = ['usbat', 'uart1'];

/** Where a channel's bytes go, before pacing. */
export interface ChannelPort {
  write(bytes: Buffer): void;
  /**
   * The echo of bytes just taken from the channel's input (they arrived at the line's rate, the last one now):
   * on a paced line it may overlap their arrival, as a module that echoes each character does. Default: write.
   */
  echo?(bytes: Buffer): void;
  /** Drops output not yet on the wire (power loss). */
  flush(): void;
}

/** AT+QURCCFG="urcport" values and the channels each reaches (usbmodem and uart2 have nothing attached). */
export const urcPorts = ['usbat', 'usbmodem', 'uart1', 'uart2', 'all'] as const;
export type UrcPort = (typeof urcPorts)[number];
const urcPortChannels: Record<string, readonly ChannelName[]> = { usbat: ['usbat'], uart1: ['uart1'], all: ['usbat', 'uart1'] };

interface Channel {
  readonly name: ChannelName;
  readonly port: ChannelPort;
  echo: boolean;
  readonly lines: LineAssembler;
}

const otaStateName = Object.fromEntries(Object.entries(Ota).map(([k, v]) => [v, k])) as Record<OtaState, string>;

export interface ModuleTimers {
  /** Confirm → URL wait (30 s). */
  urlWaitMs: number;
  /** DOWNLOAD_START without HTTP progress (5 s). */
  downloadStartMs: number;
  /** 10702 repeat while downloading (5 s). */
  downloadingNotifyMs: number;
  /** DOWNLOAD_OK read inactivity (60 s). */
  readInactivityMs: number;
  /** UPDATING → MCUVER wait (20 min). */
  updateWaitMs: number;
}

export interface ModuleOptions {
  imei: string;
  model: string;
  revision: string;
  sdkVersion: string;
  /** Power-on to RDY, protocol ms. */
  bootMs: number;
  /** QIOTREG=1/2 (or network back) to 2,10200, protocol ms. */
  connectMs: number;
  /** Flash the module can give to one piece (`useSpace` above this → multi-piece download). */
  freeSpace: number;
  timers: ModuleTimers;
  /** More consecutive download errors than this → 10706. */
  downloadErrorBudget: number;
  maxLineLength: number;
  /** Uncertain readings of the protocol doc (§9), each an option. */
  maxReadLength: number;
  oversizeRead: 'truncate' | 'error';
  readTrailer: string;
  wrongStateAnswer: string;
  event10707: 'flag0' | 'flag' | 'none';
  qindFotaEnd: 'none' | 'before' | 'after';
  bootstrapAuth: boolean;
  requestNeedsConnection: boolean;
  /**
   * Whether +QIOTEVT follows AT+QURCCFG="urcport" like the module's other URCs (on), or goes out on every
   * channel whatever urcport says (off). Which one real firmware does is not stated anywhere (§6, §9.8).
   */
  honourUrcPort: boolean;
  /** The baud rate AT+IPR? reports. */
  ipr: number;
  /** Log every command line and URC to stderr (secrets masked). */
  traceAt: boolean;
}

export const defaultTimers: ModuleTimers = {
  urlWaitMs: 30_000,
  downloadStartMs: 5_000,
  downloadingNotifyMs: 5_000,
  readInactivityMs: 60_000,
  updateWaitMs: 20 * 60_000,
};

export const defaultModuleOptions: Omit<ModuleOptions, 'imei'> = {
  model: 'EC200U',
  revision: 'EC200UCNAAR03A03M08',
  sdkVersion: '2.9.0',
  bootMs: 1000,
  connectMs: 300,
  freeSpace: 4 * 1024 * 1024,
  timers: defaultTimers,
  downloadErrorBudget: 5,
  maxLineLength: 1024,
  maxReadLength: 1024,
  oversizeRead: 'truncate',
  readTrailer: '\r\n\r\nOK\r\n',
  wrongStateAnswer: 'ERROR',
  event10707: 'flag0',
  qindFotaEnd: 'none',
  bootstrapAuth: true,
  requestNeedsConnection: true,
  honourUrcPort: true,
  ipr: 115200,
  traceAt: false,
};

type Conn = 'idle' | 'waiting-network' | 'connecting' | 'connected' | 'deregistered';

interface OtaRam {
  state: OtaState;
  planId: string | undefined;
  plan: PlanComponentMsg[];
  componentNo: string | undefined;
  targetVersion: string | undefined;
  url: UrlMsg | undefined;
  pieceStart: number;
  pieceSize: number;
  piece: Buffer | undefined;
  /** Reset only at 10705/10706 (and reboot): a later start shows 10702 instead of 10701. */
  downloadStarted: boolean;
  failCount: number;
  timer: SimTimer | undefined;
  notify: SimTimer | undefined;
  transfer: Transfer | undefined;
}

const freshOta = (): OtaRam => ({
  state: Ota.IDLE,
  planId: undefined,
  plan: [],
  componentNo: undefined,
  targetVersion: undefined,
  url: undefined,
  pieceStart: 0,
  pieceSize: 0,
  piece: undefined,
  downloadStarted: false,
  failCount: 0,
  timer: undefined,
  notify: undefined,
  transfer: undefined,
});

const settleStates: readonly OtaState[] = [Ota.CONFIRMED, Ota.DOWNLOAD_START, Ota.DOWNLOADING, Ota.DOWNLOAD_ERROR, Ota.DOWNLOAD_OK, Ota.UPDATING];
const versionChars = /^[^:;"]*$/;

/** The ProductSecret and device secret never reach a log. */
export function maskSecrets(line: string): string {
  return line.replace(/("productinfo"\s*,\s*"[^"]*"\s*,\s*)"[^"]*"/i, '$1"***"').replace(/("dk_ds"\s*,\s*"[^"]*"\s*,\s*)"[^"]*"/i, '$1"***"');
}

export class Module {
  private powered = false;
  private booted = false;
  private readonly channels: Record<ChannelName, Channel>;
  /** The channel of the command being executed: its answer goes back there. */
  private answerTo: Channel;
  private cfun = 1;
  private networkFault = false;
  private connState: Conn = 'idle';
  private rssi = 28;
  private ber = 99;
  private ota: OtaRam = freshOta();
  /** Status reports made while offline, sent after the next 3,10200 (§3.4). */
  private cachedReports: { component: string; code: OtaStatus; planId: string | undefined }[] = [];
  /** Every RAM-lifetime timer; all cancelled at power loss. */
  private readonly timers = new Set<SimTimer>();
  /** Bumped at every power loss: a timer of an earlier power-on never fires. */
  private powerEpoch = 0;
  /** Bumped at every (dis)connection: late cloud messages for an old MQTT session are dropped. */
  private session = 0;
  private readonly stateListeners = new Set<() => void>();

  constructor(
    readonly options: ModuleOptions,
    private readonly clock: SimClock,
    private readonly rails: Rails,
    private readonly cloud: Cloud,
    private readonly nv: NvStore,
    ports: Record<ChannelName, ChannelPort>,
    private readonly log: (msg: string) => void,
  ) {
    const channel = (name: ChannelName): Channel => {
      const ch: Channel = {
        name,
        port: ports[name],
        echo: true,
        lines: new LineAssembler(
          options.maxLineLength,
          (line) => this.onLine(ch, line),
          () => {
            this.answerTo = ch;
            this.respond('\r\nERROR\r\n');
          },
        ),
      };
      return ch;
    };
    this.channels = { usbat: channel('usbat'), uart1: channel('uart1') };
    this.answerTo = this.channels.usbat;
    rails.on('change', () => this.applyPower());
    this.applyPower();
  }

  /** The OTA state's name (§4.1), e.g. "DOWNLOADING". */
  get otaState(): string {
    return otaStateName[this.ota.state];
  }

  /** What AT+QIOTSTATE? answers now (8 = connected and subscribed). */
  get connectionState(): number {
    return this.qiotState();
  }

  /**
   * Calls `fn` on every change of the OTA state (transient states included) or of the connection state;
   * returns the unsubscribe.
   */
  onChange(fn: () => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private notifyState(): void {
    for (const fn of [...this.stateListeners]) fn();
  }

  private get conn(): Conn {
    return this.connState;
  }

  private set conn(c: Conn) {
    if (c === this.connState) return;
    this.connState = c;
    this.notifyState();
  }

  get dk(): string {
    return this.nv.data.customDk ?? this.options.imei;
  }

  /** Input bytes on a channel (the rig's USB AT port or the MCU's UART), after pacing. */
  input(channel: ChannelName, bytes: Buffer): void {
    const ch = this.channels[channel];
    // Echo runs ahead of execution only up to the end of the current line, as on a module that echoes each
    // character as it takes it: the echo of the next command follows the answer to this one.
    let start = 0;
    while (start < bytes.length && this.powered && this.booted) {
      let end = start;
      while (end < bytes.length && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
      const segment = bytes.subarray(start, Math.min(end + 1, bytes.length));
      if (ch.echo) {
        const echo = Buffer.from(segment);
        if (ch.port.echo) ch.port.echo(echo);
        else ch.port.write(echo);
      }
      ch.lines.feed(segment);
      start = end + 1;
    }
  }

  /** The channels URCs other than RDY go to now (AT+QURCCFG="urcport"). */
  urcChannels(): readonly ChannelName[] {
    return urcPortChannels[this.nv.data.urcPort] ?? [];
  }

  setSignal(rssi: number, ber: number): void {
    this.rssi = rssi;
    this.ber = ber;
  }

  private updateQuirk: { then: 'fail' | 'silence' | 'delay'; ms: number } | undefined;
  private resultDelayMs = 0;
  private planSpaceExtra = 0;

  setNetworkFault(down: boolean): void {
    this.networkFault = down;
    this.networkChanged();
  }

  /** A module-internal reset (AT+CFUN=1,1): the same as a power cycle for RAM and recovery. */
  reset(): void {
    this.powerOff();
    this.applyPower();
  }

  snapshot(): Record<string, unknown> {
    const o = this.ota;
    return {
      powered: this.powered,
      booted: this.booted,
      echo: this.channels.usbat.echo,
      channels: Object.fromEntries(channelNames.map((n) => [n, { echo: this.channels[n].echo }])),
      urcPort: this.nv.data.urcPort,
      cfun: this.cfun,
      network: this.networkUp(),
      qiotState: this.qiotState(),
      regMode: this.nv.data.regMode,
      dk: this.dk,
      imei: this.options.imei,
      mcuVersions: Object.fromEntries(this.nv.data.mcuVersions),
      ota: {
        state: otaStateName[o.state],
        code: o.state,
        componentNo: o.componentNo,
        targetVersion: o.targetVersion,
        size: o.url?.size,
        pieceStart: o.pieceStart,
        pieceSize: o.pieceSize,
        failCount: o.failCount,
        plan: o.plan,
      },
      persistedOta: this.nv.data.ota,
      persistedPlan: this.nv.data.otaPlan,
      signal: { rssi: this.rssi, ber: this.ber },
    };
  }

  close(): void {
    this.powerOff();
  }

  // ---- power ---------------------------------------------------------------------------------------

  private applyPower(): void {
    const on = this.rails.modulePowered();
    if (on && !this.powered) this.powerOn();
    else if (!on && this.powered) this.powerOff();
  }

  private powerOn(): void {
    this.powered = true;
    this.log(`module: power on, RDY in ${this.options.bootMs} ms (protocol)`);
    this.after(this.options.bootMs, () => this.boot());
  }

  private powerOff(): void {
    if (!this.powered) return;
    this.log('module: power off');
    this.powered = false;
    this.booted = false;
    this.powerEpoch++;
    this.session++;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.ota.transfer?.cancel();
    this.ota.timer?.cancel();
    this.ota.notify?.cancel();
    if (this.conn === 'connected') this.cloud.offline(this.dk);
    // RAM is gone: everything but the NV settings.
    this.ota = freshOta();
    this.notifyState();
    this.conn = 'idle';
    this.cfun = 1;
    this.cachedReports = [];
    for (const ch of Object.values(this.channels)) {
      ch.echo = true;
      ch.lines.reset();
      ch.port.flush();
    }
  }

  private boot(): void {
    this.booted = true;
    this.urc('RDY');
    // QIOTREG mode 1 does not survive a reboot; mode 2 reconnects by itself (§2.2).
    if (this.nv.data.regMode === 1) this.nv.update((nv) => (nv.regMode = 0));
    this.recoverOta();
    if (this.nv.data.regMode === 2) this.connect();
  }

  /**
   * §4.4: the OTA file is erased at init; UPDATING comes back with 10704, a download does not resume.
   *
   * The confirmed plan's remaining components come back too, so that the next component's URL is accepted
   * after a reboot (in UPDATING, or between components). SDK 2.9.0 persists no plan at all, only componentNo,
   * targetVersion, componentType and status, but it takes a URL in NOPLAN or SUBMITOTA whatever its component
   * (`Ql_iotCmdOtaFwInfo`), so a real module accepts that URL anyway. This sim takes a URL only for a component
   * it expects (see onUrl), hence the plan in NV. Whether newer SDKs (2.10+) check the component or keep
   * multi-component task info across a reboot is not known (docs/protocol.md §9.7).
   */
  private recoverOta(): void {
    const plan = this.nv.data.otaPlan;
    if (plan) {
      this.ota.planId = plan.planId;
      this.ota.plan = plan.components.map((c) => ({ ...c }));
    }
    const saved = this.nv.data.ota;
    if (!saved) return;
    this.ota.componentNo = saved.componentNo;
    this.ota.targetVersion = saved.targetVersion;
    const s = saved.status as OtaState;
    if (s === Ota.UPDATING && saved.componentType === 1) {
      this.setState(Ota.UPDATING);
      this.urc('+QIOTEVT: 7,10704');
      this.armOtaTimer(this.options.timers.updateWaitMs, 'no AT+QIOTMCUVER within the update wait after reboot');
    } else if ([Ota.CONFIRMED, Ota.DOWNLOAD_START, Ota.DOWNLOADING, Ota.DOWNLOAD_OK].includes(s as never)) {
      this.log(`module: reboot in ${otaStateName[s]}: download error, the download restarts from 0 when the cloud re-issues it`);
      this.report(saved.componentNo, Ota.DOWNLOAD_ERROR);
      this.setState(Ota.IDLE);
    } else {
      this.setState(Ota.IDLE);
    }
  }

  // ---- output --------------------------------------------------------------------------------------

  /** Answers on the channel the command came in on. */
  private respond(text: string | Buffer): void {
    this.send(this.answerTo, text);
  }

  private send(ch: Channel, text: string | Buffer): void {
    if (!this.powered || !this.booted) return;
    ch.port.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  }

  /** RDY goes out on every channel; +QIOTEVT per urcport unless --honour-urcport off; the rest per urcport. */
  private urc(line: string): void {
    const everywhere = line === 'RDY' || (!this.options.honourUrcPort && line.startsWith('+QIOTEVT'));
    const targets = everywhere ? channelNames : this.urcChannels();
    if (this.options.traceAt && this.powered && this.booted) this.log(`at: < ${line} (${targets.join(', ') || 'no channel: urcport ' + this.nv.data.urcPort})`);
    for (const name of targets) this.send(this.channels[name], `\r\n${line}\r\n`);
  }

  private ok(lines: string[] = []): void {
    this.respond(lines.length > 0 ? `\r\n${lines.join('\r\n')}\r\n\r\nOK\r\n` : '\r\nOK\r\n');
  }

  private error(): void {
    this.respond('\r\nERROR\r\n');
  }

  /** The answer to a well-formed command in the wrong OTA state (§9.3: ERROR vs +CME ERROR). */
  private wrongState(what: string): void {
    this.log(`module: ${what} refused in OTA state ${otaStateName[this.ota.state]}`);
    this.respond(`\r\n${this.options.wrongStateAnswer}\r\n`);
  }

  private after(ms: number, fn: () => void): SimTimer {
    const epoch = this.powerEpoch;
    const timer = this.clock.after(ms, () => {
      this.timers.delete(timer);
      if (epoch === this.powerEpoch) fn();
    });
    this.timers.add(timer);
    return { cancel: () => (timer.cancel(), this.timers.delete(timer)) };
  }

  private every(ms: number, fn: () => void): SimTimer {
    const timer = this.clock.every(ms, fn);
    this.timers.add(timer);
    return { cancel: () => (timer.cancel(), this.timers.delete(timer)) };
  }

  // ---- commands ------------------------------------------------------------------------------------

  private onLine(ch: Channel, line: string): void {
    this.answerTo = ch;
    if (this.options.traceAt) this.log(`at: > ${JSON.stringify(maskSecrets(line).slice(0, 200))}${ch.name === 'usbat' ? '' : ` (${ch.name})`}`);
    const cmd = parseCommand(line);
    if (!cmd) return this.error();
    try {
      this.dispatch(cmd);
    } catch (err) {
      // A bug here must cost one command, never the station.
      this.log(`module: internal error on ${JSON.stringify(maskSecrets(line).slice(0, 80))}: ${(err as Error).stack ?? String(err)}`);
      this.error();
    }
  }

  private dispatch(c: ParsedCommand): void {
    const args = c.form === 'set' ? parseArgs(c.rawArgs) : [];
    if (!args) return this.error();
    switch (c.name) {
      case '':
        return this.ok();
      case 'E':
        if (c.form === 'exec' || c.rawArgs === '0') this.answerTo.echo = false;
        else if (c.rawArgs === '1') this.answerTo.echo = true;
        else return this.error();
        return this.ok();
      case 'I':
        if (c.form === 'set' && c.rawArgs !== '0') return this.error();
        return this.ok(['Quectel', this.options.model, `Revision: ${this.options.revision}`]);
      case '+QGMR':
        return c.form === 'exec' ? this.ok([this.options.revision]) : this.error();
      case '+GSN':
      case '+CGSN':
        return c.form === 'exec' ? this.ok([this.options.imei]) : this.error();
      case '+CSQ':
        if (c.form === 'test') return this.ok(['+CSQ: (0-31,99),(0-7,99)']);
        if (c.form !== 'exec') return this.error();
        return this.networkUp() ? this.ok([`+CSQ: ${this.rssi},${this.ber}`]) : this.ok(['+CSQ: 99,99']);
      case '+CFUN':
        return this.cmdCfun(c, args);
      case '+QURCCFG':
        return this.cmdUrcCfg(c, args);
      case '+IPR':
        if (c.form === 'read') return this.ok([`+IPR: ${this.options.ipr}`]);
        if (c.form === 'test') return this.ok(['+IPR: (0,4800,9600,19200,38400,57600,115200,230400,460800,921600)']);
        return this.error();
      case '+QIOTCFG':
        return this.cmdCfg(c, args);
      case '+QIOTREG':
        return this.cmdReg(c, args);
      case '+QIOTSTATE':
        return c.form === 'read' ? this.ok([`+QIOTSTATE: ${this.qiotState()}`]) : this.error();
      case '+QIOTMCUVER':
        return this.cmdMcuVer(c, args);
      case '+QIOTOTAREQ':
        return this.cmdOtaReq(c, args);
      case '+QIOTUPDATE':
        return this.cmdUpdate(c, args);
      case '+QIOTOTARD':
        return this.cmdRead(c, args);
      case '+QIOTINFO':
        if (c.form === 'read') return this.ok([`+QIOTINFO: "version","${this.options.sdkVersion}"`]);
        if (c.form === 'set' && args.length === 1 && strArg(args[0]) === 'up') return this.ok();
        return this.error();
      default:
        return this.error();
    }
  }

  private cmdCfun(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'read') return this.ok([`+CFUN: ${this.cfun}`]);
    if (c.form === 'test') return this.ok(['+CFUN: (0,1,4),(0,1)']);
    if (c.form !== 'set' || args.length < 1 || args.length > 2) return this.error();
    const fun = intArg(args[0]);
    const rst = args.length === 2 ? intArg(args[1]) : 0;
    if (fun === undefined || ![0, 1, 4].includes(fun) || rst === undefined || rst > 1) return this.error();
    this.ok();
    if (rst === 1) {
      this.log('module: AT+CFUN reset');
      // The OK leaves before the reset takes the UART down.
      this.after(10, () => this.reset());
      return;
    }
    this.cfun = fun;
    this.networkChanged();
  }

  private cmdUrcCfg(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'test') return this.ok(['+QURCCFG: "urcport",("usbat","usbmodem","uart1","uart2","all")']);
    if (c.form !== 'set' || strArg(args[0])?.toLowerCase() !== 'urcport') return this.error();
    if (args.length === 1) return this.ok([`+QURCCFG: "urcport","${this.nv.data.urcPort}"`]);
    const port = strArg(args[1])?.toLowerCase();
    if (args.length !== 2 || !port || !(urcPorts as readonly string[]).includes(port)) return this.error();
    this.nv.update((nv) => (nv.urcPort = port));
    return this.ok();
  }

  private cmdCfg(c: ParsedCommand, args: Arg[]): void {
    const nv = this.nv.data;
    if (c.form === 'test') {
      return this.ok([
        '+QIOTCFG: "productinfo",<pk>,<ps>',
        '+QIOTCFG: "server",1,<server_URL>',
        '+QIOTCFG: "lifetime",(1-65535)',
        '+QIOTCFG: "buffer",(0,1)',
        '+QIOTCFG: "act",(1-15)',
        '+QIOTCFG: "session_mode",(0,1)',
        '+QIOTCFG: "tsl",(0,1)',
        '+QIOTCFG: "dk_ds",<dk>,<ds>',
        '+QIOTCFG: "txid_mode",(0,1)',
      ]);
    }
    if (c.form !== 'set') return this.error();
    const key = strArg(args[0]);
    const values = args.slice(1);
    const query = values.length === 0;
    // §2.1: productinfo, server, act and dk_ds change only while disconnected (QIOTREG=0).
    const disconnected = nv.regMode === 0 && this.conn !== 'connected' && this.conn !== 'connecting';
    const flag = (field: 'buffer' | 'sessionMode' | 'tsl' | 'txidMode', label: string): void => {
      if (query) return this.ok([`+QIOTCFG: "${label}",${nv[field]}`]);
      const v = intArg(values[0]);
      if (values.length !== 1 || v === undefined || v > 1) return this.error();
      this.nv.update((n) => (n[field] = v));
      this.ok();
    };
    switch (key) {
      case 'productinfo': {
        if (query) return this.ok([`+QIOTCFG: "productinfo","${nv.productKey}","${nv.productSecret}","1"`]);
        const pk = strArg(values[0]);
        const ps = strArg(values[1]);
        if (values.length !== 2 || !pk || !ps || !disconnected) return this.error();
        // SDK 2.9.0 silently keeps the old value for an overlong PK/PS, yet answers OK.
        if (pk.length <= 32 && ps.length <= 32) {
          this.nv.update((n) => {
            n.productKey = pk;
            n.productSecret = ps;
          });
        }
        return this.ok();
      }
      case 'server': {
        if (query) return this.ok([`+QIOTCFG: "server",${nv.serverType},"${nv.serverUrl}"`]);
        const type = intArg(values[0]);
        const url = strArg(values[1]);
        if (values.length !== 2 || type !== 1 || !url || !/^mqtts?:\/\/[^\s"]+$/.test(url) || !disconnected) return this.error();
        this.nv.update((n) => {
          n.serverType = type;
          n.serverUrl = url;
        });
        return this.ok();
      }
      case 'lifetime': {
        if (query) return this.ok([`+QIOTCFG: "lifetime",${nv.lifetime}`]);
        const v = intArg(values[0]);
        if (values.length !== 1 || v === undefined || v < 1 || v > 65535) return this.error();
        this.nv.update((n) => (n.lifetime = v));
        return this.ok();
      }
      case 'act': {
        if (query) return this.ok([`+QIOTCFG: "act",${nv.act}`]);
        const v = intArg(values[0]);
        if (values.length !== 1 || v === undefined || v < 1 || v > 15 || !disconnected) return this.error();
        this.nv.update((n) => (n.act = v));
        return this.ok();
      }
      case 'buffer':
        return flag('buffer', 'buffer');
      case 'session_mode':
        return flag('sessionMode', 'session_mode');
      case 'tsl':
        return flag('tsl', 'tsl');
      case 'txid_mode':
        return flag('txidMode', 'txid_mode');
      case 'dk_ds': {
        if (query) return nv.customDk === null ? this.error() : this.ok([`+QIOTCFG: "dk_ds","${nv.customDk}","${nv.customDs ?? ''}"`]);
        const dk = strArg(values[0]);
        const ds = values.length === 2 ? strArg(values[1]) : undefined;
        if (values.length > 2 || dk === undefined || !/^[A-Za-z0-9]{1,16}$/.test(dk) || !disconnected) return this.error();
        if (values.length === 2 && (ds === undefined || !/^[A-Za-z0-9]{0,32}$/.test(ds))) return this.error();
        this.nv.update((n) => {
          n.customDk = dk;
          n.customDs = ds || null;
          n.deviceSecret = null;
        });
        return this.ok();
      }
      default:
        return this.error();
    }
  }

  private cmdReg(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'test') return this.ok(['+QIOTREG: (0-2)']);
    if (c.form === 'read') return this.ok([`+QIOTREG: ${this.nv.data.regMode}`]);
    const mode = intArg(args[0]);
    if (c.form !== 'set' || args.length !== 1 || mode === undefined || mode > 2) return this.error();
    const nv = this.nv.data;
    if (mode === 0) {
      this.nv.update((n) => (n.regMode = 0));
      this.ok();
      this.disconnect(true);
      return;
    }
    if (!nv.productKey || !nv.productSecret || !nv.serverUrl) return this.error();
    this.nv.update((n) => (n.regMode = mode));
    this.ok();
    if (this.conn !== 'connected' && this.conn !== 'connecting') this.connect();
  }

  private cmdMcuVer(c: ParsedCommand, args: Arg[]): void {
    const list = this.nv.data.mcuVersions;
    if (c.form === 'test') return this.ok(['+QIOTMCUVER: <MCU_number>,<MCU_version>']);
    if (c.form === 'read') return this.ok(list.map(([comp, ver]) => `+QIOTMCUVER: "${comp}","${ver}"`));
    if (c.form !== 'set') return this.error();
    const comp = strArg(args[0]);
    if (comp === undefined || comp.length < 1 || comp.length > 32 || !versionChars.test(comp)) return this.error();
    if (args.length === 1) {
      const hit = list.find(([k]) => k === comp);
      return hit ? this.ok([`+QIOTMCUVER: "${comp}","${hit[1]}"`]) : this.error();
    }
    const ver = strArg(args[1]);
    if (args.length !== 2 || ver === undefined || ver.length > 64 || !versionChars.test(ver)) return this.error();
    const next = list.filter(([k]) => k !== comp);
    const idx = list.findIndex(([k]) => k === comp);
    if (ver !== '') {
      if (idx >= 0) next.splice(idx, 0, [comp, ver]);
      else next.push([comp, ver]);
    }
    // The SDK keeps the whole list as "comp:ver;" in 512 bytes.
    if (next.reduce((n, [k, v]) => n + k.length + v.length + 2, 0) > 512) return this.error();
    this.nv.update((n) => (n.mcuVersions = next));
    this.ok();
    if (this.conn === 'connected') this.cloud.versions(this.dk, next);
    this.settleByVersion(comp, ver);
  }

  private cmdOtaReq(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'test') return this.ok(['+QIOTOTAREQ: (0,1)']);
    if (c.form === 'read') return this.error();
    let info = 0;
    if (c.form === 'set') {
      const v = intArg(args[0]);
      if (args.length !== 1 || v === undefined || v > 1) return this.error();
      info = v;
    }
    if (this.options.requestNeedsConnection && this.conn !== 'connected') return this.error();
    // Sticky: decides whether the next 10701 carries the SHA-256 (§2.5).
    this.nv.update((n) => (n.otaReqInfo = info));
    this.ok();
    if (this.conn === 'connected') this.cloud.request(this.dk, this.nv.data.mcuVersions);
  }

  private cmdUpdate(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'test') return this.ok(['+QIOTUPDATE: (0-3)']);
    const action = intArg(args[0]);
    if (c.form !== 'set' || args.length !== 1 || action === undefined || action > 3) return this.error();
    const o = this.ota;
    switch (action) {
      case 0: {
        if (o.state !== Ota.RECEIVED_PLAN) return this.wrongState('AT+QIOTUPDATE=0');
        const plan = o.plan;
        this.ok();
        this.setState(Ota.REFUSED);
        for (const comp of plan) this.report(comp.componentNo, Ota.REFUSED);
        if (plan.length > 1) this.emit10707(false);
        this.ota.plan = [];
        this.ota.componentNo = undefined;
        this.ota.targetVersion = undefined;
        this.setState(Ota.IDLE);
        return;
      }
      case 1: {
        if (o.state === Ota.CONFIRMED) return this.ok();
        if (o.state !== Ota.RECEIVED_PLAN) return this.wrongState('AT+QIOTUPDATE=1');
        this.ok();
        this.setState(Ota.CONFIRMED);
        for (const comp of o.plan) this.report(comp.componentNo, Ota.CONFIRMED);
        if (o.plan.length > 1) this.emit10707(true);
        this.armOtaTimer(this.options.timers.urlWaitMs, 'no download URL within the URL wait after confirmation');
        return;
      }
      case 2: {
        const size = o.url?.size ?? 0;
        if (o.state !== Ota.DOWNLOAD_OK || size === 0 || o.pieceStart + o.pieceSize >= size) return this.wrongState('AT+QIOTUPDATE=2');
        this.ok();
        o.pieceStart += o.pieceSize;
        o.pieceSize = Math.min(this.options.freeSpace, size - o.pieceStart);
        o.piece = undefined;
        this.startDownload();
        return;
      }
      default: {
        const lastPiece = o.url !== undefined && o.pieceStart + o.pieceSize >= o.url.size;
        if (!((o.state === Ota.DOWNLOAD_OK && lastPiece) || o.state === Ota.UPDATING)) return this.wrongState('AT+QIOTUPDATE=3');
        this.ok();
        this.enterUpdating();
        return;
      }
    }
  }

  private cmdRead(c: ParsedCommand, args: Arg[]): void {
    if (c.form === 'test') return this.ok([`+QIOTOTARD: <start>,(1-${this.options.maxReadLength})`]);
    const start = intArg(args[0]);
    const length = intArg(args[1]);
    if (c.form !== 'set' || args.length !== 2 || start === undefined || length === undefined) return this.error();
    const o = this.ota;
    const end = o.pieceStart + o.pieceSize;
    if (o.state !== Ota.DOWNLOAD_OK || !o.piece || length === 0 || start < o.pieceStart || start >= end) {
      return this.wrongState(`AT+QIOTOTARD=${start},${length}`);
    }
    if (length > this.options.maxReadLength && this.options.oversizeRead === 'error') return this.error();
    const n = Math.min(length, this.options.maxReadLength, end - start);
    const data = o.piece.subarray(start - o.pieceStart, start - o.pieceStart + n);
    this.respond(Buffer.concat([Buffer.from(`\r\n+QIOTOTARD: ${start},${n}\r\n`, 'latin1'), data, Buffer.from(this.options.readTrailer, 'latin1')]));
    this.armOtaTimer(this.options.timers.readInactivityMs, 'no AT+QIOTOTARD within the read inactivity time');
  }

  // ---- connection ----------------------------------------------------------------------------------

  private networkUp(): boolean {
    return this.cfun === 1 && !this.networkFault;
  }

  private qiotState(): number {
    switch (this.conn) {
      case 'connected':
        return 8;
      case 'connecting':
      case 'waiting-network':
        return 5;
      case 'deregistered':
        return 11;
      default:
        return 1;
    }
  }

  private connect(): void {
    if (!this.powered || !this.booted) return;
    if (!this.networkUp()) {
      this.conn = 'waiting-network';
      return;
    }
    this.conn = 'connecting';
    const session = ++this.session;
    this.after(this.options.connectMs, () => {
      if (session !== this.session || !this.networkUp()) return;
      const nv = this.nv.data;
      if (this.options.bootstrapAuth && nv.deviceSecret === null && nv.customDs === null) {
        // First connection of this DK: bootstrap authentication issues the device secret.
        this.nv.update((n) => (n.deviceSecret = `ds${this.dk}`));
        this.urc('+QIOTEVT: 1,10200');
      }
      this.urc('+QIOTEVT: 2,10200');
      this.after(this.options.connectMs / 3, () => {
        if (session !== this.session) return;
        this.conn = 'connected';
        this.urc('+QIOTEVT: 3,10200');
        this.cloud.online(this.dk, this.options.imei, this.endpoint(session), this.nv.data.mcuVersions);
        const cached = this.cachedReports;
        this.cachedReports = [];
        for (const r of cached) this.cloud.status(this.dk, r.component, r.code, r.planId);
      });
    });
  }

  private disconnect(deregister: boolean): void {
    const was = this.conn;
    this.session++;
    if (was === 'connected') this.cloud.offline(this.dk);
    if (deregister) {
      this.conn = was === 'connected' ? 'deregistered' : 'idle';
      if (was === 'connected') this.urc('+QIOTEVT: 6,10200');
    } else if (was === 'connected' || was === 'connecting') {
      this.conn = 'waiting-network';
    }
    this.interruptDownload();
  }

  private networkChanged(): void {
    if (!this.powered || !this.booted) return;
    if (!this.networkUp()) {
      if (this.conn === 'connected' || this.conn === 'connecting') {
        this.log('module: network lost');
        this.disconnect(false);
      } else this.interruptDownload();
    } else if (this.conn === 'waiting-network' && this.nv.data.regMode !== 0) {
      this.log('module: network back, reconnecting');
      this.connect();
    }
  }

  /** A download socket breaks with the network (§4.1 DOWNLOAD_ERROR). */
  private interruptDownload(): void {
    if (this.ota.state === Ota.DOWNLOAD_START || this.ota.state === Ota.DOWNLOADING) this.downloadError('network lost');
  }

  private endpoint(session: number): DeviceEndpoint {
    const live = (): boolean => session === this.session && this.powered && this.conn === 'connected';
    return {
      plan: (planId, components) => {
        if (live()) this.onPlan(planId, components);
      },
      url: (msg) => {
        if (live()) this.onUrl(msg);
      },
    };
  }

  /** Each report names the plan the module is working on, so the cloud never credits another plan with it. */
  private report(component: string, code: OtaStatus): void {
    const planId = this.ota.planId;
    if (this.conn === 'connected') this.cloud.status(this.dk, component, code, planId);
    else this.cachedReports.push({ component, code, planId });
  }

  // ---- OTA state machine ---------------------------------------------------------------------------

  private setState(s: OtaState): void {
    this.ota.state = s;
    const o = this.ota;
    this.nv.update((nv) => {
      if (s === Ota.IDLE && o.componentNo === undefined) nv.ota = null;
      else if (o.componentNo !== undefined && o.targetVersion !== undefined) {
        nv.ota = { componentNo: o.componentNo, targetVersion: o.targetVersion, componentType: 1, status: s };
      }
      // A plan only announced (RECEIVED_PLAN) stays RAM only: the cloud pushes it again after a reboot.
      const keep = s !== Ota.RECEIVED_PLAN && o.planId !== undefined && o.plan.length > 0;
      nv.otaPlan = keep ? { planId: o.planId!, components: o.plan.map((c) => ({ ...c })) } : null;
    });
    this.notifyState();
  }

  private armOtaTimer(ms: number, why: string): void {
    this.ota.timer?.cancel();
    this.ota.timer = this.after(ms, () => {
      this.ota.timer = undefined;
      this.log(`module: OTA timer expired: ${why}`);
      this.fail();
    });
  }

  private stopOtaActivity(): void {
    const o = this.ota;
    o.timer?.cancel();
    o.notify?.cancel();
    o.transfer?.cancel();
    o.timer = o.notify = o.transfer = undefined;
  }

  private onPlan(planId: string, components: PlanComponentMsg[]): void {
    const o = this.ota;
    if (o.state !== Ota.IDLE && o.state !== Ota.RECEIVED_PLAN) {
      this.log(`module: plan ${planId} ignored in OTA state ${otaStateName[o.state]}`);
      return;
    }
    if (components.length > 20) return;
    const valid = components.filter((c) => c.componentNo !== '' && c.targetVersion !== '' && c.targetVersion.length <= 64);
    if (valid.length === 0) return;
    o.planId = planId;
    o.plan = valid;
    o.componentNo = valid[0]!.componentNo;
    o.targetVersion = valid[0]!.targetVersion;
    o.url = undefined;
    this.setState(Ota.RECEIVED_PLAN);
    for (const c of valid) {
      this.urc(`+QIOTEVT: 7,10700,"${c.componentNo}","${c.sourceVersion}","${c.targetVersion}",${c.batteryLimit},${c.minSignal},${c.useSpace + this.planSpaceExtra}`);
      this.report(c.componentNo, Ota.RECEIVED_PLAN);
    }
  }

  private onUrl(msg: UrlMsg): void {
    const o = this.ota;
    const inPlan = o.plan.some((c) => c.componentNo === msg.componentNo);
    const retry = o.state === Ota.IDLE && (inPlan || this.nv.data.ota?.componentNo === msg.componentNo || o.componentNo === msg.componentNo);
    if (!((o.state === Ota.CONFIRMED && inPlan) || retry)) {
      this.log(`module: download URL for ${msg.componentNo} ignored in OTA state ${otaStateName[o.state]}`);
      return;
    }
    o.planId = msg.planId;
    o.componentNo = msg.componentNo;
    o.targetVersion = msg.targetVersion;
    if (msg.md5.length !== 32 || msg.componentNo.length > 32 || msg.targetVersion.length > 64) {
      this.log('module: invalid URL info');
      return this.fail();
    }
    o.url = msg;
    o.pieceStart = 0;
    o.pieceSize = Math.min(this.options.freeSpace, msg.size);
    o.piece = undefined;
    this.startDownload();
  }

  private startDownload(): void {
    const o = this.ota;
    const url = o.url!;
    this.stopOtaActivity();
    this.setState(Ota.DOWNLOAD_START);
    if (!o.downloadStarted) {
      const sha = this.nv.data.otaReqInfo === 1 ? `,"${url.sha256}"` : '';
      this.urc(`+QIOTEVT: 7,10701,"${url.componentNo.slice(0, 32)}",${url.size},"${url.md5}",${url.crc >>> 0}${sha}`);
    } else {
      this.urc('+QIOTEVT: 7,10702');
    }
    o.downloadStarted = true;
    this.report(url.componentNo, Ota.DOWNLOAD_START);
    this.ota.timer = this.after(this.options.timers.downloadStartMs, () => this.downloadError('no HTTP progress after download start'));
    if (!this.networkUp()) return;
    const epoch = this.powerEpoch;
    const start = o.pieceStart;
    o.transfer = this.cloud.download(url.packageId, start, o.pieceSize, {
      started: () => {
        if (epoch !== this.powerEpoch || this.ota.state !== Ota.DOWNLOAD_START) return;
        this.ota.timer?.cancel();
        this.ota.timer = undefined;
        this.setState(Ota.DOWNLOADING);
        this.report(url.componentNo, Ota.DOWNLOADING);
        this.ota.notify = this.every(this.options.timers.downloadingNotifyMs, () => this.urc('+QIOTEVT: 7,10702'));
      },
      done: (bytes) => {
        if (epoch !== this.powerEpoch || this.ota.state !== Ota.DOWNLOADING) return;
        this.ota.notify?.cancel();
        this.ota.notify = undefined;
        this.ota.transfer = undefined;
        this.ota.piece = bytes;
        this.setState(Ota.DOWNLOAD_OK);
        this.report(url.componentNo, Ota.DOWNLOAD_OK);
        this.urc(`+QIOTEVT: 7,10703,"${url.componentNo.slice(0, 32)}",${url.size},${start},${bytes.length}`);
        this.armOtaTimer(this.options.timers.readInactivityMs, 'no AT+QIOTOTARD within the read inactivity time after 10703');
      },
    });
  }

  private downloadError(why: string): void {
    const o = this.ota;
    this.stopOtaActivity();
    o.piece = undefined;
    o.failCount++;
    this.log(`module: download error (${why}); ${o.failCount} in a row`);
    this.setState(Ota.DOWNLOAD_ERROR);
    this.report(o.componentNo ?? '', Ota.DOWNLOAD_ERROR);
    if (o.failCount > this.options.downloadErrorBudget) return this.fail();
    // No URC: the cloud re-issues the URL, and the restart shows 10702 instead of 10701.
    this.setState(Ota.IDLE);
  }

  private enterUpdating(): void {
    const o = this.ota;
    const quirk = this.updateQuirk;
    this.updateQuirk = undefined;
    this.stopOtaActivity();
    this.setState(Ota.UPDATING);
    this.report(o.componentNo ?? '', Ota.UPDATING);
    if (quirk?.then === 'fail') {
      this.log('module: quirk: AT+QIOTUPDATE=3 answered OK, then the update fails at once (10706, no 10704)');
      this.fail();
      return;
    }
    if (quirk?.then === 'silence') this.log('module: quirk: AT+QIOTUPDATE=3 answered OK, no 10704; the update wait runs');
    else if (quirk?.then === 'delay') {
      this.log(`module: quirk: 10704 ${quirk.ms} ms after AT+QIOTUPDATE=3 (a cloud round trip first)`);
      this.after(quirk.ms, () => {
        if (this.ota.state === Ota.UPDATING) this.urc('+QIOTEVT: 7,10704');
      });
    } else this.urc('+QIOTEVT: 7,10704');
    this.armOtaTimer(this.options.timers.updateWaitMs, 'no AT+QIOTMCUVER within the update wait after 10704');
  }

  /**
   * A module that does what the protocol allows but Quectel's examples never show (admin fault
   * `update-quirk`): the next AT+QIOTUPDATE=3 is answered OK and then fails at once with 10706 (`fail`),
   * sends no 10704 and lets its update wait run out (`silence`), or sends 10704 `ms` later (`delay`: a
   * status report to the cloud first). `resultDelayMs`: 10705 comes that long after the version report.
   * `planSpaceExtra`: 10700's last field, "disk space required", says that many bytes more than the file.
   */
  setQuirks(q: { update?: { then: 'fail' | 'silence' | 'delay'; ms: number }; resultDelayMs?: number; planSpaceExtra?: number }): void {
    if (q.update) this.updateQuirk = q.update;
    if (q.resultDelayMs !== undefined) this.resultDelayMs = q.resultDelayMs;
    if (q.planSpaceExtra !== undefined) this.planSpaceExtra = q.planSpaceExtra;
  }

  private settleByVersion(comp: string, ver: string): void {
    const o = this.ota;
    if (!settleStates.includes(o.state) || comp !== o.componentNo) return;
    if (ver === o.targetVersion) this.succeed();
    else {
      this.log(`module: MCU reported ${comp} ${JSON.stringify(ver)} during the OTA, target ${JSON.stringify(o.targetVersion)}: failure`);
      this.fail();
    }
  }

  private succeed(): void {
    const o = this.ota;
    const comp = o.componentNo ?? '';
    this.stopOtaActivity();
    this.setState(Ota.SUCCESS);
    this.report(comp, Ota.SUCCESS);
    const announce = (): void => {
      if (this.options.qindFotaEnd === 'before') this.urc('+QIND: "FOTA","END",0');
      this.urc('+QIOTEVT: 7,10705');
      if (this.options.qindFotaEnd === 'after') this.urc('+QIND: "FOTA","END",0');
    };
    const delay = this.resultDelayMs;
    this.resultDelayMs = 0;
    if (delay > 0) {
      this.log(`module: quirk: 10705 ${delay} ms after the version report (a cloud round trip first)`);
      this.after(delay, announce);
    } else announce();
    // The plan stays known so that the next component's URL (multi-component plans) is accepted in IDLE.
    const plan = o.plan.filter((c) => c.componentNo !== comp);
    this.ota = { ...freshOta(), plan, planId: o.planId };
    this.setState(Ota.IDLE);
  }

  private fail(): void {
    const o = this.ota;
    this.stopOtaActivity();
    this.setState(Ota.FAIL);
    this.report(o.componentNo ?? '', Ota.FAIL);
    this.urc('+QIOTEVT: 7,10706');
    this.ota = freshOta();
    this.setState(Ota.IDLE);
  }

  private emit10707(confirmed: boolean): void {
    const mode = this.options.event10707;
    if (mode === 'none') this.urc('+QIOTEVT: 7,10707');
    else this.urc(`+QIOTEVT: 7,10707,${mode === 'flag' && !confirmed ? 1 : 0}`);
  }
}
