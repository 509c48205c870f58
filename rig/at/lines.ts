// What a received line means on its own: a final result code, an unsolicited result code (URC), or
// neither. Whether a "neither" line is an information line of the command in flight is decided by the
// command queue, which knows the prefixes that command expects.

export type FinalResult =
  | { result: 'OK' }
  | { result: 'ERROR' }
  /** `+CME ERROR: <err>` (equipment) or `+CMS ERROR: <err>` (SMS); `code` when the error is numeric. */
  | { result: '+CME ERROR' | '+CMS ERROR'; code: number | undefined; text: string };

export function parseFinalResult(line: string): FinalResult | undefined {
  if (line === 'OK') return { result: 'OK' };
  if (line === 'ERROR') return { result: 'ERROR' };
  if (line.startsWith('+CME ERROR:') || line.startsWith('+CMS ERROR:')) {
    const text = line.slice(11).trim();
    const code = /^\d+$/.test(text) ? Number(text) : undefined;
    return { result: line.startsWith('+CME') ? '+CME ERROR' : '+CMS ERROR', code, text };
  }
  return undefined;
}

/**
 * Lines a Quectel module sends on its own. `+CPIN:` and `+CFUN:` are also the answers to `AT+CPIN?` and
 * `AT+CFUN?`; the queue gives such a line to the command in flight when that command expects the prefix.
 */
export const DEFAULT_URC_PREFIXES: readonly string[] = [
  '+QIOTEVT:',
  '+QIOTSUBEVT:',
  '+QIND:',
  'RDY',
  'POWERED DOWN',
  'NORMAL POWER DOWN',
  '+CPIN:',
  '+CFUN:',
  '+QUSIM:',
  '+QSIMSTAT:',
  '+CREG:',
  '+CGREG:',
  '+CEREG:',
  '+QSTAT:',
];

/** `RDY` is the boot banner: every module state not saved to flash is gone. */
export const REBOOT_URC = 'RDY';

export function matchesPrefix(line: string, prefixes: readonly string[]): string | undefined {
  for (const p of prefixes) if (line.startsWith(p)) return p;
  return undefined;
}
