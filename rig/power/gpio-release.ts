// What the running kernel does with a GPIO output that is released (sysfs unexport, a libgpiod request
// closed): keep driving it, or return it to an input. It is the pinctrl driver's choice, not gpiolib's, so
// there is no /sys/module/gpiolib parameter for it. On a Raspberry Pi it is the `persist_gpio_outputs`
// parameter of pinctrl_bcm2835 (Pi 0–4) and pinctrl_rp1 (Pi 5): upstream defaults it to N (release =
// input), Pi kernels to Y, and `dtparam=strict_gpiod` in config.txt turns it to N by appending
// `pinctrl_bcm2835.persist_gpio_outputs=n` to the kernel command line (raspberrypi/linux#6117, #6150).
//
// Verified from sources: the bcm2835 parameter's name, its Y/N default on each kernel, and the dtparam's
// bootargs. Unverified (no Pi 5 here): that the Pi 5 dtparam names pinctrl_rp1 the same way, and that
// kernels from between #6117 and #6150 (parameter then called `strict_gpiod`, Y = strict) expose it in
// /sys/module; both are read below on that assumption. A board with another pinctrl driver answers
// "unknown" rather than a guess.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const DRIVERS = ['pinctrl_bcm2835', 'pinctrl_rp1'] as const;

export interface GpioReleaseBehaviour {
  /**
   * true: a released output becomes an input (strict gpiod; a relay driver on an unexported line floats).
   * false: it keeps its level. undefined: this kernel does not say (not a Raspberry Pi pinctrl driver).
   */
  strictGpiod: boolean | undefined;
  /** Where the answer came from, e.g. "/sys/module/pinctrl_rp1/parameters/persist_gpio_outputs = N". */
  evidence: string[];
}

export interface KernelPaths {
  sysModule?: string;
  cmdline?: string;
}

/** The kernel's reading of a bool parameter (kstrtobool): y/Y/1/on, n/N/0/off; a bare name is true. */
function kernelBool(text: string | undefined): boolean | undefined {
  if (text === undefined || text === '') return true;
  const v = text.trim().toLowerCase();
  if (v === 'y' || v === '1' || v === 'on' || v === 'yes') return true;
  if (v === 'n' || v === '0' || v === 'off' || v === 'no') return false;
  return undefined;
}

function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `strict` from a parameter: persist_gpio_outputs=N and the older strict_gpiod=Y both mean strict. */
function strictFrom(param: string, value: boolean | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  return param === 'persist_gpio_outputs' ? !value : value;
}

/**
 * Whether released GPIO outputs return to inputs on this kernel (`strict_gpiod`). The module parameter is
 * read first (it is what the driver uses, whatever set it); the kernel command line only when no
 * parameter is exposed. Any driver that is strict makes the answer strict.
 */
export function gpioReleaseBehaviour(paths: KernelPaths = {}): GpioReleaseBehaviour {
  const sysModule = paths.sysModule ?? '/sys/module';
  const cmdlineFile = paths.cmdline ?? '/proc/cmdline';
  const evidence: string[] = [];
  const verdicts: boolean[] = [];

  for (const driver of DRIVERS) {
    for (const param of ['persist_gpio_outputs', 'strict_gpiod']) {
      const file = path.join(sysModule, driver, 'parameters', param);
      const text = readTrimmed(file);
      if (text === undefined) continue;
      const strict = strictFrom(param, kernelBool(text));
      evidence.push(`${file} = ${text}`);
      if (strict !== undefined) verdicts.push(strict);
    }
  }

  if (verdicts.length === 0) {
    // The kernel takes the last of repeated parameters (config.txt's dtparam appends to cmdline.txt's).
    const lastByParam = new Map<string, { arg: string; strict: boolean | undefined }>();
    for (const arg of (readTrimmed(cmdlineFile) ?? '').split(/\s+/)) {
      // Module parameter names treat - and _ alike on the command line.
      const m = /^(pinctrl[-_](?:bcm2835|rp1))\.(persist[-_]gpio[-_]outputs|strict[-_]gpiod)(?:=(.*))?$/.exec(arg);
      if (!m) continue;
      const param = m[2]!.replaceAll('-', '_');
      lastByParam.set(`${m[1]!.replaceAll('-', '_')}.${param}`, { arg, strict: strictFrom(param, kernelBool(m[3])) });
    }
    for (const { arg, strict } of lastByParam.values()) {
      evidence.push(`${cmdlineFile}: ${arg}`);
      if (strict !== undefined) verdicts.push(strict);
    }
  }

  return { strictGpiod: verdicts.length === 0 ? undefined : verdicts.includes(true), evidence };
}
