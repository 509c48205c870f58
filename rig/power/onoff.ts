// A Raspberry Pi GPIO through sysfs (onoff). Lines are named by gpiochip label + offset and resolved to the
// kernel's global number at open time: since kernel 6.6 the bases are dynamic (512 on a Pi 4, 571 on a
// Pi 5, and the header chip moved from gpiochip4 to gpiochip0 across Bookworm builds), so a number that
// worked on one Pi fails with EINVAL on the next (LIBRARIES.md §3.3).
import { closeSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Gpio } from 'onoff';
import { ConfigError, InfrastructureError } from '../errors.ts';
import type { GpioLineConfig } from './config.ts';
import { lineLabel, type SafeStateLine } from './line.ts';
import { registerSafeState } from './safe-state.ts';

/** onoff hard-codes this root, so the rig reads the same one. */
export const GPIO_SYSFS = '/sys/class/gpio';

export interface GpioChip {
  /** sysfs directory name, "gpiochip571". */
  readonly name: string;
  readonly label: string;
  readonly base: number;
  readonly ngpio: number;
}

export interface GpioContext {
  /** Line name for errors, "bench-2/module-vbat". */
  name: string;
  station?: string;
}

export interface ResolvedGpio {
  readonly gpio: number;
  readonly chip: GpioChip | undefined;
  /** "pinctrl-rp1 line 17 = GPIO 588", for errors. */
  readonly description: string;
}

function chipSummary(chips: readonly GpioChip[]): string {
  if (chips.length === 0) return 'no gpiochip in /sys/class/gpio';
  return chips.map((c) => `${c.label} (${c.name}: ${c.base}..${c.base + c.ngpio - 1})`).join(', ');
}

function assertSysfs(ctx: GpioContext): void {
  if (!existsSync(path.join(GPIO_SYSFS, 'export'))) {
    throw new InfrastructureError(`${lineLabel(ctx.name, ctx.station)}: sysfs GPIO is missing: there is no ${GPIO_SYSFS}/export`, {
      station: ctx.station,
      expected: 'a kernel built with CONFIG_GPIO_SYSFS (Raspberry Pi OS has it) and /sys mounted',
      seen: existsSync(GPIO_SYSFS) ? `${GPIO_SYSFS} without an export file` : `no ${GPIO_SYSFS}`,
    });
  }
}

/** The gpiochips sysfs knows, with their label, base and size. */
export function listGpioChips(sysfs: string = GPIO_SYSFS): GpioChip[] {
  const chips: GpioChip[] = [];
  let entries: string[];
  try {
    entries = readdirSync(sysfs);
  } catch {
    return chips;
  }
  for (const name of entries.filter((e) => /^gpiochip\d+$/.test(e)).sort()) {
    const dir = path.join(sysfs, name);
    try {
      const label = readFileSync(path.join(dir, 'label'), 'utf8').trim();
      const base = Number.parseInt(readFileSync(path.join(dir, 'base'), 'utf8'), 10);
      const ngpio = Number.parseInt(readFileSync(path.join(dir, 'ngpio'), 'utf8'), 10);
      if (Number.isInteger(base) && Number.isInteger(ngpio)) chips.push({ name, label, base, ngpio });
    } catch {
      // A chip whose attributes cannot be read is not one we can name lines on.
    }
  }
  return chips;
}

function findChip(spec: string, chips: readonly GpioChip[]): GpioChip[] {
  const dev = /^\/dev\/(gpiochip\d+)$/.exec(spec);
  if (dev) {
    // The character device and the sysfs chip share a parent device: …/gpiochip571/device/gpiochip0.
    return chips.filter((c) => existsSync(path.join(GPIO_SYSFS, c.name, 'device', dev[1]!)));
  }
  const sysfsName = path.basename(spec);
  if (/^gpiochip\d+$/.test(sysfsName) && (spec === sysfsName || path.resolve(path.dirname(spec)) === GPIO_SYSFS)) {
    return chips.filter((c) => c.name === sysfsName);
  }
  return chips.filter((c) => c.label === spec);
}

/** Resolves a configured line to the global GPIO number, or throws a ConfigError that lists the chips. */
export function resolveGpio(config: Pick<GpioLineConfig, 'chip' | 'line' | 'gpio'>, ctx: GpioContext): ResolvedGpio {
  assertSysfs(ctx);
  const chips = listGpioChips();
  if (config.gpio !== undefined) {
    const n = config.gpio;
    const chip = chips.find((c) => n >= c.base && n < c.base + c.ngpio);
    if (!chip) {
      throw new ConfigError(`${lineLabel(ctx.name, ctx.station)}: GPIO ${n} is on no gpiochip of this kernel`, {
        station: ctx.station,
        expected: 'a global number inside a chip\'s range, or better chip + line (bases are dynamic since kernel 6.6: GPIO17 is 588 on a Pi 5, 529 on a Pi 4)',
        seen: chipSummary(chips),
      });
    }
    return { gpio: n, chip, description: `GPIO ${n} (${chip.label} line ${n - chip.base})` };
  }
  const spec = config.chip!;
  const offset = config.line!;
  const matches = findChip(spec, chips);
  if (matches.length !== 1) {
    throw new ConfigError(`${lineLabel(ctx.name, ctx.station)}: ${matches.length === 0 ? 'no' : 'more than one'} gpiochip matches "${spec}"`, {
      station: ctx.station,
      expected: 'exactly one chip with that label, sysfs name, sysfs path or /dev/gpiochipN',
      seen: chipSummary(chips),
    });
  }
  const chip = matches[0]!;
  if (offset >= chip.ngpio) {
    throw new ConfigError(`${lineLabel(ctx.name, ctx.station)}: ${chip.label} has no line ${offset}`, {
      station: ctx.station,
      expected: `a line offset 0..${chip.ngpio - 1}`,
      seen: String(offset),
    });
  }
  const gpio = chip.base + offset;
  return { gpio, chip, description: `${chip.label} line ${offset} = GPIO ${gpio}` };
}

function exportError(err: unknown, resolved: ResolvedGpio, ctx: GpioContext): Error {
  const e = err as NodeJS.ErrnoException;
  const file = e.path ?? `${GPIO_SYSFS}/export`;
  const seen = `${e.code ?? 'error'} on ${file}: ${e.message}`;
  const what = `${lineLabel(ctx.name, ctx.station)}: could not take ${resolved.description}`;
  switch (e.code) {
    case 'EINVAL':
      return new InfrastructureError(`${what}: the kernel refused the export (EINVAL)`, {
        station: ctx.station,
        expected: `writing "${resolved.gpio}" to ${GPIO_SYSFS}/export to create ${GPIO_SYSFS}/gpio${resolved.gpio} — EINVAL means a number from another kernel's numbering, or a line a driver or overlay has claimed`,
        seen,
        cause: err,
      });
    case 'EACCES':
    case 'EPERM':
      return new InfrastructureError(`${what}: permission denied (${e.code})`, {
        station: ctx.station,
        expected: `write access to ${file} (run as root, or add the rig's user to the gpio group)`,
        seen,
        cause: err,
      });
    case 'EBUSY':
      return new InfrastructureError(`${what}: the line is busy (EBUSY)`, {
        station: ctx.station,
        expected: 'a line no other driver or process holds (a libgpiod user such as gpioset holds it until it exits)',
        seen,
        cause: err,
      });
    default:
      return new InfrastructureError(`${what}: sysfs GPIO failed`, { station: ctx.station, expected: `${GPIO_SYSFS}/gpio${resolved.gpio}/{direction,active_low,value}`, seen, cause: err });
  }
}

export class OnoffLine implements SafeStateLine {
  readonly safe: boolean;
  private closed = false;
  private unregister: (() => void) | undefined;

  private constructor(
    readonly name: string,
    readonly resolved: ResolvedGpio,
    readonly activeLow: boolean,
    private readonly gpio: Gpio,
    safe: boolean,
    private readonly station: string | undefined,
    private readonly unexportOnClose: boolean,
  ) {
    this.safe = safe;
  }

  /** Exports the line and drives it to its initial level (default: the safe level) as it becomes an output. */
  static open(config: GpioLineConfig, ctx: GpioContext): OnoffLine {
    const resolved = resolveGpio(config, ctx);
    const initialOn = (config.initial ?? config.safe) === 'on';
    // sysfs "high"/"low" set the *raw* level together with the direction (no glitch through a default
    // low), before active_low applies, so an active-low line that starts on is written "low".
    const direction = initialOn !== config.activeLow ? 'high' : 'low';
    const exportedBefore = existsSync(path.join(GPIO_SYSFS, `gpio${resolved.gpio}`));
    let gpio: Gpio;
    try {
      gpio = new Gpio(resolved.gpio, direction, 'none', { activeLow: config.activeLow, reconfigureDirection: true });
    } catch (err) {
      // onoff leaves a half-configured export behind; a line we exported, we give back.
      if (!exportedBefore && existsSync(path.join(GPIO_SYSFS, `gpio${resolved.gpio}`))) {
        try {
          writeFileSync(path.join(GPIO_SYSFS, 'unexport'), String(resolved.gpio));
        } catch {
          // the export error below is the one worth reporting
        }
      }
      throw exportError(err, resolved, ctx);
    }
    const line = new OnoffLine(ctx.name, resolved, config.activeLow, gpio, config.safe === 'on', ctx.station, config.unexportOnClose);
    line.unregister = registerSafeState(line);
    return line;
  }

  private fail(action: string, err: unknown): InfrastructureError {
    const e = err as NodeJS.ErrnoException;
    return new InfrastructureError(`${lineLabel(this.name, this.station)}: could not ${action} ${this.resolved.description}`, {
      station: this.station,
      expected: `${GPIO_SYSFS}/gpio${this.resolved.gpio}/value to accept the access`,
      seen: `${e.code ?? 'error'}: ${e.message}`,
      cause: err,
    });
  }

  private assertOpen(action: string): void {
    if (this.closed) throw new InfrastructureError(`${lineLabel(this.name, this.station)}: cannot ${action}: the line is closed`, { station: this.station, expected: 'an open line', seen: 'closed by the rig' });
  }

  async set(on: boolean): Promise<void> {
    this.assertOpen(`switch ${on ? 'on' : 'off'}`);
    try {
      // value is the logical level; the kernel applies active_low.
      this.gpio.writeSync(on ? 1 : 0);
    } catch (err) {
      throw this.fail(`switch ${on ? 'on' : 'off'}`, err);
    }
  }

  async get(): Promise<boolean> {
    this.assertOpen('read');
    try {
      return this.gpio.readSync() === 1;
    } catch (err) {
      throw this.fail('read', err);
    }
  }

  applySafeStateSync(): void {
    if (!this.closed) this.gpio.writeSync(this.safe ? 1 : 0);
  }

  /**
   * Drives the safe level and lets go of the line. By default it stays exported, so the kernel keeps
   * driving that level: whether an *unexported* output keeps it depends on the pinctrl driver (see
   * `unexportOnClose` in config.ts and `gpioReleaseBehaviour()`).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.gpio.writeSync(this.safe ? 1 : 0);
    } catch (err) {
      throw this.fail('drive the safe level of', err);
    } finally {
      this.closed = true;
      this.unregister?.();
      if (this.unexportOnClose) this.gpio.unexport();
      else releaseKeepingExport(this.gpio);
    }
  }
}

/**
 * onoff 6 has no "close but stay exported": its only release is unexport(). This is unexport() without the
 * write to /sys/class/gpio/unexport. `_valueFd` is private, but onoff is unmaintained and pinned at 6.0.3
 * (LIBRARIES.md §3.3), so it will not move under us; without it every close would leak a descriptor.
 */
function releaseKeepingExport(gpio: Gpio): void {
  gpio.unwatchAll();
  const fd = (gpio as unknown as { _valueFd?: unknown })._valueFd;
  if (typeof fd === 'number') closeSync(fd);
}
