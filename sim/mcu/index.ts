// The virtual MCU as a part of the sim process: the core on the STM32 target, its UART on the module's main
// UART, and what a bench gives the rig to watch it (docs/virtual-mcu.md §8): two read-only tap ptys with the
// exact bytes of each UART direction, a console pty at its own baud, the JSON line's "mcu" key, and
// GET /mcu. Nothing here changes what the MCU does: power and reset stay on the rails and the probe.
import type { AdminServer } from '../admin.ts';
import type { SimClock } from '../clock.ts';
import type { Uart1 } from '../module/index.ts';
import { openPtyOutput } from '../pty.ts';
import type { Stm32Target } from '../target/stm32.ts';
import { PacedLink } from '../uart.ts';
import { Mcu } from './core.ts';
import type { McuOptions } from './firmware.ts';
import { layoutFor } from './layout.ts';

export interface McuPartOptions {
  runDir: string;
  /** The console UART's baud; 0 = unpaced. */
  consoleBaud: number;
  mcu: McuOptions;
}

export interface McuPart {
  mcu: Mcu;
  info: { mcu: Record<string, unknown> };
  close(): Promise<void>;
}

/** The boot record format the layout's record areas hold (docs/virtual-mcu.md §4). */
export const BOOT_RECORD_FORMAT = 'vmcu-1';

export async function startMcuPart(
  opts: McuPartOptions,
  ctx: { clock: SimClock; target: Stm32Target; uart1: Uart1; admin: AdminServer; log: (msg: string) => void },
): Promise<McuPart> {
  const { uart1, target } = ctx;
  const opened: { close(): Promise<void> }[] = [];
  try {
    const tx = await openPtyOutput(opts.runDir, 'tap-mcu-tx', ctx.log);
    opened.push(tx);
    const rx = await openPtyOutput(opts.runDir, 'tap-mcu-rx', ctx.log);
    opened.push(rx);
    const consolePty = await openPtyOutput(opts.runDir, 'console', ctx.log);
    opened.push(consolePty);
    const consoleLine = new PacedLink(opts.consoleBaud, (chunk) => consolePty.write(chunk));
    const offTx = uart1.fromMcu.listen((b) => tx.write(b));
    const offRx = uart1.toMcu.listen((b) => rx.write(b));

    const l = layoutFor(target.profile);
    if (!l.layout) ctx.log(`mcu: no virtual MCU layout: ${l.why}`);
    const mcu = new Mcu(target, ctx.clock, l.layout, opts.mcu, {
      uartSend: (b) => uart1.fromMcu.send(b),
      clearTx: () => {
        uart1.fromMcu.clear();
        consoleLine.clear();
      },
      console: (text) => consoleLine.push(Buffer.from(text, 'latin1')),
      log: ctx.log,
    });
    const offReceive = uart1.toMcu.listen((b) => mcu.receive(b));

    ctx.admin.route('GET', '/mcu', () => ({
      ...mcu.snapshot(),
      ptys: { tapMcuToModule: { ...tx.stats }, tapModuleToMcu: { ...rx.stats }, console: { ...consolePty.stats } },
    }));

    const info = {
      taps: { mcuToModule: tx.rigPath, moduleToMcu: rx.rigPath, baud: uart1.fromMcu.baud },
      console: { port: consolePty.rigPath, baud: opts.consoleBaud },
      ...(l.layout ? { layout: l.layout, bootRecord: BOOT_RECORD_FORMAT } : { layout: null, why: l.why }),
    };
    ctx.log(`mcu: ${l.layout ? 'virtual MCU on the target' : 'no layout, the core stays inert'}; taps ${tx.rigPath}, ${rx.rigPath}; console ${consolePty.rigPath}`);
    return {
      mcu,
      info: { mcu: info },
      close: async () => {
        mcu.close();
        offTx();
        offRx();
        offReceive();
        consoleLine.close();
        for (const o of opened.reverse()) await o.close();
      },
    };
  } catch (err) {
    for (const o of opened.reverse()) await o.close();
    throw err;
  }
}
