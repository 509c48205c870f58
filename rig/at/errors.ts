// Errors of the AT layer. Each names the station, the port and the command, says what was expected and
// shows the last lines received, so a failed night run can be read without rerunning it.
import { InfrastructureError, ProtocolError } from '../errors.ts';
import type { FinalResult } from './lines.ts';
import { maskSecrets } from './transcript.ts';

// Commands are masked here, once for all errors: AT+QIOTCFG="productinfo" carries the ProductSecret.

export interface AtErrorContext {
  station: string;
  port: string;
  command: string;
  expected: string;
  lastLines: readonly string[];
}

/** The module did not finish answering a command in time. */
export class AtTimeoutError extends ProtocolError {
  readonly command: string;
  readonly port: string;
  readonly waitedMs: number;
  /** @param c.summary replaces "no answer to <command> within <n> ms", e.g. for a command never sent */
  constructor(c: AtErrorContext & { waitedMs: number; seen?: string; summary?: string }) {
    super(maskSecrets(c.summary ?? `no answer to ${c.command} within ${c.waitedMs} ms on ${c.port}`), {
      station: c.station,
      expected: c.expected,
      seen: c.seen,
      lastLines: c.lastLines,
    });
    this.command = maskSecrets(c.command);
    this.port = c.port;
    this.waitedMs = c.waitedMs;
  }
}

/** The module answered a command with `ERROR`, `+CME ERROR` or `+CMS ERROR`. */
export class AtCommandError extends ProtocolError {
  readonly command: string;
  readonly port: string;
  readonly final: FinalResult;
  constructor(c: AtErrorContext & { final: FinalResult; finalLine: string }) {
    super(`${maskSecrets(c.command)} answered ${c.finalLine} on ${c.port}`, {
      station: c.station,
      expected: c.expected,
      seen: c.finalLine,
      lastLines: c.lastLines,
    });
    this.command = maskSecrets(c.command);
    this.port = c.port;
    this.final = c.final;
  }
}

/** The module answered, but not in the form the command expects (wrong header, short binary, …). */
export class AtResponseError extends ProtocolError {
  readonly command: string;
  readonly port: string;
  constructor(c: AtErrorContext & { seen: string }) {
    super(`unexpected answer to ${maskSecrets(c.command)} on ${c.port}`, {
      station: c.station,
      expected: c.expected,
      seen: c.seen,
      lastLines: c.lastLines,
    });
    this.command = maskSecrets(c.command);
    this.port = c.port;
  }
}

/** The serial port is gone (unplugged, its pty closed), closed by the rig, or could not be opened. */
export class AtPortError extends InfrastructureError {
  readonly port: string;
  readonly command: string | undefined;
  constructor(
    summary: string,
    c: { station: string; port: string; command?: string; expected?: string; lastLines?: readonly string[]; cause?: unknown },
  ) {
    super(maskSecrets(summary), { station: c.station, expected: c.expected, lastLines: c.lastLines, cause: c.cause });
    this.port = c.port;
    this.command = c.command === undefined ? undefined : maskSecrets(c.command);
  }
}
