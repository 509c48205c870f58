// Stations and firmware for the benchmark: virtual stations opened through the rig's own openStation (so the
// rig drives them through its hardware code paths), a 256 KiB package made by the fixture tools, and the
// chores between measured runs (start from the baseline, settle an OTA the bench left in flight).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../rig/config/index.ts';
import type { EchoSetting, LoadedConfig } from '../../rig/config/index.ts';
import { InfrastructureError, ProtocolError } from '../../rig/errors.ts';
import { loadManifest } from '../../rig/images/index.ts';
import type { Image, Package } from '../../rig/images/index.ts';
import { isEvent, UpdateAction } from '../../rig/quecthing/index.ts';
import { ensureBaseline } from '../../rig/sota/index.ts';
import { openStation } from '../../rig/station/index.ts';
import type { OpenedStation } from '../../rig/station/index.ts';

/** The checkout: two levels up from the sources, three from their build in dist/ (item 5 runs compiled). */
export const ROOT = checkoutRoot(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..'));

function checkoutRoot(up: string): string {
  return existsSync(path.join(up, 'fixtures', 'manifest.json')) ? up : path.dirname(up);
}

export const PACKAGE_SIZE = 256 * 1024;
export const SLOT_ADDRESS = 0x0800_0000;
/** The 256 KiB package: the full package of 1_1_0 in a fixture set made with --size 262144 (fixtures.ts). */
export const PACKAGE_NAME = 'full_1_1_0';
/**
 * The sim's protocol clock runs 10× faster: the cloud's download of 256 KiB into the module and the URL
 * delay shrink, the UART pacing (wall clock) does not. The read-inactivity timer becomes 6 s, ample between
 * two block reads.
 */
export const TIME_SCALE = 0.1;

export interface BenchFirmware {
  /** What the target holds at the start of every run (the committed 24 KiB fixture 1_0_0, preloaded). */
  current: Image;
  currentFile: string;
  /** The 256 KiB full package the upgrades deliver. */
  pkg: Package;
  manifestPath: string;
}

export async function loadBenchFirmware(manifestPath: string): Promise<BenchFirmware> {
  const repo = await loadManifest(path.join(ROOT, 'fixtures', 'manifest.json'));
  const big = await loadManifest(manifestPath);
  const pkg = big.package(PACKAGE_NAME);
  if (pkg.size !== PACKAGE_SIZE) {
    throw new InfrastructureError(`the bench package ${PACKAGE_NAME} has the wrong size`, { expected: `${PACKAGE_SIZE} bytes`, seen: `${pkg.size} bytes (${manifestPath})` });
  }
  const current = repo.image('1_0_0');
  return { current, currentFile: path.join(ROOT, 'fixtures', repo.entries.images['1_0_0']!.file), pkg, manifestPath };
}

export interface BenchStationOptions {
  /** UART baud rate the sim paces at; 0 = an unpaced pty. */
  baud: number;
  firmware: BenchFirmware;
  seed?: number;
  /** The station's module.echo (default 'keep': the module echoes, as in Quectel's example). */
  echo?: EchoSetting;
}

/** The virtual station entry: room for the 256 KiB package in one piece, the current image preloaded. */
export function benchStationConfig(name: string, o: BenchStationOptions): LoadedConfig {
  return parseConfig(
    {
      stations: {
        [name]: {
          kind: 'virtual',
          // The schema wants a positive baud; the sim's own --baud 0 (unpaced) goes through simArgs, which
          // come last on its command line and so win. A proxy-mode bench has no use for the virtual MCU,
          // its taps and console: --mcu off keeps the figures those of the module, relay board and probe.
          baud: o.baud > 0 ? o.baud : 115200,
          simArgs: ['--mcu', 'off', ...(o.baud > 0 ? [] : ['--baud', '0'])],
          timeScale: TIME_SCALE,
          // One piece: the module's free space (4 MiB by default) is stated, so a changed default cannot
          // silently turn the read phase into several.
          moduleFreeSpace: 4 * 1024 * 1024,
          flashImage: o.firmware.currentFile,
          layout: { slotAddress: SLOT_ADDRESS, slotSize: PACKAGE_SIZE },
          ...(o.seed !== undefined ? { seed: o.seed } : {}),
          ...(o.echo !== undefined ? { module: { echo: o.echo } } : {}),
        },
      },
    },
    'bench',
  );
}

export function openBenchStation(name: string, o: BenchStationOptions): Promise<OpenedStation> {
  return openStation(name, { config: benchStationConfig(name, o) });
}

/** Whether the module echoes, as the station learned it when its port opened (the module answered AT). */
export function moduleEcho(station: OpenedStation): boolean {
  const echo = station.module.echo;
  if (echo === undefined) {
    throw new InfrastructureError('the station does not know whether its module echoes', { station: station.name, expected: 'an answered command since the last RDY', seen: 'none' });
  }
  return echo;
}

function callOptions(station: OpenedStation, signal?: AbortSignal): { timeoutMs: number; signal?: AbortSignal } {
  return { timeoutMs: station.timeouts.commandMs + station.timeouts.marginMs, ...(signal ? { signal } : {}) };
}

/** The rig's baseline strategy: known image in the slot, target running, module registered, no old plans. */
export async function baseline(station: OpenedStation, fw: BenchFirmware, signal?: AbortSignal): Promise<void> {
  await ensureBaseline(station, fw.current, signal ? { signal } : {});
}

/**
 * The bench stops each upgrade after its read phase, leaving the module in DOWNLOAD_OK. Reporting the
 * version the MCU really runs settles it (protocol §4.3: 10706), as the flow itself does for a bad download;
 * waiting for that 10706 keeps it from landing in the next run.
 */
export async function settleOta(station: OpenedStation, fw: BenchFirmware, signal?: AbortSignal): Promise<void> {
  const qt = station.module.qt;
  const events = qt.events();
  try {
    await qt.setMcuVersion(station.component, fw.current.version, callOptions(station, signal));
    await events.next(isEvent('ota-failed'), {
      timeoutMs: station.timeouts.commandMs + station.timeouts.marginMs,
      ...(signal ? { signal } : {}),
      expected: `+QIOTEVT: 7,10706 after AT+QIOTMCUVER="${station.component}","${fw.current.version}" in DOWNLOAD_OK`,
    });
  } finally {
    events.close();
  }
  await station.plans.clear(signal ? { signal } : {});
}

/**
 * For the peer: the plan requested and confirmed through the rig's QuecThing layer, up to 10703, so the
 * module holds the whole package as one piece. Returns the piece.
 */
export async function awaitPiece(station: OpenedStation, fw: BenchFirmware, signal?: AbortSignal): Promise<{ start: number; length: number }> {
  const qt = station.module.qt;
  const T = station.timeouts;
  const o = callOptions(station, signal);
  const plan = await station.plans.prepare({ component: station.component, package: fw.pkg }, signal ? { signal } : {});
  const events = qt.events();
  try {
    await qt.otaRequest({ sha256: true, ...o });
    const offer = await events.next(isEvent('ota-plan'), {
      timeoutMs: T.planWaitMs + T.marginMs,
      ...(signal ? { signal } : {}),
      expected: `+QIOTEVT: 7,10700 for plan ${plan.id}`,
      failOn: isEvent('ota-failed'),
    });
    if (offer.target !== plan.expected.targetVersion) {
      throw new ProtocolError('the module offered another plan', { station: station.name, expected: `target ${plan.expected.targetVersion}`, seen: offer.raw });
    }
    await qt.otaUpdate(UpdateAction.confirm, o);
    const piece = await events.next(isEvent('ota-piece-ready'), {
      timeoutMs: T.urlWaitMs + T.readInactivityMs + T.marginMs,
      ...(signal ? { signal } : {}),
      expected: '+QIOTEVT: 7,10703 (the whole package downloaded into the module)',
      failOn: isEvent('ota-failed'),
    });
    if (piece.start !== 0 || piece.length !== fw.pkg.size) {
      throw new ProtocolError('the package did not arrive as one piece', {
        station: station.name,
        expected: `10703 with start 0 and length ${fw.pkg.size} (module free space above the package size)`,
        seen: piece.raw,
      });
    }
    return { start: piece.start, length: piece.length };
  } finally {
    events.close();
  }
}
