// What the report's categories group failures by. A failed test's status message is the rig's error, which
// names everything a reader needs: the pty or serial port, the byte offset, the milliseconds waited. Allure
// groups a category's failures by that message, so one cause on a night of ptys, offsets and timings became
// a dozen groups. The suites therefore give every failed result a `reason` label: the error's class and its
// first line with the volatile parts (paths, numbers, digests, times) replaced by placeholders, and the
// categories (reports/categories.json) group by that label instead of the message. The message itself keeps
// every detail.

/** The label a failed result carries: a stable reason code ("AtCommandError: AT+QIOTOTARD=<n>,<n>: ERROR"). */
export const REASON_LABEL = 'reason';

/** Longest reason code; the rest of a long first line is cut (the message keeps it). */
const MAX_REASON = 160;

/** QuecThing event and result codes (+QIOTEVT: 7,10706): a number a reader groups by, not a measurement. */
const EVENT_CODE = /^10[0-9]{3}$/;

interface ErrorLike {
  name?: string | undefined;
  message?: string | undefined;
  station?: string | undefined;
}

/**
 * The first line of an error's message with what changes from run to run replaced: file and device paths,
 * ISO times, hex digests and addresses, and numbers (QuecThing event codes and version strings such as
 * 2_0_0 are kept: they say which moment and which image).
 */
export function stableText(line: string): string {
  return (
    line
      // ISO times, before their digits become <n>.
      .replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?\b/g, '<time>')
      // Absolute paths: /dev/pts/7, /tmp/sota-xyz/run/module.pty, /dev/serial/by-id/usb-…
      .replace(/(^|[\s"'(=:,])\/(?:[\w.@+-]+\/)*[\w.@+-]+/g, '$1<path>')
      // Hex: 0x0800_4000, md5/sha256 digests, OpenOCD's 0x2ba01477.
      .replace(/\b0x[0-9a-fA-F_]+\b/g, '<hex>')
      .replace(/\b[0-9a-fA-F]{16,}\b/g, '<hex>')
      // Host:port pairs (remote_bitbang, the admin API).
      .replace(/\b(?:\d{1,3}\.){3}\d{1,3}:\d+\b/g, '<host:port>')
      // Numbers that stand alone or carry a unit (2000 ms, 180000ms, 4s, 25%), not those inside 2_0_0, STM32, f4x.
      .replace(/(?<![\w.])\d+(?:\.\d+)?(?=[a-zA-Z%]{0,5}(?!\w|\.\w))/g, (n) => (EVENT_CODE.test(n) ? n : '<n>'))
      .replace(/\s+/g, ' ')
      .trim()
  );
}

/**
 * The reason code of a failed attempt's error, as vitest hands it over (a RigError's toJSON, an
 * AssertionError, vitest's own "Test timed out"): its class, then its first line without the station prefix
 * (the environment already says which station) and without volatile parts.
 */
export function reasonCode(error: ErrorLike): string {
  const name = error.name?.trim() || 'Error';
  let first = (error.message ?? '').split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
  if (error.station && first.startsWith(`${error.station}: `)) first = first.slice(error.station.length + 2);
  const text = stableText(first) || '(no message)';
  const code = `${name}: ${text}`;
  return code.length > MAX_REASON ? `${code.slice(0, MAX_REASON - 1)}…` : code;
}
