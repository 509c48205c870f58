// Judging a slot read back over SWD, for every flow: the verdict rests on bytes — does the flash hold the
// target image, the image the run started from, or neither — and the component's version locator only helps
// to name bytes that are neither ("the MCUboot header names 2.1.0 but the body differs"). A pure function of
// the bytes read, so each case is tested without a station.
import { compareImages, describeComparison } from '../images/compare.ts';
import type { ImageRef } from '../images/delta.ts';
import { sha256Hex } from '../images/digest.ts';
import { identifyContent } from '../images/identify.ts';
import type { Image } from '../images/image.ts';
import type { VersionLocator } from '../images/locator.ts';
import type { ReadbackResult } from './verdict.ts';

export interface ReadbackContext {
  /** Flash address of the first byte read (the slot). */
  address: number;
  /** The image the run started from. */
  current: Image;
  /** The image the package produces, by reference (size, sha256, version). */
  target: ImageRef & { version: string };
  /** The target's bytes, when the flow rebuilt it (needed to say where a torn write differs). */
  targetImage?: Image | undefined;
  /** The flow wrote the target to flash: the flash should hold it by now. */
  programmed: boolean;
  /** More images to recognise (the release manifest's), besides current and target. */
  known?: Iterable<Image>;
  /** How the component's images name their version. */
  locator?: VersionLocator | undefined;
}

export function judgeReadback(flash: Uint8Array, ctx: ReadbackContext): ReadbackResult {
  const { address, current, target } = ctx;
  const matchesTarget = flash.length >= target.size && sha256Hex(flash.subarray(0, target.size)) === target.sha256;
  const matchesCurrent = flash.length >= current.size && current.equals(flash.subarray(0, current.size));
  // Compare against what the flash should hold by now: the new image once programmed, else the old one.
  const reference = (ctx.programmed || matchesTarget) && ctx.targetImage ? ctx.targetImage.bytes : current.bytes;
  const c = compareImages(reference, flash.subarray(0, reference.length), { baseAddress: address });
  const known = [current, ...(ctx.targetImage ? [ctx.targetImage] : []), ...(ctx.known ?? [])];
  const id = identifyContent(flash, { known, ...(ctx.locator ? { locator: ctx.locator } : {}) });
  // A target the flow did not rebuild is still known by its hash.
  const identified = id.image
    ? { component: id.image.component, version: id.image.version }
    : matchesTarget ? { component: current.component, version: target.version } : undefined;
  return {
    address,
    size: flash.length,
    identified,
    identity: matchesTarget && !id.image ? `${current.component} ${target.version} (${target.size} bytes, sha256 ${target.sha256.slice(0, 12)}…)` : id.text,
    matchesTarget,
    matchesCurrent,
    firstDifference: c.firstDifference === null ? null : address + c.firstDifference,
    comparison: describeComparison(c),
  };
}

/** The read-back attachment of a run's report. */
export function describeReadback(r: ReadbackResult, current: Image, targetVersion: string): string {
  return [
    `slot 0x${r.address.toString(16)}, ${r.size} bytes read`,
    `holds: ${r.identity}`,
    `target ${targetVersion}: ${r.matchesTarget ? 'matches' : 'differs'}`,
    `current ${current.version}: ${r.matchesCurrent ? 'matches' : 'differs'}`,
    `against the expected image: ${r.comparison}`,
  ].join('\n');
}
