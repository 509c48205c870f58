// Power and reset lines as they are written in a station's config. These are resources (where a line is);
// onoff.ts and firmata.ts are the drivers. The station/config layer embeds these schemas.
import { z } from 'zod';

/** A line's level: "on" is the running level (supply on, reset released). */
export const levelSchema = z.enum(['on', 'off']);
export type Level = z.infer<typeof levelSchema>;

const common = {
  /**
   * Where the line goes on close, on a crash and on SIGINT/SIGTERM. Default "on": a rig that dies leaves
   * the module and the target powered and out of reset, the state a person walking up to the bench expects.
   */
  safe: levelSchema.default('on'),
  /** The level the line is driven to when it is opened (default: its safe level), without a glitch. */
  initial: levelSchema.optional(),
};

/**
 * A sysfs GPIO of the Pi, e.g. `{ kind: 'gpio', chip: 'pinctrl-rp1', line: 17, activeLow: true }` or
 * `{ kind: 'gpio', gpio: 588 }`. Name it by chip and offset: kernels >= 6.6 number GPIOs from dynamic
 * bases (512 or 571 …), so a global number written for one Pi is wrong on the next.
 */
export const gpioLineSchema = z
  .object({
    kind: z.literal('gpio'),
    /** gpiochip label ("pinctrl-rp1"), sysfs name or path ("gpiochip571", "/sys/class/gpio/gpiochip571"), or character device ("/dev/gpiochip0"). */
    chip: z.string().min(1).optional(),
    /** Offset of the line on `chip`. */
    line: z.number().int().min(0).optional(),
    /** Kernel-global GPIO number, instead of chip + line. */
    gpio: z.number().int().min(0).optional(),
    /** The line is "on" when the pin is low (e.g. an active-low relay driver or a RESET_N pin). */
    activeLow: z.boolean().default(false),
    /**
     * Give the line back to the kernel (sysfs unexport) on close. Default false: the line stays exported,
     * driven at its safe level. What an unexported output does is the pinctrl driver's choice, not sysfs's:
     * upstream drivers, and Raspberry Pi kernels with `dtparam=strict_gpiod` (persist_gpio_outputs=n),
     * return it to an input (raspberrypi/linux#6117; fivdi/onoff#89, #175), so a relay driver would float
     * and the board lose power after a clean close. Staying exported is safe on every kernel, and it is
     * the state a crash leaves anyway. Set true only for a line another program must take over.
     */
    unexportOnClose: z.boolean().default(false),
    ...common,
  })
  .strict()
  .refine((l) => (l.gpio === undefined) === (l.chip !== undefined && l.line !== undefined) && (l.chip === undefined) === (l.line === undefined), {
    message: 'a gpio line needs either chip and line, or gpio (a global number), not both',
  });
export type GpioLineConfig = z.infer<typeof gpioLineSchema>;

/** A relay on a StandardFirmata board, e.g. `{ kind: 'firmata', board: 'relays', pin: 7, relay: 'NC' }`. */
export const firmataLineSchema = z
  .object({
    kind: z.literal('firmata'),
    /** Name of an entry in `boards`. */
    board: z.string().min(1),
    pin: z.number().int().min(0).max(127),
    /**
     * Which contact the load is wired through. NO: on while the coil is energised (pin HIGH). NC: on while
     * it is not (pin LOW), so the load stays on when the board resets or loses USB.
     */
    relay: z.enum(['NO', 'NC']).default('NO'),
    ...common,
  })
  .strict();
export type FirmataLineConfig = z.infer<typeof firmataLineSchema>;

/** A Firmata board: always an explicit path, never auto-detected (that could grab the modem's ttyUSB). */
export const firmataBoardSchema = z
  .object({
    /** Prefer /dev/serial/by-id/…: ttyUSB/ttyACM numbers move between boots. */
    port: z.string().min(1),
    /** Bound on open + handshake (version, firmware, capabilities, analog mapping). */
    connectTimeoutMs: z.number().int().positive().default(5000),
    baudRate: z.number().int().positive().default(57600),
  })
  .strict();
export type FirmataBoardConfig = z.infer<typeof firmataBoardSchema>;

export const powerLineSchema = z.discriminatedUnion('kind', [gpioLineSchema, firmataLineSchema]);
export type PowerLineConfig = z.infer<typeof powerLineSchema>;

/** A station's lines by name ("module-vbat", "target-nrst", …) and the boards they use. */
export const powerConfigSchema = z
  .object({
    boards: z.record(z.string(), firmataBoardSchema).default({}),
    lines: z.record(z.string(), powerLineSchema),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const usedPins = new Map<string, string>();
    const usedGpios = new Map<string, string>();
    for (const [name, line] of Object.entries(cfg.lines)) {
      if (line.kind === 'firmata') {
        if (!(line.board in cfg.boards)) {
          ctx.addIssue({ code: 'custom', path: ['lines', name, 'board'], message: `no board "${line.board}" in boards (have: ${Object.keys(cfg.boards).join(', ') || 'none'})` });
        }
        const key = `${line.board}:${line.pin}`;
        const other = usedPins.get(key);
        if (other) ctx.addIssue({ code: 'custom', path: ['lines', name, 'pin'], message: `pin ${line.pin} of board "${line.board}" is already line "${other}"` });
        usedPins.set(key, name);
      } else {
        const key = line.gpio !== undefined ? `gpio ${line.gpio}` : `${line.chip} line ${line.line}`;
        const other = usedGpios.get(key);
        if (other) ctx.addIssue({ code: 'custom', path: ['lines', name], message: `${key} is already line "${other}"` });
        usedGpios.set(key, name);
      }
    }
  });
export type PowerConfig = z.infer<typeof powerConfigSchema>;
export type PowerConfigInput = z.input<typeof powerConfigSchema>;
