// The bench's 256 KiB firmware, made by the fixture tools (scripts/make-fixtures.ts --size 262144) into a
// directory of the caller's; kept apart from stations.ts so the measured processes never load zx.
import path from 'node:path';
import { makeFixtures } from '../make-fixtures.ts';
import { PACKAGE_SIZE, SLOT_ADDRESS } from './stations.ts';

/** Generates the fixture set into `dir`; returns its manifest path. */
export async function makeBenchFixtures(dir: string): Promise<string> {
  await makeFixtures({ out: dir, size: PACKAGE_SIZE, loadAddress: SLOT_ADDRESS, seed: 'sota-rig-bench' });
  return path.join(dir, 'manifest.json');
}
