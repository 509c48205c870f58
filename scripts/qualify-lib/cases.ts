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

export interface QualifyCase {
  kind: ProxyCaseKind;
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
  /** A power line the case needs: [action, role]. */
  needs?: ['cycle', 'module'];
}

/** The new image with three body bytes flipped: the file matches what the cloud announces; the image inside is not the release. */
export function brokenPackage(image: Image): Package {
  const bytes = Uint8Array.from(image.bytes);
  for (const at of [Math.min(0x300, bytes.length - 1), Math.floor(bytes.length / 2), Math.max(0, bytes.length - 16)]) bytes[at]! ^= 0xff;
  return new Package(bytes, { name: `broken_${image.version}`, component: image.component, version: image.version, type: 'full', sourceVersion: undefined, declared: digestOf(bytes), source: undefined, target: imageRef(image) });
}

export async function proxyCases(next: Image, previous: readonly Image[], kinds: readonly ProxyCaseKind[]): Promise<QualifyCase[]> {
  const cases: QualifyCase[] = [];
  const full = fullPackage(next);
  for (const from of previous) {
    const v = from.version;
    const to = next.version;
    const half = Math.floor(full.size / 2048) * 1024;
    if (kinds.includes('full')) cases.push({ kind: 'full', name: `full ${v} → ${to}`, from, pkg: full, expect: ['upgraded'], holds: next, faults: [] });
    if (kinds.includes('delta')) cases.push({ kind: 'delta', name: `delta ${v} → ${to}`, from, pkg: await deltaPackage(from, next), expect: ['upgraded'], holds: next, faults: [] });
    if (kinds.includes('interrupted')) {
      // Two moments a field unit loses power: while the module fetches the file (the download restarts from
      // 0 after the reboot) and while the MCU reads it (the reads resume or restart). The first is keyed to
      // 10701 (download started), not to a 10702: 10702 comes every 5 s, so a fast download may see none.
      cases.push({ kind: 'interrupted', name: `interrupted download (cloud → module) ${v} → ${to}`, tag: 'cut-download', from, pkg: full, expect: ['upgraded'], holds: next, faults: ['event=10701:power-cycle-module=500'], needs: ['cycle', 'module'] });
      cases.push({ kind: 'interrupted', name: `interrupted block reads ${v} → ${to}`, tag: 'cut-reads', from, pkg: full, expect: ['upgraded'], holds: next, faults: [`offset=${half}:power-cycle-module=500`], needs: ['cycle', 'module'] });
    }
    if (kinds.includes('corrupt')) cases.push({ kind: 'corrupt', name: `broken image ${v} → ${to} refused`, from, pkg: brokenPackage(next), expect: ['failed-intact'], holds: from, faults: [] });
    if (kinds.includes('rollback')) cases.push({ kind: 'rollback', name: `rollback ${to} → ${v}`, from: next, pkg: fullPackage(from), expect: ['upgraded'], holds: from, faults: [] });
  }
  return cases;
}
