// rig/at: one Quectel module's AT port on a serialport stream.
//
//   const port = await openAtPort({ station: 'bench-2', path: '/dev/serial/by-id/…', baudRate: 115200 });
//   // or new AtPort({ station, serial: new SerialPortMock(…) }) + await port.open()
//   const r = await port.command('AT+QIOTMCUVER?', { prefix: '+QIOTMCUVER:', timeoutMs, signal });
//   r.lines                        // information lines with that prefix; 'all' for ATI/AT+GSN
//   await port.command('AT+QIOTOTARD=0,1024', { prefix: '+QIOTOTARD:', binary: true }) // r.block.data
//   port.on('urc', ({ line, data }) => …)   // +QIOTEVT, +QIND, RDY… even mid-answer; returns unsubscribe
//   port.on('reboot' | 'transcript' | 'framing' | 'unsolicited' | 'disconnected', …)
//   port.transcript()              // [TX]/[RX] entries, monotonic ms, binary as length + SHA-256, secrets masked
//   port.addSecret(ps)             // masked wherever it appears, even in a garbled line; also AtPortOptions.secrets
//   await port.close(); await port.open();   // reopen after a disconnect
//
// Failures: AtCommandError (ERROR/+CME/+CMS), AtTimeoutError, AtResponseError (protocol), AtPortError
// (infrastructure: port vanished, closed, locked), AbortedError. After a timeout or abort the port
// resynchronises: a bare CR ends any command line a lost byte left unfinished, then a probe (AT+CSQ)
// whose marker no stale answer can imitate; an ERROR to the probe still shows the module is alive.
export { AtPort, openAtPort, DEFAULT_RESYNC_PROBES } from './port.ts';
export type { Answered, AtPortOptions, AtPortEvents, AtResponse, CommandOptions, FramingIssue, ResyncProbe, SerialStream, Urc } from './port.ts';
export { AtCommandError, AtPortError, AtResponseError, AtTimeoutError } from './errors.ts';
export { AtFramer, quecthingBinaryLength, DEFAULT_MAX_BINARY_LENGTH, DEFAULT_MAX_LINE_LENGTH } from './framer.ts';
export type { Frame, FramerOptions } from './framer.ts';
export { DEFAULT_URC_PREFIXES, REBOOT_URC, parseFinalResult } from './lines.ts';
export type { FinalResult } from './lines.ts';
export { Secrets, Transcript, formatEntry, formatTranscript, maskSecrets } from './transcript.ts';
export type { Direction, TranscriptEntry } from './transcript.ts';
export { guardHangup } from './hangup.ts';
export { Emitter } from './emitter.ts';
export type { Listener } from './emitter.ts';
