// Which images of a firmware set a dut run uses: the bootloader to arrange at the flash base, and the
// releases an image under test must upgrade from. A dut set (fixtures/mcu/manifest.json) holds more than
// releases: bootloaders (role `bootloader`) and images with planted defects (a variant key such as
// `2_0_0-never-confirms`, and `defects` listed), which qualify must never mistake for field releases.
import { ConfigError } from '../errors.ts';
import type { Image } from '../images/image.ts';
import type { FirmwareSet } from '../images/manifest.ts';

const entry = (set: FirmwareSet, key: string) => set.entries.images[key];

/** No planted defect: the manifest lists none for it. */
export function isReference(set: FirmwareSet, key: string): boolean {
  return (entry(set, key)?.defects ?? []).length === 0;
}

/**
 * `key`, else the set's one bootloader without planted defects (role `bootloader`, or component BOOT), else
 * none: a bench keeps the bootloader it has. A ConfigError names a key the set does not have.
 */
export function dutBootloader(set: FirmwareSet, key?: string): Image | undefined {
  if (key !== undefined) {
    if (!set.images.has(key)) throw new ConfigError(`no bootloader image ${key}`, { expected: `one of ${[...set.images.keys()].join(', ')} (${set.manifestPath})`, seen: key });
    return set.image(key);
  }
  const boots = [...set.images].filter(([k, img]) => (entry(set, k)?.role === 'bootloader' || img.component === 'BOOT') && isReference(set, k));
  return boots.length === 1 ? boots[0]![1] : undefined;
}

/** The field releases of a set: applications of its component, keyed by their version, without planted defects. */
export function dutReleases(set: FirmwareSet): Image[] {
  return [...set.images].filter(([k, img]) => img.component === set.component && k === img.version && entry(set, k)?.role !== 'bootloader' && isReference(set, k)).map(([, img]) => img);
}
