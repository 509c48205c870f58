// Quectel's published SOTA example (docs/protocol.md §5; the Developer Center "SOTA Upgrade
// Example" page), replayed byte for byte through the QuecThing layer, with echo exactly where the example
// shows it and the seed 10700/10701 values. One correction, as §5 explains: the example's last read
// (`AT+QIOTOTARD=27649,1024` → 305 bytes) is off by one; after 1024-byte reads from 0 it is 27648 → 306.
import { createHash } from 'node:crypto';
import { SerialPortMock } from 'serialport';
import { afterEach, expect, it } from 'vitest';
import { AtPort } from '../at/index.ts';
import { createMockModule } from '../at/testing/mock.ts';
import type { Script, ScriptedPeer } from '../at/testing/peer.ts';
import { openPtyPeer, startPtyPair } from '../at/testing/pty.ts';
import { isEvent } from './events.ts';
import { QuecThing, UpdateAction } from './quecthing.ts';

const SIZE = 27954;
const image = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) image[i] = (i * 131 + (i >> 8)) & 0xff;
// Bytes that would end a line-based read early, in several blocks.
for (const at of [0, 1020, 5000, 27950]) image.write('\r\nOK\r\n', at, 'latin1');
image.fill(0, 8000, 8100);

const PLAN = '+QIOTEVT: 7,10700,"STM32","","2_0_0",30,-113,27954';
const START =
  '+QIOTEVT: 7,10701,"STM32",27954,"95cbdeb4faeda4322ad9b65eb731ed2b",4022793929,"2bb534d576fb307f049a149787afab2382ebb8605467acfc2c05a2e67677e094"';

const reads = Array.from({ length: Math.ceil(SIZE / 1024) }, (_, i) => i * 1024);

/** The example's lines in order; the reads are expanded from its "…". */
const EXAMPLE: string[] = [
  '[TX]AT+QIOTREG=1',
  '[RX]AT+QIOTREG=1',
  '[RX]OK',
  '[RX]+QIOTEVT: 2,10200',
  '[RX]+QIOTEVT: 3,10200',
  '[TX]AT+QIOTMCUVER="STM32","1_0_0"',
  '[RX]OK',
  '[TX]AT+QIOTOTAREQ=1',
  '[RX]OK',
  `[RX]${PLAN}`,
  '[TX]AT+QIOTUPDATE=1',
  '[RX]AT+QIOTUPDATE=1',
  '[RX]OK',
  `[RX]${START}`,
  '[RX]+QIOTEVT: 7,10702',
  '[RX]+QIOTEVT: 7,10703,"STM32",27954,0,27954',
  ...reads.flatMap((s) => [`[TX]AT+QIOTOTARD=${s},1024`, `[RX]+QIOTOTARD: ${s},${Math.min(1024, SIZE - s)}`, '[RX]<data>', '[RX]OK']),
  '[TX]AT+QIOTUPDATE=3',
  '[RX]AT+QIOTUPDATE=3',
  '[RX]OK',
  '[RX]+QIOTEVT: 7,10704',
  '[TX]AT+QIOTMCUVER="STM32","2_0_0"',
  '[RX]OK',
  '[RX]+QIND: "FOTA","END",0',
  '[RX]+QIOTEVT: 7,10705',
];

/** The module's side of the example: every [RX] line that answers a [TX] line, as bytes on the wire. */
function moduleBytes(command: string): Buffer {
  const at = EXAMPLE.indexOf(`[TX]${command}`);
  if (at < 0) throw new Error(`the example never sends ${command}`);
  const out: Buffer[] = [];
  for (let i = at + 1; i < EXAMPLE.length && EXAMPLE[i]!.startsWith('[RX]'); i++) {
    const line = EXAMPLE[i]!.slice(4);
    if (line === command) out.push(Buffer.from(`${line}\r`)); // echo: the command and its CR
    else if (line === '<data>') {
      const start = Number(/^AT\+QIOTOTARD=(\d+),/.exec(command)![1]);
      out.push(image.subarray(start, Math.min(start + 1024, SIZE)));
    } else if (line.startsWith('+QIOTOTARD:')) out.push(Buffer.from(`\r\n${line}\r\n`));
    else if (line === 'OK' && command.startsWith('AT+QIOTOTARD=')) out.push(Buffer.from('\r\n\r\nOK\r\n'));
    else out.push(Buffer.from(`\r\n${line}\r\n`));
  }
  return Buffer.concat(out);
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  SerialPortMock.binding.reset();
});

const script: Script = (cmd, p) => void p.send(moduleBytes(cmd));

/** binding-mock: what the rig wrote is captured at the binding. */
async function overMock(): Promise<{ port: AtPort; written: Buffer[]; peer: ScriptedPeer }> {
  const { serial, peer } = createMockModule({ seed: 2024, script });
  const written: Buffer[] = [];
  serial.on('open', () => {
    const binding = serial.port!;
    const write = binding.write.bind(binding);
    binding.write = (b: Buffer) => {
      written.push(Buffer.from(b));
      return write(b);
    };
  });
  const port = new AtPort({ station: 'virtual', serial });
  cleanups.push(() => port.close());
  await port.open();
  return { port, written, peer };
}

/** A real pty pair: what the rig wrote is what the module's end received. */
async function overPty(): Promise<{ port: AtPort; written: Buffer[]; peer: ScriptedPeer }> {
  const pair = await startPtyPair();
  cleanups.push(() => pair.dispose());
  const module = await openPtyPeer(pair.b, script, 2025);
  cleanups.push(() => module.close());
  const port = new AtPort({ station: 'virtual', path: pair.a, baudRate: 115200 });
  cleanups.push(() => port.close());
  await port.open();
  return { port, written: module.fromRig, peer: module.peer };
}

it.each([
  ['binding-mock, 1..7-byte reads', overMock],
  ['a real pty pair', overPty],
])('replays the Quectel SOTA example byte for byte, echo on as in the example, over %s', async (_name, open) => {
  const { port, written, peer } = await open();
  const qt = new QuecThing(port);
  const limits = { timeoutMs: 2000 };

  // The MCU's side of the dialogue, as proxy mode plays it.
  const events = qt.events();
  await qt.register(1);
  await events.next(isEvent('subscribe'), limits);
  await qt.setMcuVersion('STM32', '1_0_0');
  await qt.otaRequest({ sha256: true });
  const plan = await events.next(isEvent('ota-plan'), limits);
  expect(plan).toMatchObject({ component: 'STM32', source: '', target: '2_0_0', minBattery: 30, minSignal: -113, size: 27954 });
  await qt.otaUpdate(UpdateAction.confirm);
  const start = await events.next(isEvent('ota-download-start'), { ...limits, failOn: isEvent('ota-failed') });
  expect(start).toMatchObject({
    component: 'STM32',
    size: 27954,
    md5: '95cbdeb4faeda4322ad9b65eb731ed2b',
    crc: 4022793929,
    sha256: '2bb534d576fb307f049a149787afab2382ebb8605467acfc2c05a2e67677e094',
  });
  const piece = await events.next(isEvent('ota-piece-ready'), { ...limits, failOn: isEvent('ota-failed') });
  expect(piece).toMatchObject({ component: 'STM32', size: 27954, start: 0, length: 27954 });
  const blocks: Buffer[] = [];
  for (let offset = piece.start; offset < piece.start + piece.length; ) {
    const block = await qt.otaRead(offset, 1024);
    blocks.push(block.data);
    offset += block.data.length;
  }
  const file = Buffer.concat(blocks);
  expect(createHash('sha256').update(file).digest('hex')).toBe(createHash('sha256').update(image).digest('hex'));
  await qt.otaUpdate(UpdateAction.updating);
  await events.next(isEvent('ota-updating'), { ...limits, failOn: isEvent('ota-failed') });
  await qt.setMcuVersion('STM32', '2_0_0');
  const done = await events.next(isEvent('ota-success', 'ota-failed'), limits);
  expect(done.kind).toBe('ota-success');

  // Byte for byte: what the rig wrote is exactly the example's [TX] lines, each ended by CR.
  const tx = EXAMPLE.filter((l) => l.startsWith('[TX]')).map((l) => `${l.slice(4)}\r`).join('');
  expect(Buffer.concat(written).toString('latin1')).toBe(tx);
  expect(peer.received).toEqual(EXAMPLE.filter((l) => l.startsWith('[TX]')).map((l) => l.slice(4)));
  // And the transcript reads as the example does, binary summarised.
  const transcript = port
    .transcript()
    .filter((e) => e.dir !== '--')
    .map((e) => (e.binary ? '[RX]<data>' : `[${e.dir}]${e.text}`));
  expect(transcript).toEqual(EXAMPLE);
  expect(events.history.map((e) => e.raw)).toEqual(EXAMPLE.filter((l) => /^\[RX\]\+(QIOTEVT|QIND)/.test(l)).map((l) => l.slice(4)));
});
