// The module as a part of the virtual station: a pty pair for its USB AT port, its main UART (uart1, the
// MCU's line) as two paced wires, the module model, its non-volatile store, and its admin routes (power and
// network faults, signal, state).
import { z } from 'zod';
import type { AdminServer } from '../admin.ts';
import { HttpError, parseBody } from '../admin.ts';
import type { SimClock } from '../clock.ts';
import type { Cloud } from '../cloud/cloud.ts';
import { openPtySocket } from '../pty.ts';
import type { Rails } from '../rails.ts';
import { PacedLink, UartWire } from '../uart.ts';
import { defaultModuleOptions, Module, Ota, type ModuleOptions, type UrcPort } from './module.ts';
import { NvStore } from './nv.ts';

export interface ModulePartOptions {
  /** Bits per second on the USB AT port's pty; 0 = unpaced. */
  baud: number;
  /** Bits per second on the main UART to the MCU; 0 = unpaced. */
  uart1Baud: number;
  /** The factory value of AT+QURCCFG="urcport" (a saved value in the state directory wins). */
  urcPortDefault: UrcPort;
  /** Where the ptys live. */
  runDir: string;
  /** Non-volatile state directory; undefined keeps it in this process only. */
  stateDir: string | undefined;
  module: Partial<ModuleOptions> & { imei: string };
}

/** The module's main UART as the MCU sees it: what the MCU sends, what the module sends. */
export interface Uart1 {
  fromMcu: UartWire;
  toMcu: UartWire;
}

export interface ModulePart {
  module: Module;
  uart1: Uart1;
  info: { module: { port: string; imei: string; baud: number } };
  close(): Promise<void>;
}

const faultBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('power-off') }).strict(),
  z.object({ kind: z.literal('power-on') }).strict(),
  z.object({ kind: z.literal('power-cycle'), offMs: z.number().min(0).max(3_600_000).optional() }).strict(),
  z.object({ kind: z.literal('network-down') }).strict(),
  z.object({ kind: z.literal('network-up') }).strict(),
  z.object({ kind: z.literal('corrupt-next-download'), count: z.number().int().min(1).max(1000).optional() }).strict(),
  z.object({ kind: z.literal('download-error'), count: z.number().int().min(1).max(1000).optional() }).strict(),
  z.object({ kind: z.literal('update-quirk'), then: z.enum(['fail', 'silence', 'delay']), ms: z.number().int().min(0).max(3_600_000).optional() }).strict(),
  z.object({ kind: z.literal('result-delay'), ms: z.number().int().min(0).max(3_600_000) }).strict(),
  z.object({ kind: z.literal('plan-space'), extra: z.number().int().min(-1_000_000).max(1_000_000) }).strict(),
  z
    .object({
      kind: z.literal('drop-uart-bytes'),
      count: z.number().int().min(1).max(1_000_000),
      direction: z.enum(['to-rig', 'from-rig']).optional(),
      skip: z.number().int().min(0).max(100_000_000).optional(),
    })
    .strict(),
]);

const waitQuery = z
  .object({
    state: z.enum(Object.keys(Ota) as [keyof typeof Ota, ...(keyof typeof Ota)[]]).optional(),
    qiotState: z.coerce.number().int().min(0).max(12).optional(),
    timeoutMs: z.coerce.number().int().min(1).max(600_000).default(10_000),
  })
  .strict()
  .refine((q) => q.state !== undefined || q.qiotState !== undefined, 'give state and/or qiotState');

const deviceBody = z
  .object({
    rssi: z.number().int().min(0).max(99).refine((v) => v <= 31 || v === 99, 'CSQ rssi is 0–31 or 99').optional(),
    ber: z.number().int().min(0).max(99).refine((v) => v <= 7 || v === 99, 'CSQ ber is 0–7 or 99').optional(),
  })
  .strict();

/** Drops `count` bytes after letting `skip` through: lost bytes on the wire, as a fault. */
class Dropper {
  private skip = 0;
  private drop = 0;
  arm(count: number, skip: number): void {
    this.drop = count;
    this.skip = skip;
  }
  filter(chunk: Buffer): Buffer {
    if (this.drop === 0) return chunk;
    const pass = Math.min(this.skip, chunk.length);
    this.skip -= pass;
    const dropped = Math.min(this.drop, chunk.length - pass);
    this.drop -= dropped;
    return dropped === 0 ? chunk : Buffer.concat([chunk.subarray(0, pass), chunk.subarray(pass + dropped)]);
  }
}

export async function startModule(
  opts: ModulePartOptions,
  ctx: { clock: SimClock; rails: Rails; cloud: Cloud; admin: AdminServer; log: (msg: string) => void; fatal: (msg: string) => void },
): Promise<ModulePart> {
  // The module's USB AT port: a pty for the rig, a socket for the sim (sim/pty.ts).
  const pty = await openPtySocket(opts.runDir, 'module-rig');
  let closing = false;
  const port = pty.socket;
  port.on('error', (err) => ctx.log(`module: pty error: ${err.message}`));
  port.on('close', () => {
    if (!closing) ctx.fatal(`the module's pty ${pty.rigPath} closed unexpectedly (socat gone?)`);
  });

  const toRig = new Dropper();
  const fromRig = new Dropper();
  const out = new PacedLink(opts.baud, (chunk) => {
    const b = toRig.filter(chunk);
    if (b.length > 0 && !port.destroyed) port.write(b);
  });
  const nv = new NvStore(opts.stateDir, { urcPort: opts.urcPortDefault }, ctx.log);
  const options: ModuleOptions = { ...defaultModuleOptions, ipr: opts.baud > 0 ? opts.baud : 115200, ...opts.module };
  const uart1: Uart1 = { fromMcu: new UartWire(opts.uart1Baud), toMcu: new UartWire(opts.uart1Baud) };
  const m = new Module(
    options,
    ctx.clock,
    ctx.rails,
    ctx.cloud,
    nv,
    {
      usbat: { write: (b) => out.push(b), echo: (b) => out.pushEcho(b), flush: () => out.clear() },
      uart1: { write: (b) => uart1.toMcu.send(b), echo: (b) => uart1.toMcu.sendEcho(b), flush: () => uart1.toMcu.clear() },
    },
    ctx.log,
  );
  const inp = new PacedLink(opts.baud, (chunk) => {
    const b = fromRig.filter(chunk);
    if (b.length > 0) m.input('usbat', b);
  });
  uart1.fromMcu.listen((chunk) => m.input('uart1', chunk));
  port.on('data', (chunk: Buffer) => inp.push(chunk));

  const { admin, rails } = ctx;
  let powerCycle: { cancel(): void } | undefined;
  admin.route('GET', '/module', () => m.snapshot());
  // Long poll: answers when the OTA state and/or the QIOTSTATE value are (or next become) the ones asked
  // for, so a test or a fault schedule can act "during DOWNLOADING" or "once connected" without polling.
  admin.route('GET', '/module/wait', async ({ query }) => {
    const q = parseBody(waitQuery, Object.fromEntries(query));
    const wanted = [q.state === undefined ? '' : `OTA state ${q.state}`, q.qiotState === undefined ? '' : `QIOTSTATE ${q.qiotState}`].filter(Boolean).join(' and ');
    const matches = (): boolean => (q.state === undefined || m.otaState === q.state) && (q.qiotState === undefined || m.connectionState === q.qiotState);
    if (matches()) return m.snapshot();
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new HttpError(408, `module: ${wanted} not reached within ${q.timeoutMs} ms (now OTA state ${m.otaState}, QIOTSTATE ${m.connectionState}; passed through: ${seen.join(', ') || 'nothing'})`));
      }, q.timeoutMs);
      const off = m.onChange(() => {
        seen.push(`${m.otaState}/${m.connectionState}`);
        if (!matches()) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    return m.snapshot();
  });
  admin.route('POST', '/device', ({ body }) => {
    const b = parseBody(deviceBody, body);
    const snap = m.snapshot().signal as { rssi: number; ber: number };
    m.setSignal(b.rssi ?? snap.rssi, b.ber ?? snap.ber);
    return m.snapshot().signal;
  });
  admin.route('POST', '/faults', ({ body }) => {
    const f = parseBody(faultBody, body);
    ctx.log(`fault: ${JSON.stringify(f)}`);
    switch (f.kind) {
      case 'power-off':
        powerCycle?.cancel();
        rails.set('moduleVbat', false);
        break;
      case 'power-on':
        powerCycle?.cancel();
        rails.set('moduleVbat', true);
        break;
      case 'power-cycle':
        powerCycle?.cancel();
        rails.set('moduleVbat', false);
        powerCycle = ctx.clock.after(f.offMs ?? 100, () => rails.set('moduleVbat', true));
        break;
      case 'network-down':
        m.setNetworkFault(true);
        break;
      case 'network-up':
        m.setNetworkFault(false);
        break;
      case 'corrupt-next-download':
        ctx.cloud.corruptNextDownload(f.count ?? 1);
        break;
      case 'download-error':
        ctx.cloud.failDownloads(f.count ?? 1);
        break;
      case 'drop-uart-bytes':
        (f.direction === 'from-rig' ? fromRig : toRig).arm(f.count, f.skip ?? 0);
        break;
      case 'update-quirk':
        m.setQuirks({ update: { then: f.then, ms: f.ms ?? 0 } });
        break;
      case 'result-delay':
        m.setQuirks({ resultDelayMs: f.ms });
        break;
      case 'plan-space':
        m.setQuirks({ planSpaceExtra: f.extra });
        break;
    }
    return { ok: true, module: m.snapshot() };
  });

  return {
    module: m,
    uart1,
    info: { module: { port: pty.rigPath, imei: options.imei, baud: opts.baud } },
    close: async () => {
      closing = true;
      powerCycle?.cancel();
      m.close();
      out.close();
      inp.close();
      uart1.fromMcu.close();
      uart1.toMcu.close();
      await pty.close();
    },
  };
}
