// runDutUpgrade refuses what it cannot run, before it touches the station: each a ConfigError naming the
// station, what was expected and what was seen. (The flow itself runs end to end in suites/dut*.test.ts on
// the virtual MCU.)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { loadManifest } from '../images/manifest.ts';
import type { Station, StationMcu } from '../station/station.ts';
import { runDutUpgrade } from './dut.ts';
import { parseFault } from './faults.ts';
import { vmcuLayout as layout } from './testing/layout.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');


/** Only what the checks read: any use of the probe, the module or the plans would throw. */
function station(mcu: Partial<StationMcu> | undefined): Station {
  const untouchable = new Proxy({}, { get: (_t, k) => { throw new Error(`the run touched the station (${String(k)}) before refusing`); } });
  return {
    name: 'bench-3',
    component: 'STM32',
    timeouts: { commandMs: 2000, bootMs: 30000, registerMs: 60000, planWaitMs: 60000, urlWaitMs: 30000, downloadNotifyMs: 5000, readInactivityMs: 60000, updateWaitMs: 1_200_000, marginMs: 5000 },
    power: { can: () => true },
    plans: { cloudFaults: [] },
    ...(mcu ? { mcu: { layout, bootRecord: 'vmcu-1', console: undefined, ...mcu } } : {}),
    probe: untouchable,
    module: untouchable,
  } as unknown as Station;
}

describe('runDutUpgrade refuses before it starts', async () => {
  const dut = await loadManifest(path.join(root, 'fixtures', 'mcu', 'manifest.json'));
  const proxy = await loadManifest(path.join(root, 'fixtures', 'manifest.json'));
  const plan = { component: 'STM32', package: dut.package('full_2_0_0') };

  it.each([
    ['a station without its MCU side', station(undefined), { plan, from: dut.image('1_0_0') }, /bench-3: dut mode needs the station’s MCU side/],
    ['a starting image linked for another address', station({}), { plan, from: proxy.image('1_0_0') }, /bench-3: image 1_0_0 is not linked for slot A\n {2}\(expected load address 0x8020000 \(the bootloader boots slot A only\); seen 0x8000000\)/],
    ['a delta from another release', station({}), { plan: { component: 'STM32', package: dut.package('delta_1_0_0_to_2_0_0') }, from: dut.image('1_1_0') }, /delta delta_1_0_0_to_2_0_0 does not start from 1_1_0/],
    ['a console trigger on a station without a console', station({}), { plan, from: dut.image('1_0_0'), faults: [parseFault('console=BOOT:reset-target')] }, /console=BOOT:reset-target=100 \(stations\.bench-3\.mcu has no console\)/],
    ['a bootloader larger than its region', station({ layout: { ...layout, bootloader: { address: 0x0800_0000, size: 4096 } } }), { plan, from: dut.image('1_0_0'), bootloader: dut.image('vbl-1.0') }, /the bootloader does not fit its region/],
  ])('%s', async (_name, s, options, message) => {
    const err = await runDutUpgrade(s, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
  });
});
