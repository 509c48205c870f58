// `+QIOTEVT: <type>,<code>[,<data>]` decoded into a discriminated union (protocol §3). The OTA events
// (type 7) carry typed fields; every other type keeps its fields as parsed values and a meaning from the
// §3.2 tables. Nothing is ever dropped: an unknown type or code, or a payload of an unexpected shape, is
// kept as such with the raw line, so a report can always show what the module really said.
import { afterPrefix, fieldValue, splitFields } from './fields.ts';
import type { Field, FieldValue } from './fields.ts';

interface EventBase {
  /** The URC as received. */
  readonly raw: string;
}

interface Coded<T extends number, C extends number> extends EventBase {
  readonly type: T;
  readonly code: C;
}

/** 7,10700: a plan for one component. The module does not enforce the battery and signal limits. */
export interface OtaPlanEvent extends Coded<7, 10700> {
  readonly kind: 'ota-plan';
  readonly component: string;
  /** "" for a full package. */
  readonly source: string;
  readonly target: string;
  /** Minimum battery, percent; 0 when the plan sets none. */
  readonly minBattery: number;
  /** Minimum signal, dBm; 0 when the plan sets none. */
  readonly minSignal: number;
  /** Space needed, bytes (the file size in every known example). */
  readonly size: number;
}

/** 7,10701: the download of an MCU component started. */
export interface OtaDownloadStartEvent extends Coded<7, 10701> {
  readonly kind: 'ota-download-start';
  readonly component: string;
  readonly size: number;
  /** 32 lowercase hex characters. */
  readonly md5: string;
  /** Printed as unsigned decimal by the module. */
  readonly crc: number;
  /** Present when the MCU asked for it (AT+QIOTOTAREQ=1). */
  readonly sha256?: string;
}

/** 7,10703: a piece of the file is stored in the module and can be read with AT+QIOTOTARD. */
export interface OtaPieceReadyEvent extends Coded<7, 10703> {
  readonly kind: 'ota-piece-ready';
  readonly component: string;
  /** Total file size. */
  readonly size: number;
  /** Absolute offset of this piece. */
  readonly start: number;
  readonly length: number;
}

export interface OtaBareEvent<K extends string, C extends number> extends Coded<7, C> {
  readonly kind: K;
}

/** 10702: downloading (about every 5 s, and instead of 10701 for later pieces and restarts). */
export type OtaDownloadingEvent = OtaBareEvent<'ota-downloading', 10702>;
/** 10704: updating (after AT+QIOTUPDATE=3, and again at boot if the module was updating). */
export type OtaUpdatingEvent = OtaBareEvent<'ota-updating', 10704>;
/** 10705: the upgrade succeeded. */
export type OtaSuccessEvent = OtaBareEvent<'ota-success', 10705>;
/** 10706: the upgrade failed (a timer ran out, a version mismatch, too many download errors …). */
export type OtaFailedEvent = OtaBareEvent<'ota-failed', 10706>;

/** 10701 and 10703 of a module (FOTA) component carry no payload. */
export interface OtaModuleEvent extends Coded<7, 10701 | 10703> {
  readonly kind: 'ota-module-download-start' | 'ota-module-piece-ready';
}

/** 7,10707: result of the first device operation, multi-component plans only; its payload is undocumented. */
export interface OtaOperationNoticeEvent extends Coded<7, 10707> {
  readonly kind: 'ota-operation-notice';
  /** Everything after `7,10707,`, untouched ("" when there is none). */
  readonly payload: string;
}

/** A type-7 code this layer does not know (10708, or a newer SDK's). */
export interface OtaOtherEvent extends Coded<7, number> {
  readonly kind: 'ota-other';
  readonly fields: readonly FieldValue[];
}

export type EventTypeName =
  | 'auth'
  | 'connect'
  | 'subscribe'
  | 'send'
  | 'receive'
  | 'logout'
  | 'platform'
  | 'wakeup'
  | 'subdevice-deregister'
  | 'data-acquisition';

/** Types 1–6, 8–10 and 30: the connection, data and platform events. */
export interface GeneralEvent extends Coded<number, number> {
  readonly kind: EventTypeName;
  /** The §3.2 meaning of this type and code, when documented. */
  readonly meaning: string | undefined;
  readonly fields: readonly FieldValue[];
  /** Raw downlink bytes that followed `5,10200,<len>` / `5,10210,<len>` in unbuffered mode. */
  readonly data?: Buffer;
}

/** A type no source documents: kept whole. */
export interface UnknownTypeEvent extends Coded<number, number> {
  readonly kind: 'unknown';
  readonly fields: readonly FieldValue[];
  readonly data?: Buffer;
}

/** A known OTA code whose payload does not have the documented shape: kept, with what was wrong. */
export interface MalformedEvent extends EventBase {
  readonly kind: 'malformed';
  readonly type: number | undefined;
  readonly code: number | undefined;
  readonly problem: string;
  readonly fields: readonly FieldValue[];
}

export type QiotEvent =
  | OtaPlanEvent
  | OtaDownloadStartEvent
  | OtaDownloadingEvent
  | OtaPieceReadyEvent
  | OtaUpdatingEvent
  | OtaSuccessEvent
  | OtaFailedEvent
  | OtaModuleEvent
  | OtaOperationNoticeEvent
  | OtaOtherEvent
  | GeneralEvent
  | UnknownTypeEvent
  | MalformedEvent;

/** Everything the module says on its own, as the QuecThing layer delivers it. */
export type ModuleEvent =
  | QiotEvent
  /** `RDY`: the module (re)booted. */
  | { readonly kind: 'reboot'; readonly raw: string }
  /** Any other URC (`+QIND: "FOTA","END",0`, `+CPIN: READY`, …), logged and otherwise ignored. */
  | { readonly kind: 'urc'; readonly raw: string; readonly data?: Buffer };

const TYPE_NAMES: Record<number, EventTypeName> = {
  1: 'auth',
  2: 'connect',
  3: 'subscribe',
  4: 'send',
  5: 'receive',
  6: 'logout',
  8: 'platform',
  9: 'wakeup',
  10: 'subdevice-deregister',
  30: 'data-acquisition',
};

/** §3.2, cellular EU docs. */
const MEANINGS: Record<string, string> = {
  '1,10200': 'auth OK',
  '1,10300': 'other error',
  '1,10404': 'platform API error',
  '1,10421': 'static device cannot re-register',
  '1,10422': 'device already authenticated',
  '1,10423': 'product info not found (bad PK)',
  '1,10424': 'payload decode failed',
  '1,10425': 'signature check failed',
  '1,10427': 'hash illegal',
  '1,10431': 'DK illegal',
  '1,10433': 'flag illegal',
  '1,10434': 'ClientID/password mismatch',
  '1,10440': 'gateway not associated with sub-device',
  '1,10450': 'device internal error / no network',
  '1,10500': 'unknown system error',
  '2,10200': 'connected',
  '2,10404': 'platform API error',
  '2,10430': 'DS incorrect',
  '2,10431': 'device disabled',
  '2,10433': 'flag illegal',
  '2,10434': 'ClientID/password mismatch',
  '2,10437': 'DS incorrect',
  '2,10438': 'platform cannot get device info',
  '2,10441': 'sub-device connected',
  '2,10450': 'internal error',
  '2,10471': 'protocol version unsupported',
  '2,10473': 'heartbeat error (timeout)',
  '2,10474': 'network error (timeout)',
  '2,10475': 'server changed',
  '2,10476': 'AP connection error',
  '2,10477': 'device disabled',
  '2,10478': 'device reset failed',
  '2,10500': 'unknown error',
  '3,10200': 'subscribe OK',
  '3,10300': 'subscribe failed',
  '4,10200': 'transparent data sent',
  '4,10210': 'TSL sent',
  '4,10220': 'location sent',
  '4,10230': 'status sent',
  '4,10240': 'device info sent',
  '4,10250': 'NTP sent',
  '4,10300': 'transparent data send failed',
  '4,10310': 'TSL send failed',
  '4,10320': 'location send failed',
  '4,10330': 'status send failed',
  '4,10340': 'device info send failed',
  '4,10350': 'NTP send failed',
  '4,10400': 'transparent send refused',
  '4,10410': 'TSL send refused',
  '4,10420': 'location send refused',
  '5,10200': 'transparent data received',
  '5,10210': 'TSL data received',
  '5,10211': 'TSL read request',
  '5,10212': 'TSL service',
  '5,10428': 'cache flow-limited',
  '5,10473': 'downlink exceeds buffer',
  '6,10200': 'logout OK',
  '6,10201': 'sub-device logout OK',
  '8,10428': 'high-frequency rate limit',
  '8,10429': 'activation/daily quota limit',
  '8,10442': 'sub-device deregistration failed',
  '9,10200': 'woke from deep sleep',
  '10,10200': 'sub-device deregistered',
  '30,0': 'data acquisition: sent',
  '30,1': 'data acquisition: failed',
  '30,2': 'data acquisition: rate exceeded',
  '30,3': 'data acquisition: retry',
  '30,10': 'data acquisition: connect failed',
  '30,11': 'data acquisition: transmission error',
  '30,12': 'data acquisition: channel not enabled',
  '30,13': 'data acquisition: server connect failed',
  '30,20': 'data acquisition: channel closed',
};

function isUint(f: Field | undefined): f is Field {
  return f !== undefined && !f.quoted && /^\d+$/.test(f.text);
}
function isInt(f: Field | undefined): f is Field {
  return f !== undefined && !f.quoted && /^-?\d+$/.test(f.text);
}
function isStr(f: Field | undefined): f is Field {
  return f !== undefined && f.quoted;
}

/** Decodes a `+QIOTEVT:` line (and the raw bytes that followed it, if any); undefined for other lines. */
export function parseQiotEvent(line: string, data?: Buffer): QiotEvent | undefined {
  const rest = afterPrefix(line, '+QIOTEVT:');
  if (rest === undefined) return undefined;
  const all = splitFields(rest);
  const values = all.map(fieldValue);
  const malformed = (problem: string): MalformedEvent => ({
    kind: 'malformed',
    raw: line,
    type: typeof values[0] === 'number' ? values[0] : undefined,
    code: typeof values[1] === 'number' ? values[1] : undefined,
    problem,
    fields: values,
  });
  if (!isUint(all[0]) || !isUint(all[1])) return malformed('expected <type>,<code> as integers');
  const type = Number(all[0].text);
  const code = Number(all[1].text);
  const f = all.slice(2);
  const fields = values.slice(2);
  if (type !== 7) {
    const name = TYPE_NAMES[type];
    const extra = data ? { data } : {};
    if (!name) return { kind: 'unknown', raw: line, type, code, fields, ...extra };
    return { kind: name, raw: line, type, code, meaning: MEANINGS[`${type},${code}`], fields, ...extra };
  }
  switch (code) {
    case 10700: {
      const [c, s, t, b, g, z] = f;
      if (f.length !== 6 || !isStr(c) || !isStr(s) || !isStr(t) || !isUint(b) || !isInt(g) || !isUint(z)) {
        return malformed('10700 expects "<component>","<source>","<target>",<battery>,<signal>,<size>');
      }
      return {
        kind: 'ota-plan',
        raw: line,
        type: 7,
        code: 10700,
        component: c.text,
        source: s.text,
        target: t.text,
        minBattery: Number(b.text),
        minSignal: Number(g.text),
        size: Number(z.text),
      };
    }
    case 10701: {
      if (f.length === 0) return { kind: 'ota-module-download-start', raw: line, type: 7, code: 10701 };
      const [c, z, m, k, h] = f;
      if ((f.length !== 4 && f.length !== 5) || !isStr(c) || !isUint(z) || !isStr(m) || !isUint(k) || (f.length === 5 && !isStr(h))) {
        return malformed('10701 expects "<component>",<size>,"<md5>",<crc>[,"<sha256>"]');
      }
      return {
        kind: 'ota-download-start',
        raw: line,
        type: 7,
        code: 10701,
        component: c.text,
        size: Number(z.text),
        md5: m.text,
        crc: Number(k.text),
        ...(h ? { sha256: h.text } : {}),
      };
    }
    case 10703: {
      if (f.length === 0) return { kind: 'ota-module-piece-ready', raw: line, type: 7, code: 10703 };
      const [c, z, s, n] = f;
      if (f.length !== 4 || !isStr(c) || !isUint(z) || !isUint(s) || !isUint(n)) {
        return malformed('10703 expects "<component>",<size>,<start>,<length>');
      }
      return {
        kind: 'ota-piece-ready',
        raw: line,
        type: 7,
        code: 10703,
        component: c.text,
        size: Number(z.text),
        start: Number(s.text),
        length: Number(n.text),
      };
    }
    case 10702:
    case 10704:
    case 10705:
    case 10706: {
      const kind = ({ 10702: 'ota-downloading', 10704: 'ota-updating', 10705: 'ota-success', 10706: 'ota-failed' } as const)[code];
      if (f.length !== 0) return malformed(`${code} carries no payload`);
      return { kind, raw: line, type: 7, code } as QiotEvent;
    }
    case 10707: {
      const m = /^\s*7\s*,\s*10707\s*,?/.exec(rest);
      return { kind: 'ota-operation-notice', raw: line, type: 7, code: 10707, payload: m ? rest.slice(m[0].length) : '' };
    }
    default:
      return { kind: 'ota-other', raw: line, type: 7, code, fields };
  }
}

/** Decodes any URC line into a ModuleEvent. */
export function parseModuleEvent(line: string, data?: Buffer): ModuleEvent {
  if (line === 'RDY') return { kind: 'reboot', raw: line };
  return parseQiotEvent(line, data) ?? { kind: 'urc', raw: line, ...(data ? { data } : {}) };
}

/** A type guard by kind, for cursor waits: `cursor.next(isEvent('ota-piece-ready'), …)`. */
export function isEvent<K extends ModuleEvent['kind']>(...kinds: K[]): (e: ModuleEvent) => e is Extract<ModuleEvent, { kind: K }> {
  return (e): e is Extract<ModuleEvent, { kind: K }> => (kinds as string[]).includes(e.kind);
}
