// What the kernel must provide for the onoff (sysfs) GPIO driver, checked on the machine it runs on, for
// `rig doctor`. The sysfs GPIO interface is deprecated upstream (Documentation/ABI/obsolete/sysfs-gpio;
// CONFIG_GPIO_SYSFS is offered only with CONFIG_EXPERT) and "frowned upon" by the Raspberry Pi kernel
// maintainers, but Raspberry Pi OS kernels still build it in. What it needs:
//   1. CONFIG_GPIO_SYSFS=y: /sys/class/gpio/export exists;
//   2. the right to write it: root, or the gpio group (Raspberry Pi OS's udev rules hand /sys/class/gpio to it);
//   3. numbering: since kernel 6.6 chip bases are dynamic (512 on a Pi 4, 571 for the Pi 5's pinctrl-rp1), so
//      lines are named by chip label and offset (onoff.ts resolves them);
//   4. what a released output does (gpio-release.ts): with strict_gpiod it returns to an input, so the rig
//      keeps its lines exported at their safe level unless told otherwise.
// A character-device (libgpiod) driver would need only /dev/gpiochipN and its permissions, name lines by
// chip and offset natively, and hold a line only while the process holds its request: the line returns to
// its default when the rig exits, even by SIGKILL — a safe state no handler has to write, but one the rig
// does not choose.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { gpioReleaseBehaviour, type KernelPaths } from './gpio-release.ts';
import { GPIO_SYSFS, listGpioChips } from './onoff.ts';

export type GpioCheckStatus = 'ok' | 'warn' | 'fail';

export interface GpioKernelCheck {
  check: string;
  status: GpioCheckStatus;
  detail: string;
  fix?: string;
}

export interface GpioKernelPaths extends KernelPaths {
  /** /sys/class/gpio */
  sysfs?: string;
  /** Kernel config files to read CONFIG_GPIO_SYSFS from (default /proc/config.gz, /boot/config-<release>). */
  kernelConfig?: readonly string[];
}

/** CONFIG_GPIO_SYSFS as the kernel's config says, when a config can be read. */
export function kernelGpioSysfs(files: readonly string[]): { value: 'y' | 'n' | undefined; from: string | undefined } {
  for (const file of files) {
    let text: string;
    try {
      const raw = readFileSync(file);
      text = file.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
    } catch {
      continue;
    }
    if (/^CONFIG_GPIO_SYSFS=y$/m.test(text)) return { value: 'y', from: file };
    return { value: 'n', from: file };
  }
  return { value: undefined, from: undefined };
}

function writable(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Each thing the onoff driver needs from this kernel, with what to do when it is missing. */
export function gpioKernelChecks(paths: GpioKernelPaths = {}): GpioKernelCheck[] {
  const sysfs = paths.sysfs ?? GPIO_SYSFS;
  const exportFile = path.join(sysfs, 'export');
  const checks: GpioKernelCheck[] = [];
  const config = kernelGpioSysfs(paths.kernelConfig ?? ['/proc/config.gz', `/boot/config-${os.release()}`]);
  const otherDriver = 'or switch the lines to a Firmata relay board (kind: firmata)';
  if (existsSync(exportFile)) {
    checks.push({ check: 'GPIO sysfs (CONFIG_GPIO_SYSFS)', status: 'ok', detail: `${exportFile} present${config.from ? ` (CONFIG_GPIO_SYSFS=${config.value} in ${config.from})` : ''}` });
  } else {
    checks.push({
      check: 'GPIO sysfs (CONFIG_GPIO_SYSFS)',
      status: 'fail',
      detail: config.value === 'n' ? `this kernel is built without CONFIG_GPIO_SYSFS (${config.from}): no ${exportFile}` : `no ${exportFile}`,
      fix: `use a kernel with CONFIG_GPIO_SYSFS=y (Raspberry Pi OS kernels have it; upstream offers it only with CONFIG_EXPERT), ${otherDriver}`,
    });
    return checks;
  }
  if (writable(exportFile)) checks.push({ check: 'GPIO sysfs writable', status: 'ok', detail: `${exportFile} is writable by this user` });
  else {
    checks.push({
      check: 'GPIO sysfs writable',
      status: 'fail',
      detail: `${exportFile} is not writable by ${os.userInfo().username}`,
      fix: 'run as root, or add the user to the gpio group (sudo usermod -aG gpio $USER; Raspberry Pi OS\'s udev rules give /sys/class/gpio to it) and log in again',
    });
  }
  const chips = listGpioChips(sysfs);
  if (chips.length === 0) checks.push({ check: 'GPIO chips', status: 'warn', detail: `no gpiochip in ${sysfs}`, fix: 'the board\'s GPIO driver is not loaded (check dmesg)' });
  else {
    const dynamic = chips.some((c) => c.base >= 512);
    checks.push({
      check: 'GPIO chips',
      status: 'ok',
      detail: `${chips.map((c) => `${c.label} (${c.name}, base ${c.base}, ${c.ngpio} lines)`).join('; ')}${dynamic ? '; dynamic bases: name lines by chip label and offset, as the config does' : ''}`,
    });
  }
  const release = gpioReleaseBehaviour({ ...(paths.sysModule ? { sysModule: paths.sysModule } : {}), ...(paths.cmdline ? { cmdline: paths.cmdline } : {}) });
  if (release.strictGpiod === true) {
    checks.push({ check: 'GPIO released outputs', status: 'ok', detail: `strict_gpiod: a released output returns to an input (${release.evidence.join('; ')}); lines stay exported at their safe level on close` });
  } else {
    checks.push({ check: 'GPIO released outputs', status: 'ok', detail: release.strictGpiod === false ? `kept at their level (${release.evidence.join('; ')})` : 'not a Raspberry Pi pinctrl driver: lines stay exported at their safe level on close' });
  }
  return checks;
}
