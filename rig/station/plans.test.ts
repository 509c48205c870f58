// The declared plan source (hardware: plans an operator created in Developer Center) and the station's
// protocol timeouts. The api source is tested against the sim in open.test.ts.
import { describe, expect, test } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../config/load.ts';
import type { PlansConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { crc32 } from '../images/crc.ts';
import { loadManifest } from '../images/manifest.ts';
import { InfrastructureError } from '../errors.ts';
import { ApiPlanSource, openPlanSource } from './plans.ts';
import { DEFAULT_PROTOCOL_TIMEOUTS, resolveTimeouts } from './timeouts.ts';

function declared(plans: unknown[], crcAlgorithm?: string): PlansConfig {
  const c = parseConfig({
    stations: {
      'bench-2': {
        module: { port: '/dev/ttyX' },
        probe: { interface: { kind: 'stlink' }, target: 'stm32f4x' },
        layout: { slotAddress: 0x0800_0000, slotSize: 1024 },
        plans: { kind: 'declared', plans, ...(crcAlgorithm ? { crcAlgorithm } : {}) },
      },
    },
  });
  const station = c.stations['bench-2']!;
  if (station.kind !== 'hardware') throw new Error('bench-2 is not a hardware station');
  return station.plans;
}

describe('declared plans', () => {
  test('a plan declared by manifest name: the expected 10700/10701 values come from the package bytes', async () => {
    const fw = await loadManifest();
    const pkg = fw.package('delta_1_0_0_to_2_0_0');
    const source = openPlanSource(declared([{ name: 'delta 1→2', package: 'delta_1_0_0_to_2_0_0', sourceVersion: '1_0_0', targetVersion: '2_0_0', minBattery: 30 }]), { station: 'bench-2' });
    expect(source.kind).toBe('declared');
    expect(source.cloudFaults).toEqual([]);
    const plan = await source.prepare({ component: 'STM32', package: pkg, minBattery: 30 });
    expect(plan).toEqual({
      id: 'delta 1→2',
      expected: {
        component: 'STM32',
        sourceVersion: '1_0_0',
        targetVersion: '2_0_0',
        size: pkg.bytes.length,
        md5: pkg.md5,
        crc: crc32(pkg.bytes),
        crcAlgorithm: 'crc-32',
        sha256: pkg.sha256,
        minBattery: 30,
        minSignal: 0,
      },
    });
    await source.clear();
  });

  test('a plan declared by file hash, with another CRC algorithm', async () => {
    const fw = await loadManifest();
    const pkg = fw.package('full_1_1_0');
    const source = openPlanSource(declared([{ name: 'full 1.1.0', package: { file: 'STM32_1_1_0.bin', sha256: pkg.sha256, md5: pkg.md5 }, targetVersion: '1_1_0' }], 'crc-32/mpeg-2'), {
      station: 'bench-2',
    });
    const plan = await source.prepare({ component: 'STM32', package: pkg });
    expect(plan.expected.crc).toBe(crc32(pkg.bytes, 'crc-32/mpeg-2'));
    expect(plan.expected.crc).not.toBe(crc32(pkg.bytes));
    // The flow checks 10701's CRC with the algorithm the prepared plan names.
    expect(plan.expected.crcAlgorithm).toBe('crc-32/mpeg-2');
  });

  test('an upgrade no declared plan delivers is a ConfigError listing what is declared', async () => {
    const fw = await loadManifest();
    const source = openPlanSource(
      declared([
        { name: 'full 2.0.0', package: 'full_2_0_0', targetVersion: '2_0_0' },
        { name: 'full 1.1.0', package: { file: 'x.bin', sha256: fw.package('full_1_1_0').sha256 }, targetVersion: '1_1_0' },
      ]),
      { station: 'bench-2' },
    );
    // Right package, wrong battery threshold: the plan in the console would announce another 10700.
    const err = await source.prepare({ component: 'STM32', package: fw.package('full_2_0_0'), minBattery: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^bench-2: no declared plan delivers STM32 full 2_0_0/);
    expect(msg).toContain('battery ≥ 50');
    expect(msg).toContain('"full 2.0.0" (any component full → 2_0_0, full_2_0_0, battery ≥ 0, signal ≥ 0)');
    // A package with other bytes under a declared version is not the declared plan either.
    await expect(source.prepare({ component: 'STM32', package: fw.package('corrupt_full_2_0_0') })).rejects.toThrow(/no declared plan delivers/);
    await expect(source.injectCloudFault('corrupt-next-download')).rejects.toThrow(/Developer Center has no API for faults/);
  });
});

describe('the api plan source when the API is not there', () => {
  test('a refused connection is an InfrastructureError naming the station, the request and what was seen', async () => {
    const fw = await loadManifest();
    // A loopback port that was just free: nothing listens there, the kernel refuses at once.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const source = new ApiPlanSource(`http://127.0.0.1:${port}`, { station: 'bench-3', requestTimeoutMs: 2000 });
    const err = await source.prepare({ component: 'STM32', package: fw.package('full_2_0_0') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toBe(
      `bench-3: plan API: uploading package full_2_0_0 failed (POST http://127.0.0.1:${port}/packages)\n  (expected an answer from the plan API; seen connect ECONNREFUSED 127.0.0.1:${port})`,
    );
    await source.clear(); // nothing was created, nothing to end
  });
});

describe('protocol timeouts', () => {
  test('defaults are the protocol document’s timers', () => {
    expect(resolveTimeouts()).toEqual(DEFAULT_PROTOCOL_TIMEOUTS);
    expect(DEFAULT_PROTOCOL_TIMEOUTS).toMatchObject({ urlWaitMs: 30_000, downloadNotifyMs: 5_000, readInactivityMs: 60_000, updateWaitMs: 1_200_000, commandMs: 2_000 });
  });

  test('the module’s timers scale with the time scale; command bound and margin floor do not', () => {
    const t = resolveTimeouts({ timeScale: 0.01 });
    expect(t).toMatchObject({ urlWaitMs: 300, downloadNotifyMs: 50, readInactivityMs: 600, updateWaitMs: 12_000, commandMs: 2_000, marginMs: 1_000 });
  });

  test('overrides are in the module’s time and scale too, except commandMs and marginMs', () => {
    const t = resolveTimeouts({ timeScale: 0.5, urlWaitMs: 10_000, commandMs: 500, marginMs: 250 });
    expect(t).toMatchObject({ urlWaitMs: 5_000, commandMs: 500, marginMs: 250, readInactivityMs: 30_000 });
  });
});
