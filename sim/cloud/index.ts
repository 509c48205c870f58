// The Developer Center model as a part of the virtual station, with its admin routes.
import { z } from 'zod';
import type { AdminServer } from '../admin.ts';
import { HttpError, parseBody } from '../admin.ts';
import type { SimClock } from '../clock.ts';
import { Cloud, CloudError, defaultCloudOptions, type CloudOptions } from './cloud.ts';

const versionText = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "-", "." only, 1–64 characters');
const componentText = z.string().regex(/^[^:;",]{1,32}$/, '1–32 characters, none of : ; " ,');

const packageBody = z
  .object({
    component: componentText,
    version: versionText,
    type: z.enum(['full', 'delta']),
    sourceVersion: versionText.optional(),
    data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64').min(1),
  })
  .strict();

const planBody = z
  .object({
    components: z.array(z.object({ component: componentText, packageId: z.string().min(1) }).strict()).min(1).max(20),
    whitelist: z.array(z.string().min(1)).optional(),
    blacklist: z.array(z.string().min(1)).optional(),
    mode: z.enum(['silent', 'manual']).optional(),
    minBattery: z.number().int().min(0).max(100).optional(),
    minSignal: z.number().int().min(-200).max(0).optional(),
    pushActively: z.boolean().optional(),
    pushPeriodHours: z.number().int().min(1).optional(),
    rejectionPeriodMinutes: z.number().int().min(10).max(1440).optional(),
    retryTimes: z.number().int().min(0).max(100).optional(),
    startsAfterMinutes: z.number().min(0).optional(),
    endsAfterMinutes: z.number().positive().optional(),
  })
  .strict();

const userConfirmBody = z.object({ device: z.string().min(1) }).strict();

export interface CloudPart {
  cloud: Cloud;
  info: Record<string, unknown>;
  close(): Promise<void>;
}

function cloudCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CloudError) throw new HttpError(400, err.message);
    throw err;
  }
}

export function startCloud(
  opts: Partial<CloudOptions>,
  ctx: { clock: SimClock; admin: AdminServer; log: (msg: string) => void },
): CloudPart {
  const cloud = new Cloud(ctx.clock, { ...defaultCloudOptions, ...opts }, ctx.log);
  const { admin } = ctx;

  admin.route('POST', '/packages', ({ body }) => {
    const b = parseBody(packageBody, body);
    const pkg = cloudCall(() => cloud.addPackage({ ...b, data: Buffer.from(b.data, 'base64') }));
    return { id: pkg.id, size: pkg.size, md5: pkg.md5, crc32: pkg.crc32, crc: pkg.crc, sha256: pkg.sha256 };
  });
  admin.route('GET', '/packages', () => cloud.listPackages());
  admin.route('POST', '/plans', ({ body }) => {
    const plan = cloudCall(() => cloud.addPlan(parseBody(planBody, body)));
    return { id: plan.id };
  });
  admin.route('GET', '/plans', () => cloud.listPlans());
  admin.route('POST', '/plans/:id/confirm', ({ params, body }) => {
    const b = parseBody(userConfirmBody, body);
    cloudCall(() => cloud.userConfirm(params.id!, b.device));
    return { ok: true };
  });
  admin.route('POST', '/plans/:id/terminate', ({ params }) => {
    cloudCall(() => cloud.terminatePlan(params.id!));
    return { ok: true };
  });
  admin.route('GET', '/devices', () => cloud.snapshot());

  return {
    cloud,
    info: {},
    close: async () => cloud.close(),
  };
}
