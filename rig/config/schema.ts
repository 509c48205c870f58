// The rig's configuration (rig.config.ts) as zod schemas. A station entry is a list of resources (where the
// module's port is, which lines switch what, which probe reads the target) in the sense of STYLE.md's labgrid
// example; rig/station turns one entry into a Station. The built-in `virtual` station is an entry of kind
// "virtual": rig/station/virtual.ts starts sim/ and turns the sim's answer into an ordinary hardware entry.
import { z } from 'zod';
import { CRC_ALGORITHMS } from '../images/crc.ts';
import { powerConfigSchema } from '../power/config.ts';

// ---- small pieces --------------------------------------------------------------------------------------

export const stationNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a station name: letters, digits, "_", "-", "." (1–64, starting with a letter or digit)');

/** A 32-bit address: a number (0x08000000 in a .ts config) or a hex string ("0x08000000" in JSON). */
const address = z.union(
  [
    z.number().int().min(0).max(0xffff_ffff),
    z
      .string()
      .regex(/^0x[0-9a-fA-F]{1,8}$/)
      .transform((s) => Number.parseInt(s, 16) >>> 0),
  ],
  { error: 'a 32-bit address: a number (0x08000000) or a hex string ("0x08000000")' },
);

const ms = z.number().int().positive();

/** Where a secret comes from: an environment variable (or the untracked .env), never the config file. */
export const secretRefSchema = z
  .object({
    env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name like RIG_BENCH2_PRODUCT_SECRET'),
  })
  .strict();
export type SecretRef = z.infer<typeof secretRefSchema>;

// ---- the module ----------------------------------------------------------------------------------------

export const ECHO_SETTINGS = ['keep', 'off', 'on'] as const;
export type EchoSetting = (typeof ECHO_SETTINGS)[number];

/**
 * The module's command echo during SOTA runs: 'keep' leaves the module's own setting (on after boot, as in
 * Quectel's example logs), 'off' and 'on' send ATE0 / ATE1 after the port opens and after every module
 * reboot, because some modules (EG91xQ) do not save it (protocol §6). MCU firmware often turns it off; a
 * farm tests the way its firmware talks.
 */
export const echoSettingSchema = z.enum(ECHO_SETTINGS).default('keep');

export const moduleConfigSchema = z
  .object({
    /** The module's AT port. Prefer /dev/serial/by-id/…: ttyUSB numbers move between boots. */
    port: z.string().min(1),
    baudRate: z.number().int().positive().default(115200),
    /** Developer Center ProductKey, for AT+QIOTCFG="productinfo". */
    productKey: z.string().min(1).optional(),
    /** The ProductSecret's environment variable; the value is read at open and never printed. */
    productSecret: secretRefSchema.optional(),
    echo: echoSettingSchema,
  })
  .strict()
  .refine((m) => (m.productKey === undefined) === (m.productSecret === undefined), {
    message: 'productKey and productSecret go together: give both or neither',
    path: ['productSecret'],
  });
export type ModuleConfig = z.infer<typeof moduleConfigSchema>;

// ---- power and reset lines by role ---------------------------------------------------------------------

export const POWER_ROLES = ['moduleSupply', 'moduleReset', 'targetSupply', 'targetReset'] as const;
export type PowerRole = (typeof POWER_ROLES)[number];

export const powerRolesSchema = z
  .object({
    /** The module's VBAT (or its power-enable) line: a module power cycle switches it. */
    moduleSupply: z.string().min(1).optional(),
    /** The module's RESET_N (or PWRKEY) line: a module reset pulses it off. */
    moduleReset: z.string().min(1).optional(),
    /** The target's VDD line. */
    targetSupply: z.string().min(1).optional(),
    /** The target's NRST line. */
    targetReset: z.string().min(1).optional(),
  })
  .strict();
export type PowerRoles = z.infer<typeof powerRolesSchema>;

const powerShape = powerConfigSchema.shape;

/** rig/power's boards and lines, plus which line plays which role. */
export const stationPowerSchema = z
  .object({
    boards: powerShape.boards,
    lines: powerShape.lines.default({}),
    roles: powerRolesSchema.default({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    // rig/power's own cross-checks (boards exist, no pin used twice), with their paths.
    const own = powerConfigSchema.safeParse({ boards: cfg.boards, lines: cfg.lines });
    if (!own.success) for (const issue of own.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    const names = Object.keys(cfg.lines);
    const usedBy = new Map<string, string>();
    for (const role of POWER_ROLES) {
      const line = cfg.roles[role];
      if (line === undefined) continue;
      if (!names.includes(line)) {
        ctx.addIssue({ code: 'custom', path: ['roles', role], message: `a line named in power.lines (have: ${names.join(', ') || 'none'})` });
      }
      const other = usedBy.get(line);
      if (other) ctx.addIssue({ code: 'custom', path: ['roles', role], message: `a line of its own (line "${line}" is already the ${other} line)` });
      usedBy.set(line, role);
    }
  });
export type StationPowerConfig = z.infer<typeof stationPowerSchema>;

// ---- the probe -----------------------------------------------------------------------------------------

const probeSerial = z.string().regex(/^[\x21-\x7e]+$/, 'the adapter serial number: printable ASCII, no spaces (e.g. 066DFF555051897267233656)');

export const probeInterfaceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('stlink'), serial: probeSerial.optional() }).strict(),
  z.object({ kind: z.literal('cmsis-dap'), serial: probeSerial.optional(), transport: z.enum(['swd', 'jtag']).optional() }).strict(),
  z
    .object({
      kind: z.literal('remote_bitbang'),
      host: z.string().regex(/^[A-Za-z0-9.:-]+$/, 'a host name or address'),
      port: z.number().int().min(1).max(65535),
    })
    .strict(),
  z
    .object({
      kind: z.literal('buspirate'),
      port: z.string().regex(/^\/[\x21-\x7e]+$/, 'the adapter\'s serial port: an absolute device path without spaces (/dev/serial/by-id/…)'),
      transport: z.enum(['jtag', 'swd']).optional(),
    })
    .strict(),
]);

export const probeConfigSchema = z
  .object({
    interface: probeInterfaceSchema,
    target: z.enum(['stm32f1x', 'stm32f4x']),
    /** SRAM OpenOCD may use for flash algorithms; 0 for a target that cannot run code. */
    workAreaSize: z.number().int().min(0).optional(),
    speedKHz: z.number().int().positive().optional(),
    /** OpenOCD commands run after the target cfg and before `init`. */
    extra: z.array(z.string().min(1)).optional(),
    /** The openocd binary (default: `openocd` on PATH). */
    openocd: z.string().min(1).default('openocd'),
    /** rig/probe's bounds (start, command, shutdown, erase; read/program rates). */
    timeouts: z
      .object({
        startMs: ms.optional(),
        commandMs: ms.optional(),
        shutdownMs: ms.optional(),
        eraseMs: ms.optional(),
        readBytesPerSecond: z.number().positive().optional(),
        programBytesPerSecond: z.number().positive().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();
export type ProbeEntry = z.infer<typeof probeConfigSchema>;

// ---- layout, timeouts ----------------------------------------------------------------------------------

export const layoutSchema = z
  .object({
    /** Where the application image is programmed, e.g. 0x08000000. */
    slotAddress: address,
    /** Bytes reserved for it; a read-back of the slot reads this much. */
    slotSize: z.number().int().positive(),
  })
  .strict();

// ---- the MCU side (dut mode) ---------------------------------------------------------------------------

/** A flash region: where it starts and how many bytes it has. */
const regionSchema = z.object({ address, size: z.number().int().positive() }).strict();
export type FlashRegion = z.infer<typeof regionSchema>;

/** How the station's bootloader keeps its boot state, so the rig can read it (rig/sota/boot-record.ts). */
export const BOOT_RECORD_DECODERS = ['vmcu-1', 'mcuboot', 'none'] as const;
export type BootRecordDecoderName = (typeof BOOT_RECORD_DECODERS)[number];

/** The MCU's flash as its bootloader uses it: an A/B scheme (slot A runs, slot B receives the download). */
export const mcuLayoutSchema = z
  .object({
    bootloader: regionSchema,
    slotA: regionSchema,
    slotB: regionSchema,
    /** The boot record's copies (the virtual MCU's two); MCUboot keeps its trailer at each slot's end instead. */
    record: z.array(regionSchema).max(4).default([]),
    scratch: regionSchema.optional(),
    /** The unit the bootloader swaps in, bytes (informational: reports and sweeps). */
    swapUnit: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((l, ctx) => {
    const named: [string, FlashRegion][] = [
      ['bootloader', l.bootloader],
      ['slotA', l.slotA],
      ['slotB', l.slotB],
      ...l.record.map((r, i): [string, FlashRegion] => [`record.${i}`, r]),
      ...(l.scratch ? [['scratch', l.scratch] as [string, FlashRegion]] : []),
    ];
    for (let i = 0; i < named.length; i++) {
      for (let j = i + 1; j < named.length; j++) {
        const [an, a] = named[i]!;
        const [bn, b] = named[j]!;
        if (a.address < b.address + b.size && b.address < a.address + a.size) {
          ctx.addIssue({ code: 'custom', path: bn.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)), message: `a region apart from ${an} (0x${a.address.toString(16)}+${a.size} overlaps 0x${b.address.toString(16)}+${b.size})` });
        }
      }
    }
  });
export type McuLayout = z.infer<typeof mcuLayoutSchema>;

/**
 * What a bench gives the rig of the MCU it qualifies (dut mode): two taps on the MCU↔module UART (a
 * dual-channel USB-UART, RX pins only, common ground), the MCU's debug console if it has one, the flash
 * layout and how to read the boot record.
 */
export const mcuSideSchema = z
  .object({
    taps: z
      .object({
        /** The port whose RX sits on the MCU's TX line (what the MCU sends the module). */
        mcuToModule: z.string().min(1),
        /** The port whose RX sits on the module's TX line (what the module sends the MCU). */
        moduleToMcu: z.string().min(1),
        baudRate: z.number().int().positive().default(115200),
      })
      .strict(),
    console: z.object({ port: z.string().min(1), baudRate: z.number().int().positive().default(115200) }).strict().optional(),
    layout: mcuLayoutSchema,
    bootRecord: z.enum(BOOT_RECORD_DECODERS).default('none'),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.taps.mcuToModule === m.taps.moduleToMcu) ctx.addIssue({ code: 'custom', path: ['taps', 'moduleToMcu'], message: 'a port of its own (one per direction)' });
    if (m.bootRecord === 'vmcu-1' && m.layout.record.length !== 2) {
      ctx.addIssue({ code: 'custom', path: ['layout', 'record'], message: `the boot record's two copies for the 'vmcu-1' decoder (found ${m.layout.record.length})` });
    }
  });
export type McuSideConfig = z.infer<typeof mcuSideSchema>;

export const timeoutsSchema = z
  .object({
    /**
     * How fast this station's module runs its protocol timers compared with a real one (the virtual
     * station's clock); the protocol timers below are multiplied by it. 1 on hardware.
     */
    timeScale: z.number().positive().max(1000).default(1),
    commandMs: ms.optional(),
    bootMs: ms.optional(),
    registerMs: ms.optional(),
    planWaitMs: ms.optional(),
    urlWaitMs: ms.optional(),
    downloadNotifyMs: ms.optional(),
    readInactivityMs: ms.optional(),
    updateWaitMs: ms.optional(),
    resultWaitMs: ms.optional(),
    marginMs: z.number().int().min(0).optional(),
  })
  .strict();
export type TimeoutsConfig = z.infer<typeof timeoutsSchema>;

// ---- plans ---------------------------------------------------------------------------------------------

const versionText = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a version: letters, digits, "_", "-", "." (1–64)');
const md5Text = z.string().regex(/^[0-9a-f]{32}$/, '32 lowercase hex characters');
const sha256Text = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters');

/** The package an operator uploaded: a manifest package by name, or a file described by its hashes. */
export const declaredPackageSchema = z.union([
  z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a package name from the manifest, e.g. "full_2_0_0"'),
  z
    .object({
      /** The file that was uploaded (for the operator; the rig matches by hash). */
      file: z.string().min(1),
      sha256: sha256Text,
      md5: md5Text.optional(),
    })
    .strict(),
]);

/** An upgrade plan an operator created in Developer Center's console (there is no public API for plans). */
export const declaredPlanSchema = z
  .object({
    /** The plan's name in Developer Center. */
    name: z.string().min(1),
    component: z.string().min(1).max(32).optional(),
    package: declaredPackageSchema,
    /** '' or omitted for a full package. */
    sourceVersion: z.union([versionText, z.literal('')]).default(''),
    targetVersion: versionText,
    minBattery: z.number().int().min(0).max(100).default(0),
    /** The signal threshold as the plan shows it in 10700 (dBm; 0 = none). */
    minSignal: z.number().int().min(-200).max(0).default(0),
  })
  .strict();
export type DeclaredPlan = z.infer<typeof declaredPlanSchema>;

export const plansConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('api'), url: z.url({ protocol: /^https?$/ }) }).strict(),
  z
    .object({
      kind: z.literal('declared'),
      plans: z.array(declaredPlanSchema).default([]),
      /** How the cloud computes the CRC it announces in 10701 (protocol doc: uncertain; CRC-32/IEEE by default). */
      crcAlgorithm: z.enum(CRC_ALGORITHMS).default('crc-32'),
    })
    .strict(),
]);
export type PlansConfig = z.infer<typeof plansConfigSchema>;

// ---- stations ------------------------------------------------------------------------------------------

const common = {
  /** Free text for reports: "Pi 5 #3, EC200U on USB, STM32F407 + ST-Link". */
  description: z.string().default(''),
  /** The MCU component name the module knows the target by (10700's componentNo). */
  component: z.string().min(1).max(32).default('STM32'),
  timeouts: timeoutsSchema.default({ timeScale: 1 }),
};

/** A bench: real module, lines, probe. Also what virtual.ts produces for the virtual station. */
export const hardwareStationSchema = z
  .object({
    kind: z.literal('hardware'),
    ...common,
    module: moduleConfigSchema,
    power: stationPowerSchema.default({ boards: {}, lines: {}, roles: {} }),
    probe: probeConfigSchema,
    layout: layoutSchema,
    plans: plansConfigSchema.default({ kind: 'declared', plans: [], crcAlgorithm: 'crc-32' }),
    /** The MCU side for dut mode; without it the station runs proxy mode only. */
    mcu: mcuSideSchema.optional(),
  })
  .strict();
export type HardwareStationConfig = z.infer<typeof hardwareStationSchema>;

/** The virtual station (sim/): its options go to `sim/main.ts`. */
export const virtualStationSchema = z
  .object({
    kind: z.literal('virtual'),
    ...common,
    description: z.string().default('built-in virtual station (sim/: Quectel module on a pty, Developer Center model, STM32 over remote_bitbang, Firmata relay board)'),
    target: z.enum(['stm32f1x', 'stm32f4x']).default('stm32f1x'),
    /** The module UART's bits per second; the sim paces its output at this rate. */
    baud: z.number().int().positive().max(4_000_000).default(115200),
    /** What a bench has under `module` that the sim cannot supply by itself (its port and rate come from the sim). */
    module: z.object({ echo: echoSettingSchema }).strict().default({ echo: 'keep' }),
    /** The sim's clock: 0.01 runs every protocol timer 100× faster; the station's timeouts scale with it. */
    timeScale: z.number().positive().max(1000).default(1),
    /** Overrides as for a bench; their time scale is `timeScale` above. */
    timeouts: timeoutsSchema.omit({ timeScale: true }).default({}),
    seed: z.number().int().min(0).max(0xffff_ffff).optional(),
    imei: z.string().regex(/^\d{15}$/, '15 digits').optional(),
    /** Free space the module has for a package: smaller than the package → a multi-piece download. */
    moduleFreeSpace: z.number().int().positive().optional(),
    /** Cloud → module download rate, bytes per second (sim clock). */
    downloadRate: z.number().int().positive().optional(),
    bootMs: z.number().int().min(0).optional(),
    /** How the virtual cloud computes the CRC in 10701. */
    crc: z.enum(['crc32', 'crc32-mpeg2']).optional(),
    /** An image to preload into the target's flash at the slot. */
    flashImage: z.string().min(1).optional(),
    flashSizeKiB: z.number().int().min(2).max(1024).optional(),
    /**
     * The virtual MCU (sim/mcu: bootloader, reference client, UART taps, console) for dut mode; default the
     * sim's (off: the proxy bench). `rig upgrade --mode dut`, `qualify --mode dut` and the dut suites turn it on.
     */
    mcu: z.boolean().optional(),
    /** Further `sim/main.ts` options, verbatim (e.g. ["--url-delay-ms", "500"]). */
    simArgs: z.array(z.string()).default([]),
    /** The openocd binary that reads the virtual STM32 (default: `openocd` on PATH). */
    openocd: z.string().min(1).default('openocd'),
    /** Bound on the sim's start (its JSON line). */
    startTimeoutMs: ms.default(30_000),
    layout: layoutSchema.default({ slotAddress: 0x0800_0000, slotSize: 64 * 1024 }),
    /** The product the virtual module is configured with; the sim accepts any (not a secret). */
    productKey: z.string().min(1).default('pVirtualSta'),
    productSecret: z.string().min(1).default('VirtualStationProductSecret'),
  })
  .strict();
export type VirtualStationConfig = z.infer<typeof virtualStationSchema>;

/** A hardware entry may leave out `kind`. */
function defaultKind(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !('kind' in v)) return { kind: 'hardware', ...v };
  return v;
}

export const stationConfigSchema = z.preprocess(defaultKind, z.discriminatedUnion('kind', [hardwareStationSchema, virtualStationSchema]));
export type StationConfig = HardwareStationConfig | VirtualStationConfig;

export const VIRTUAL_STATION = 'virtual';

/** `stations.virtual` is the built-in virtual station: an override may leave out its kind. */
function virtualKind(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const stations = (v as { stations?: unknown }).stations;
  if (stations === null || typeof stations !== 'object' || Array.isArray(stations)) return v;
  const virtual = (stations as Record<string, unknown>)[VIRTUAL_STATION];
  if (virtual === null || typeof virtual !== 'object' || Array.isArray(virtual) || 'kind' in virtual) return v;
  return { ...v, stations: { ...stations, [VIRTUAL_STATION]: { kind: 'virtual', ...virtual } } };
}

/** The config input with every station's implied `kind` filled in, as the schema sees it (for messages). */
export function withImpliedKinds(v: unknown): unknown {
  const out = virtualKind(v);
  if (out === null || typeof out !== 'object' || Array.isArray(out)) return out;
  const stations = (out as { stations?: unknown }).stations;
  if (stations === null || typeof stations !== 'object' || Array.isArray(stations)) return out;
  return { ...out, stations: Object.fromEntries(Object.entries(stations).map(([k, s]) => [k, defaultKind(s)])) };
}

const rigConfigObject = z
  .object({
    stations: z.record(stationNameSchema, stationConfigSchema).default({}),
  })
  .strict();

export const rigConfigSchema = z
  .preprocess(virtualKind, rigConfigObject)
  .transform((cfg) => {
    // The built-in virtual station is always there; a config may override it with options of its own.
    const stations: Record<string, StationConfig> = { ...(cfg.stations as Record<string, StationConfig>) };
    stations[VIRTUAL_STATION] ??= virtualStationSchema.parse({ kind: 'virtual' });
    return { stations };
  })
  .superRefine((cfg, ctx) => {
    const v = cfg.stations[VIRTUAL_STATION];
    if (v && v.kind !== 'virtual') {
      ctx.addIssue({ code: 'custom', path: ['stations', VIRTUAL_STATION, 'kind'], message: '"virtual" (the name of the built-in virtual station; call a bench something else)' });
    }
  });
export type RigConfig = z.infer<typeof rigConfigSchema>;

// ---- the typed input of rig.config.ts ------------------------------------------------------------------

export type HardwareStationInput = Omit<z.input<typeof hardwareStationSchema>, 'kind'> & { kind?: 'hardware' };
export type VirtualStationInput = z.input<typeof virtualStationSchema>;
export interface RigConfigInput {
  stations?: Record<string, HardwareStationInput | VirtualStationInput>;
}
