// The virtual STM32 as a part of the sim process (sim/main.ts): the JTAG target on the station's rails, its
// "jtag" key for the JSON line, and admin routes for what a bench operator does by hand — switch the
// target's supply, pulse NRST, load or dump flash contents.
import { z } from 'zod';
import { HttpError, parseBody, type AdminServer } from '../admin.ts';
import type { Rails } from '../rails.ts';
import type { TargetName } from '../target/profiles.ts';
import { startJtagTarget, type JtagTarget } from './index.ts';

export interface JtagPartOptions {
  target: TargetName;
  flashSizeKiB?: number;
  /** Raw binary preloaded at the start of flash. */
  flashImage?: string;
}

export interface JtagPartContext {
  rails: Rails;
  /** Where the Bus Pirate's pty goes; none = remote_bitbang only. */
  runDir?: string;
  admin: AdminServer;
  log: (msg: string) => void;
}

const powerBody = z.object({ on: z.boolean() });
const loadBody = z
  .object({
    file: z.string().min(1).optional(),
    base64: z.string().optional(),
    offset: z.number().int().min(0).default(0),
    erase: z.boolean().default(false),
  })
  .refine((b) => (b.file === undefined) !== (b.base64 === undefined), { message: 'give exactly one of file, base64' });
const dumpBody = z.object({
  file: z.string().min(1).optional(),
  offset: z.number().int().min(0).default(0),
  length: z.number().int().min(0).optional(),
});
const defectBody = z
  .object({
    kind: z.enum(['ignore', 'garble', 'none']),
    offset: z.number().int().min(0).default(0),
    length: z.number().int().min(1).default(0x7fffffff),
  })
  .strict();

/** Largest dump returned inline as base64 (bigger ones go to a file). */
const maxInlineDump = 4 * 1024 * 1024;

export async function startJtagPart(
  opts: JtagPartOptions,
  ctx: JtagPartContext,
): Promise<{ info: Record<string, unknown>; jtag: JtagTarget; close(): Promise<void> }> {
  const jtag = await startJtagTarget({
    target: opts.target,
    flashSizeKiB: opts.flashSizeKiB,
    flashImage: opts.flashImage,
    rails: ctx.rails,
    log: ctx.log,
    busPirateDir: ctx.runDir,
  });
  const { target } = jtag;
  ctx.log(`jtag: ${target.profile.part} on remote_bitbang ${jtag.info.host}:${jtag.info.port}${jtag.info.buspirate ? ` and a Bus Pirate on ${jtag.info.buspirate}` : ''}`);
  target.on('algorithm', (name, outcome) => {
    if (outcome !== 'started' && outcome !== 'halted') ctx.log(`jtag: the core's ${name} ended by ${outcome}`);
  });

  const snapshot = (): Record<string, unknown> => ({
    target: opts.target,
    part: target.profile.part,
    flashSizeKiB: target.profile.flashSizeKiB,
    powered: target.powered,
    coreState: target.coreState,
    flashLocked: target.flashInterface.locked,
    debuggerConnected: jtag.server.connected,
    stats: { ...jtag.debugPort.stats, ...(jtag.busPirate ? { busPirate: { ...jtag.busPirate.adapter.stats } } : {}) },
  });
  const { admin, rails } = ctx;
  admin.route('GET', '/target', snapshot);
  admin.route('POST', '/target/power', ({ body }) => {
    rails.set('targetVdd', parseBody(powerBody, body).on);
    return snapshot();
  });
  admin.route('POST', '/target/reset', () => {
    rails.set('targetNrst', false);
    rails.set('targetNrst', true);
    return snapshot();
  });
  admin.route('POST', '/target/flash/load', async ({ body }) => {
    const b = parseBody(loadBody, body);
    if (b.erase) target.eraseFlash();
    try {
      if (b.file !== undefined) return { bytes: await target.preloadFile(b.file, b.offset), offset: b.offset };
      const data = Buffer.from(b.base64!, 'base64');
      target.loadFlash(data, b.offset);
      return { bytes: data.length, offset: b.offset };
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  });
  admin.route('POST', '/target/flash/defect', ({ body }) => {
    const b = parseBody(defectBody, body);
    target.flash.defect = b.kind === 'none' ? undefined : { kind: b.kind, offset: b.offset, length: b.length };
    return { defect: target.flash.defect ?? null };
  });
  admin.route('POST', '/target/flash/dump', async ({ body }) => {
    const b = parseBody(dumpBody, body);
    try {
      if (b.file !== undefined) return { bytes: await target.dumpFile(b.file, b.offset, b.length), file: b.file };
      const data = target.readFlash(b.offset, b.length);
      if (data.length > maxInlineDump) throw new RangeError(`${data.length} bytes is too large inline; give a file`);
      return { bytes: data.length, base64: data.toString('base64') };
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  });

  return {
    info: { jtag: jtag.info },
    jtag,
    close: () => jtag.close(),
  };
}
