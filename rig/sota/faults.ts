// Faults as data (docs/architecture.md §4): a trigger — a moment of the SOTA timeline the rig observes — and an action —
// something a station can do to itself. A run's fault schedule is written into its record and report, and
// `rig repro` replays it on any station, virtual or real.
//
// Text form, for the CLI (`--fault`) and for reports: `<trigger>:<action>` (split at the last colon, so a
// console pattern may hold colons; actions never do)
//   triggers  event=<code>[#<n>]      the n-th (default 1st) +QIOTEVT: 7,<code> of the run, e.g. event=10702#2
//             offset=<bytes>          when the block reads reach this file offset (before reading that block)
//             after-update3           right after AT+QIOTUPDATE=3 was answered OK
//             programming             while the image is being written to flash
//             before-version-report   just before AT+QIOTMCUVER reports the new version
//             delay=<ms>              this long after the upgrade started
//             console=<regex>         when a line of the MCU's debug console matches (dut mode)
//             <trigger>+<n>ms         n ms after that trigger came (after-update3+350ms, console=swap unit 3+20ms)
//   actions   power-cycle-module[=<offMs>]   power-cycle-target[=<offMs>]
//             reset-module[=<ms>]            reset-target[=<ms>]
//             network-cut[=<ms>]             AT+CFUN=4, then AT+CFUN=1 after <ms> (0 = stay cut until the end)
//             close-port                     close the module's serial port, then reopen it
import { ConfigError } from '../errors.ts';

export type FaultTrigger = (
  | { kind: 'event'; code: number; occurrence: number }
  | { kind: 'offset'; bytes: number }
  | { kind: 'after-update3' }
  | { kind: 'programming' }
  | { kind: 'before-version-report' }
  | { kind: 'delay'; ms: number }
  | { kind: 'console'; pattern: string }
) & {
  /** Milliseconds from the trigger's moment to the action (the `+<n>ms` suffix); absent = at once. */
  afterMs?: number;
};

export type FaultAction =
  | { kind: 'power-cycle'; part: 'module' | 'target'; offMs: number }
  | { kind: 'reset'; part: 'module' | 'target'; ms: number }
  | { kind: 'network-cut'; ms: number }
  | { kind: 'close-port' };

export interface Fault {
  trigger: FaultTrigger;
  action: FaultAction;
}

export const defaultFaultDurations = { powerOffMs: 500, resetPulseMs: 100, networkCutMs: 0 } as const;

function int(text: string | undefined, what: string, spec: string, min = 0): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    throw new ConfigError(`invalid fault '${spec}'`, { expected: `${what} as a whole number`, seen: text === undefined ? 'nothing' : `'${text}'` });
  }
  const n = Number(text);
  if (n < min) throw new ConfigError(`invalid fault '${spec}'`, { expected: `${what} ≥ ${min}`, seen: String(n) });
  return n;
}

function parseTrigger(whole: string, spec: string): FaultTrigger {
  const offset = /^(.*)\+(\d+)ms$/s.exec(whole);
  const text = offset ? offset[1]! : whole;
  const t = parseBareTrigger(text, spec);
  if (offset) {
    const ms = int(offset[2], 'a time offset in ms', spec);
    if (ms > 0) t.afterMs = ms;
  }
  return t;
}

function parseBareTrigger(text: string, spec: string): FaultTrigger {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? undefined : text.slice(eq + 1);
  switch (name) {
    case 'event': {
      const [code, nth] = (value ?? '').split('#', 2);
      return { kind: 'event', code: int(code, 'an event code', spec), occurrence: nth === undefined ? 1 : int(nth, 'an occurrence', spec, 1) };
    }
    case 'offset':
      return { kind: 'offset', bytes: int(value, 'a byte offset', spec) };
    case 'delay':
      return { kind: 'delay', ms: int(value, 'a delay in ms', spec) };
    case 'console': {
      if (!value) throw new ConfigError(`invalid fault '${spec}'`, { expected: 'console=<regular expression>', seen: 'no pattern' });
      try {
        new RegExp(value);
      } catch (err) {
        throw new ConfigError(`invalid fault '${spec}'`, { expected: 'console=<a JavaScript regular expression>', seen: (err as Error).message });
      }
      return { kind: 'console', pattern: value };
    }
    case 'after-update3':
    case 'programming':
    case 'before-version-report':
      if (value !== undefined) throw new ConfigError(`invalid fault '${spec}'`, { expected: `'${name}' without a value`, seen: `'${text}'` });
      return { kind: name };
    default:
      throw new ConfigError(`invalid fault '${spec}'`, {
        expected: 'a trigger: event=<code>[#n], offset=<bytes>, after-update3, programming, before-version-report, delay=<ms>, console=<regex>, each optionally +<n>ms',
        seen: `'${name}'`,
      });
  }
}

function parseAction(text: string, spec: string): FaultAction {
  const [name, value] = text.split('=', 2) as [string, string | undefined];
  const opt = (fallback: number, what: string) => (value === undefined ? fallback : int(value, what, spec));
  switch (name) {
    case 'power-cycle-module':
    case 'power-cycle-target':
      return { kind: 'power-cycle', part: name === 'power-cycle-module' ? 'module' : 'target', offMs: opt(defaultFaultDurations.powerOffMs, 'an off time in ms') };
    case 'reset-module':
    case 'reset-target':
      return { kind: 'reset', part: name === 'reset-module' ? 'module' : 'target', ms: opt(defaultFaultDurations.resetPulseMs, 'a pulse length in ms') };
    case 'network-cut':
      return { kind: 'network-cut', ms: opt(defaultFaultDurations.networkCutMs, 'a cut length in ms') };
    case 'close-port':
      if (value !== undefined) throw new ConfigError(`invalid fault '${spec}'`, { expected: `'close-port' without a value`, seen: `'${text}'` });
      return { kind: 'close-port' };
    default:
      throw new ConfigError(`invalid fault '${spec}'`, {
        expected: 'an action: power-cycle-module|power-cycle-target[=offMs], reset-module|reset-target[=ms], network-cut[=ms], close-port',
        seen: `'${name}'`,
      });
  }
}

/** Parses `<trigger>:<action>`; throws a ConfigError naming what was expected and what was seen. */
export function parseFault(spec: string): Fault {
  const colon = spec.lastIndexOf(':');
  if (colon < 0) throw new ConfigError(`invalid fault '${spec}'`, { expected: '<trigger>:<action>, e.g. event=10702#2:power-cycle-module', seen: `no ':'` });
  return { trigger: parseTrigger(spec.slice(0, colon).trim(), spec), action: parseAction(spec.slice(colon + 1).trim(), spec) };
}

export function formatTrigger(t: FaultTrigger): string {
  const after = t.afterMs ? `+${t.afterMs}ms` : '';
  switch (t.kind) {
    case 'event':
      return `${t.occurrence === 1 ? `event=${t.code}` : `event=${t.code}#${t.occurrence}`}${after}`;
    case 'offset':
      return `offset=${t.bytes}${after}`;
    case 'delay':
      return `delay=${t.ms}${after}`;
    case 'console':
      return `console=${t.pattern}${after}`;
    default:
      return `${t.kind}${after}`;
  }
}

export function formatAction(a: FaultAction): string {
  switch (a.kind) {
    case 'power-cycle':
      return `power-cycle-${a.part}=${a.offMs}`;
    case 'reset':
      return `reset-${a.part}=${a.ms}`;
    case 'network-cut':
      return `network-cut=${a.ms}`;
    case 'close-port':
      return 'close-port';
  }
}

/** The canonical text of a fault: parseFault(formatFault(f)) deep-equals f. */
export function formatFault(f: Fault): string {
  return `${formatTrigger(f.trigger)}:${formatAction(f.action)}`;
}
