// The module's non-volatile settings: what QuecThing "saves automatically" (QIOTCFG keys, QIOTREG mode, MCU
// versions, the sticky QIOTOTAREQ info, urcport) and the persisted OTA fields of docs/protocol.md
// §4.4. They survive a power cycle, and with a state directory a restart of the sim process too.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const otaSchema = z.object({
  componentNo: z.string(),
  targetVersion: z.string(),
  componentType: z.union([z.literal(0), z.literal(1)]),
  status: z.number().int(),
});

const planComponentSchema = z.object({
  componentNo: z.string(),
  sourceVersion: z.string(),
  targetVersion: z.string(),
  batteryLimit: z.number(),
  minSignal: z.number(),
  useSpace: z.number(),
  componentType: z.union([z.literal(0), z.literal(1)]),
});

export const nvSchema = z.object({
  productKey: z.string().default(''),
  productSecret: z.string().default(''),
  serverType: z.number().int().default(1),
  serverUrl: z.string().default('mqtt://iot-south.quectelcn.com:1883'),
  lifetime: z.number().int().default(120),
  buffer: z.number().int().default(0),
  act: z.number().int().default(1),
  sessionMode: z.number().int().default(0),
  tsl: z.number().int().default(0),
  txidMode: z.number().int().default(0),
  /** A DK set with dk_ds; null = the IMEI is the DK. */
  customDk: z.string().nullable().default(null),
  customDs: z.string().nullable().default(null),
  /** The device secret the platform issued at bootstrap authentication (first connection). */
  deviceSecret: z.string().nullable().default(null),
  regMode: z.number().int().min(0).max(2).default(0),
  mcuVersions: z.array(z.tuple([z.string(), z.string()])).default([]),
  otaReqInfo: z.number().int().min(0).max(1).default(0),
  ota: otaSchema.nullable().default(null),
  /** The confirmed plan and the components still to come; not an SDK field (see Module.recoverOta). */
  otaPlan: z.object({ planId: z.string(), components: z.array(planComponentSchema) }).nullable().default(null),
  urcPort: z.string().default('usbat'),
});

export type ModuleNv = z.output<typeof nvSchema>;

export class NvStore {
  private state: ModuleNv;
  private readonly file: string | undefined;

  /** @param dir a state directory, or undefined to keep the settings in this process only. */
  constructor(dir: string | undefined, defaults: Partial<ModuleNv>, log: (msg: string) => void) {
    this.file = dir === undefined ? undefined : path.join(dir, 'module-nv.json');
    let loaded: unknown = {};
    if (this.file) {
      mkdirSync(dir!, { recursive: true });
      try {
        loaded = JSON.parse(readFileSync(this.file, 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`module: ignoring unreadable ${this.file} (${(err as Error).message}); starting from factory settings`);
      }
    }
    const r = nvSchema.safeParse({ ...defaults, ...(typeof loaded === 'object' && loaded !== null ? loaded : {}) });
    if (r.success) this.state = r.data;
    else {
      log(`module: ignoring invalid ${this.file}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      this.state = nvSchema.parse(defaults);
    }
  }

  get data(): Readonly<ModuleNv> {
    return this.state;
  }

  update(change: (nv: ModuleNv) => void): void {
    change(this.state);
    if (!this.file) return;
    // Write-then-rename so a process killed mid-write never leaves half a file.
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 1));
    renameSync(tmp, this.file);
  }
}
