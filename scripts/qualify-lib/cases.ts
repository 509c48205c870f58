// The cases a release must pass, per mode. proxy: the rig plays the MCU (rig/sota/proxy.ts) and the new
// image must install from every previous release as a full package and as a delta, survive a module power
// cut while the module downloads it and another while the MCU reads it, be refused when broken (the old
// release stays, verified by read-back), and be revertible (a plan back to the previous release).
import { digestOf } from '../../rig/images/digest.ts';
import type { Image } from '../../rig/images/image.ts';
import { Package } from '../../rig/images/package.ts';
import { deltaPackage, fullPackage, imageRef } from '../../rig/images/release.ts';
import type { Outcome } from '../../rig/sota/verdict.ts';

export const PROXY_CASES = ['full', 'delta', 'interrupted', 'corrupt', 'rollback'] as const;
export type ProxyCaseKind = (typeof PROXY_CASES)[number];

/**
 * dut: the image under test drives its own upgrade on the station's MCU (rig/sota/dut.ts). From every
 * previous release it must install as a full package and as a delta; survive a module power cut while it
 * reads the blocks, its own power cut while it writes them and another during the install, each ending in a
 * state the A/B design allows; be reverted by the bootloader when reset in its trial boot before it
 * confirmed; and, once installed, take the next upgrade itself.
 */
export const DUT_CASES = ['full', 'delta', 'interrupted', 'rollback', 'next'] as const;
export type DutCaseKind = (typeof DUT_CASES)[number];

/** What an A/B device may end in after a power cut or a reset at any moment: never bricked, never inconsistent. */
export const SAFE_OUTCOMES: Outcome[] = ['upgraded', 'failed-intact', 'rolled-back'];

export interface QualifyCase {
  kind: ProxyCaseKind | DutCaseKind;
  name: string;
  /** Distinguishes two cases of one kind in file names (the two interrupted ones). */
  tag?: string;
  /** The release in the slot when the case starts. */
  from: Image;
  pkg: Package;
  expect: Outcome[];
  /** What the slot must hold at the end. */
  holds: Image;
  faults: string[];
  /** A power or reset line the case needs: [action, part]. */
  needs?: ['cycle' | 'reset', 'module' | 'target'];
  /**
   * dut: the faults to use instead on a station with an MCU console, which shows the moment more exactly
   * (`start trial` where the taps only show the image's first command, after it may have confirmed).
   */
  consoleFaults?: string[];
  /** dut `next`: the upgrade the newly installed image must take itself, after this case's own. */
  then?: { pkg: Package; from: Image };
}

/** The new image with three body bytes flipped: the file matches what the cloud announces; the image inside is not the release. */
export function brokenPackage(image: Image): Package {
  const bytes = Uint8Array.from(image.bytes);
  for (const at of [Math.min(0x300, bytes.length - 1), Math.floor(bytes.length / 2), Math.max(0, bytes.length - 16)]) bytes[at]! ^= 0xff;
  return new Package(bytes, { name: `broken_${image.version}`, component: image.component, version: image.version, type: 'full', sourceVersion: undefined, declared: digestOf(bytes), source: undefined, target: imageRef(image) });
}

/** What the mode-specific cases of one release are built from. */
interface FromRelease {
  from: Image;
  /** `<from> → <next>` versions, for names. */
  v: string;
  to: string;
  full: Package;
  /** A block-aligned offset in the middle of the full package: where a power cut hits the block reads. */
  half: number;
}

/**
 * From each previous release: the new image as a full package and as a delta (every mode), then what the
 * mode adds (`more`).
 */
async function casesFrom(next: Image, previous: readonly Image[], kinds: readonly string[], more: (r: FromRelease) => QualifyCase[]): Promise<QualifyCase[]> {
  const cases: QualifyCase[] = [];
  const full = fullPackage(next);
  for (const from of previous) {
    const name = `${from.version} → ${next.version}`;
    if (kinds.includes('full')) cases.push({ kind: 'full', name: `full ${name}`, from, pkg: full, expect: ['upgraded'], holds: next, faults: [] });
    if (kinds.includes('delta')) cases.push({ kind: 'delta', name: `delta ${name}`, from, pkg: await deltaPackage(from, next), expect: ['upgraded'], holds: next, faults: [] });
    cases.push(...more({ from, v: from.version, to: next.version, full, half: Math.floor(full.size / 2048) * 1024 }));
  }
  return cases;
}

export function proxyCases(next: Image, previous: readonly Image[], kinds: readonly ProxyCaseKind[]): Promise<QualifyCase[]> {
  return casesFrom(next, previous, kinds, ({ from, v, to, full, half }) => {
    const cases: QualifyCase[] = [];
    if (kinds.includes('interrupted')) {
      // Two moments a field unit loses power: while the module fetches the file (the download restarts from
      // 0 after the reboot) and while the MCU reads it (the reads resume or restart). The first is keyed to
      // 10701 (download started), not to a 10702: 10702 comes every 5 s, so a fast download may see none.
      cases.push({ kind: 'interrupted', name: `interrupted download (cloud → module) ${v} → ${to}`, tag: 'cut-download', from, pkg: full, expect: ['upgraded'], holds: next, faults: ['event=10701:power-cycle-module=500'], needs: ['cycle', 'module'] });
      cases.push({ kind: 'interrupted', name: `interrupted block reads ${v} → ${to}`, tag: 'cut-reads', from, pkg: full, expect: ['upgraded'], holds: next, faults: [`offset=${half}:power-cycle-module=500`], needs: ['cycle', 'module'] });
    }
    if (kinds.includes('corrupt')) cases.push({ kind: 'corrupt', name: `broken image ${v} → ${to} refused`, from, pkg: brokenPackage(next), expect: ['failed-intact'], holds: from, faults: [] });
    if (kinds.includes('rollback')) cases.push({ kind: 'rollback', name: `rollback ${to} → ${v}`, from: next, pkg: fullPackage(from), expect: ['upgraded'], holds: from, faults: [] });
    return cases;
  });
}

export function dutCases(next: Image, previous: readonly Image[], kinds: readonly DutCaseKind[]): Promise<QualifyCase[]> {
  return casesFrom(next, previous, kinds, ({ from, v, to, full, half }) => {
    const cases: QualifyCase[] = [];
    if (kinds.includes('interrupted')) {
      // The module restarts mid-read: the MCU must read the piece the module serves anew, and install it.
      cases.push({ kind: 'interrupted', name: `module power cut in the block reads ${v} → ${to}`, tag: 'cut-module', from, pkg: full, expect: ['upgraded'], holds: next, faults: [`offset=${half}:power-cycle-module=300`], needs: ['cycle', 'module'] });
      // The MCU loses power while it writes slot B, and during the install (the bootloader's swap): any state
      // the A/B design allows, never bricked or inconsistent.
      cases.push({ kind: 'interrupted', name: `MCU power cut while it writes blocks ${v} → ${to}`, tag: 'cut-writes', from, pkg: full, expect: SAFE_OUTCOMES, holds: next, faults: [`offset=${half}:power-cycle-target=200`], needs: ['cycle', 'target'] });
      cases.push({ kind: 'interrupted', name: `MCU power cut during the install ${v} → ${to}`, tag: 'cut-install', from, pkg: full, expect: SAFE_OUTCOMES, holds: next, faults: ['after-update3+50ms:power-cycle-target=200'], needs: ['cycle', 'target'] });
    }
    if (kinds.includes('rollback')) {
      cases.push({
        kind: 'rollback',
        name: `reset in the trial boot of ${to}: reverted to ${v}`,
        from,
        pkg: full,
        // Reset before it confirmed: reverted. Without a console the earliest sign of the new image is its first
        // command, which may come after it confirmed: then it stays (upgraded), which the design allows too.
        expect: ['rolled-back', 'upgraded'],
        holds: from,
        faults: ['before-version-report:reset-target=50'],
        consoleFaults: ['console=start trial:reset-target=50'],
        needs: ['reset', 'target'],
      });
    }
    if (kinds.includes('next')) {
      cases.push({ kind: 'next', name: `${to} takes the next upgrade itself (${v} → ${to} → ${v})`, from, pkg: full, expect: ['upgraded'], holds: from, faults: [], then: { pkg: fullPackage(from), from: next } });
    }
    return cases;
  });
}
