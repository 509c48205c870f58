// `rig at <station> [command...]`: the module's AT port, through the station's own AtPort (so framing, URC
// routing and secret masking are the rig's). One-shot commands print their answer and exit; without one,
// an interactive console with history and decoded +QIOTEVT events.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AtCommandError, AtTimeoutError } from '../../at/errors.ts';
import { isRigError } from '../../errors.ts';
import type { ModuleEvent } from '../../quecthing/events.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, intOption, paint, parse, UsageError, type Paint } from '../output.ts';
import { requireStationName, runCommand, withStation } from '../station.ts';

const HISTORY_FILE = path.join(os.homedir(), '.rig_at_history');
const HISTORY_SIZE = 500;

/**
 * "+QIOTEVT: 7,10700,… → ota-plan {…}": the decoded form of an event, beside the raw line, masked by the
 * port's own `mask` (it knows the station's ProductSecret, not only the productinfo pattern).
 */
export function describeEvent(e: ModuleEvent, mask: (text: string) => string): string {
  if (e.kind === 'urc' || e.kind === 'reboot') return e.raw;
  const { raw, kind, ...rest } = e as unknown as { raw: string; kind: string } & Record<string, unknown>;
  delete rest.data;
  const fields = Object.entries(rest)
    .filter(([k, v]) => v !== undefined && k !== 'type' && k !== 'code')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return mask(`${raw}  → ${kind}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}`);
}

/** The history file (oldest first) as readline wants it: newest first, each command once, at most HISTORY_SIZE. */
export function historyFromFile(text: string): string[] {
  return text.split('\n').filter(Boolean).reduce<string[]>((h, line) => remember(h, line), []);
}

/** `line` as the newest entry, its earlier occurrences dropped. */
export function remember(history: readonly string[], line: string): string[] {
  return [line, ...history.filter((l) => l !== line)].slice(0, HISTORY_SIZE);
}

export function historyToFile(history: readonly string[]): string {
  return history.length === 0 ? '' : `${[...history].reverse().join('\n')}\n`;
}

interface Answer {
  command: string;
  ok: boolean;
  lines: string[];
  final: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, timeout: { type: 'string' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const name = requireStationName(positionals[0], 'at');
    const commands = positionals.slice(1);
    // The AT port is all it uses: no OpenOCD, so it works with the probe unplugged.
    return withStation(name, { config: values.config, attach: values.attach, probe: false }, async ({ station, signal }) => {
      const at = station.module.at;
      const timeoutMs = intOption('timeout', values.timeout, station.timeouts.commandMs + station.timeouts.marginMs, 1);
      // Every answer leaves through the port's mask: it knows the station's ProductSecret, and learns any
      // secret a productinfo or dk_ds command carries before it is sent, so the command as echoed back in
      // text, JSON or history never shows it either.
      const send = async (command: string): Promise<Answer> => {
        if (/[\r\n]/.test(command)) {
          at.addSecretsOf(command);
          throw new UsageError('rig at: a command is one line', { station: name, expected: 'a command without CR or LF (the port ends each with CR)', seen: JSON.stringify(at.mask(command)) });
        }
        try {
          const r = await at.command(command, { prefix: 'all', timeoutMs, signal });
          return { command: at.mask(command), ok: true, lines: r.lines.map((l) => at.mask(l)), final: 'OK' };
        } catch (err) {
          if (err instanceof AtCommandError) return { command: at.mask(command), ok: false, lines: [], final: at.mask(err.seen ?? 'ERROR') };
          throw err;
        }
      };
      if (commands.length > 0) {
        const answers: Answer[] = [];
        // With several commands each answer is headed by its command ("> AT+CSQ"), so they cannot be mixed up.
        const label = commands.length > 1;
        for (const c of commands) {
          const a = await send(c);
          answers.push(a);
          if (!json) process.stdout.write([...(label ? [`> ${at.mask(c)}`] : []), ...a.lines, a.final].map((l) => `${l}\n`).join(''));
        }
        if (json) process.stdout.write(`${JSON.stringify({ station: station.name, answers }, null, 2)}\n`);
        return answers.every((a) => a.ok) ? ExitCode.ok : ExitCode.failure;
      }
      return consoleLoop(station.name, station.module.path, send, (fn) => station.module.qt.on('event', fn), { mask: (text) => at.mask(text), learn: (text) => at.addSecretsOf(text) }, signal);
    });
  });
}

async function consoleLoop(
  station: string,
  port: string,
  send: (c: string) => Promise<Answer>,
  onEvent: (fn: (e: ModuleEvent) => void) => () => void,
  { mask, learn }: { mask: (text: string) => string; learn: (text: string) => void },
  signal: AbortSignal,
): Promise<number> {
  const p: Paint = paint(process.stdout);
  const tty = process.stdin.isTTY === true;
  let history: string[] = [];
  try {
    history = historyFromFile(readFileSync(HISTORY_FILE, 'utf8'));
  } catch {
    // No history yet.
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty, history, historySize: HISTORY_SIZE, removeHistoryDuplicates: true, prompt: p.bold(`${station}> `) });
  let showEvents = true;
  const print = (text: string): void => {
    process.stdout.write(`${text}\n`);
  };
  // An event arrives whenever it does: clear the prompt line, print it, and put the prompt back.
  const off = onEvent((e) => {
    if (!showEvents) return;
    if (tty) process.stdout.write('\r\x1b[K');
    print(p.cyan(describeEvent(e, mask)));
    if (tty) rl.prompt(true);
  });
  process.stdout.write(p.dim(`AT console on ${port} (${station}). .help for console commands, .quit or Ctrl-D to leave.\n`));
  const help = ['.events on|off   show or hide URCs and decoded +QIOTEVT events', '.history         the commands of earlier sessions', '.quit            leave (the station goes back to its safe state)'];
  let failures = 0;
  try {
    rl.prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '') {
        rl.prompt();
        continue;
      }
      if (line.startsWith('.')) {
        const [cmd, arg] = line.split(/\s+/, 2);
        if (cmd === '.quit' || cmd === '.exit') break;
        if (cmd === '.help') print(help.join('\n'));
        else if (cmd === '.events') {
          showEvents = arg !== 'off';
          print(`events ${showEvents ? 'shown' : 'hidden'}`);
        } else if (cmd === '.history') print(history.slice().reverse().join('\n') || '(empty)');
        else print(p.yellow(`unknown console command ${cmd} (.help)`));
        rl.prompt();
        continue;
      }
      // A ProductSecret typed into the console is not written to disk, nor kept for the up arrow: the mask
      // learns it from the line first.
      learn(line);
      history = remember(history, mask(line));
      const recalled = (rl as unknown as { history?: string[] }).history;
      if (recalled?.[0] === line) recalled[0] = mask(line);
      try {
        // Rewritten whole (at most HISTORY_SIZE short lines): a command used again moves to the end, once.
        const tmp = `${HISTORY_FILE}.${process.pid}.tmp`;
        writeFileSync(tmp, historyToFile(history), { mode: 0o600 });
        renameSync(tmp, HISTORY_FILE);
      } catch {
        // A read-only home: history stays in memory.
      }
      try {
        const a = await send(line);
        if (!a.ok) failures++;
        print([...a.lines, a.ok ? p.green(a.final) : p.red(a.final)].join('\n'));
      } catch (err) {
        failures++;
        if (signal.aborted) throw err;
        // A timeout is worth seeing and moving on from; a vanished port ends the session.
        if (err instanceof AtTimeoutError || (isRigError(err) && err.kind !== 'infrastructure')) print(p.red((err as Error).message));
        else throw err;
      }
      rl.prompt();
    }
  } finally {
    off();
    rl.close();
  }
  return failures === 0 || tty ? ExitCode.ok : ExitCode.failure;
}
