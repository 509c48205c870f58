import { describe, expect, test } from 'vitest';
import { ConfigError } from '../errors.ts';
import { Image } from '../images/image.ts';
import { loadManifest } from '../images/manifest.ts';
import { Package } from '../images/package.ts';
import { completeRecord, recordedFirmware, type RunRecord } from './record.ts';
import { faultsNotReproduced, recordFirmware } from './replay.ts';

/** A record of a run whose package and image came from a temporary build (as in suites/upgrade-flow). */
async function tmpBuildRecord(): Promise<{ record: RunRecord; pkg: Package; from: Image }> {
  const manifest = await loadManifest();
  const base = manifest.package('full_2_0_0');
  const pkg = new Package(new Uint8Array([...base.bytes, 1]), { ...base, name: 'full_2_0_0' });
  const from = new Image(new Uint8Array([...manifest.image('1_0_0').bytes, 1]), manifest.image('1_0_0'));
  const record = {
    spec: { component: 'STM32', package: pkg.name },
    package: { name: pkg.name, type: 'full', version: '2_0_0', sourceVersion: null, size: pkg.size, sha256: pkg.sha256, targetSha256: pkg.target.sha256 },
    current: { version: from.version, size: from.size, sha256: from.sha256 },
    fired: [],
  } as unknown as RunRecord;
  return { record: completeRecord(record, { firmware: recordedFirmware(pkg, from, manifest) }), pkg, from };
}

describe('replay inputs', () => {
  test("a record from a temporary build replays with its own bytes, not the manifest's files of the same name", async () => {
    const { record, pkg, from } = await tmpBuildRecord();
    const got = await recordFirmware(record, 'virtual');
    expect(got.pkg.sha256).toBe(pkg.sha256);
    expect(got.pkg.name).toBe('full_2_0_0');
    expect(got.current.sha256).toBe(from.sha256);
    expect(got.current.version).toBe('1_0_0');
  });

  test('embedded bytes that do not hash to what the record says are refused, naming both hashes', async () => {
    const { record } = await tmpBuildRecord();
    const bytes = Buffer.from(record.firmware!.package!.base64, 'base64');
    bytes[100] = bytes[100]! ^ 0xff;
    const spoiled = { ...record, firmware: { ...record.firmware, package: { ...record.firmware!.package!, base64: bytes.toString('base64') } } };
    const err = await recordFirmware(spoiled, 'virtual').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain("the record's embedded package full_2_0_0 is damaged");
    expect((err as ConfigError).expected).toContain(record.package.sha256);
  });

  test('without embedded bytes, a manifest package that differs from the record is still refused', async () => {
    const { record } = await tmpBuildRecord();
    const { firmware: _f, ...bare } = record;
    await expect(recordFirmware(bare as RunRecord, 'virtual')).rejects.toThrow(/package full_2_0_0 is not the one the record used/);
  });

  test('a fault that fired in the record and not in the replay is not reproduced', () => {
    const fired = (...faults: string[]) => ({ fired: faults.map((fault) => ({ fault, t: 1, phase: 'download', effect: '' })) });
    expect(faultsNotReproduced(fired('event=10702:power-cycle-module=500'), fired())).toEqual(['event=10702:power-cycle-module=500']);
    expect(faultsNotReproduced(fired('a', 'b'), fired('b'))).toEqual(['a']);
    expect(faultsNotReproduced(fired('a'), fired('a'))).toEqual([]);
  });
});
