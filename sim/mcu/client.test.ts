// The reference client and every planted defect on an in-process station (the real module, cloud, target
// and MCU models; no ptys): each scenario of fixtures/README.md, with what the flash, the boot record, the
// UART taps, the console and the module show at its end (docs/virtual-mcu.md §6, §7).
import { afterEach, describe, expect, test } from 'vitest';
import { Ota } from '../module/module.ts';
import { readRecord } from './record.ts';
import { mcuFixture, testbed, type Testbed, type TestbedOptions } from './testbed.ts';

const benches: Testbed[] = [];
afterEach(() => {
  for (const b of benches.splice(0)) b.close();
});

function bench(o: TestbedOptions): Testbed {
  const b = testbed({ timeScale: 0.01, ...o });
  benches.push(b);
  return b;
}

const image = (name: string): Buffer => mcuFixture(name);
const SLOT_A = 0x08020000;
const SLOT_B = 0x08040000;

/** Starts a plan for `file` once the MCU has reported its version and asked for a plan. */
async function plan(b: Testbed, file: string, extra: { minBattery?: number; minSignal?: number; type?: 'delta'; sourceVersion?: string; version?: string } = {}): Promise<void> {
  await b.until(() => b.tapText('mcuToModule').includes('AT+QIOTOTAREQ=1\r'), 'the plan request');
  const pkg = b.cloud.addPackage({ component: 'STM32', version: extra.version ?? '2_0_0', type: extra.type ?? 'full', sourceVersion: extra.sourceVersion, data: image(file) });
  b.cloud.addPlan({ components: [{ component: 'STM32', packageId: pkg.id }], minBattery: extra.minBattery, minSignal: extra.minSignal });
}

const moduleSaid = (b: Testbed, code: number): boolean => b.tapText('moduleToMcu').includes(`\r\n+QIOTEVT: 7,${code}\r\n`);
const record = (b: Testbed) => readRecord(b.target.flash.bytes, b.layout).inForce;
const slotHolds = (b: Testbed, address: number, file: string): boolean => b.flash(address, image(file).length).equals(image(file));
const lineAfter = (b: Testbed, re: RegExp, after: RegExp): boolean => {
  const i = b.console.lines.findIndex((l) => after.test(l));
  return i >= 0 && b.console.lines.slice(i + 1).some((l) => re.test(l));
};

describe('the reference client', () => {
  test('several pieces (module free space 4 KiB): AT+QIOTUPDATE=2 between them; upgraded and confirmed', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin', module: { freeSpace: 4096 } });
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => moduleSaid(b, 10705), '10705');
    expect(b.console.lines.filter((l) => l.startsWith('[app] piece '))).toEqual(['[app] piece 0+4096 of 8960', '[app] piece 4096+4096 of 8960', '[app] piece 8192+768 of 8960']);
    expect(b.tapText('mcuToModule').match(/AT\+QIOTUPDATE=2\r/g)).toHaveLength(2);
    expect(slotHolds(b, SLOT_A, 'STM32_2_0_0.bin')).toBe(true);
    expect(record(b)).toMatchObject({ state: 'confirmed' });
  });

  test('a module reboot mid-download: it registers again and restarts from the piece the module announces', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin', cloud: { retryDelayMs: 500 } });
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => b.console.lines.includes('[app] block 3072+1024'), 'four blocks read');
    b.rails.set('moduleVbat', false);
    b.rails.set('moduleVbat', true);
    await b.until(() => moduleSaid(b, 10705), '10705');
    const blocks = b.console.lines.filter((l) => l.startsWith('[app] block '));
    expect(blocks.filter((l) => l === '[app] block 0+1024')).toHaveLength(2);
    expect(slotHolds(b, SLOT_A, 'STM32_2_0_0.bin')).toBe(true);
  });

  test('a corrupted download is rejected before the install: no AT+QIOTUPDATE=3, 10706, slot A untouched', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin' });
    b.cloud.corruptNextDownload(1);
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => b.console.lines.includes('[app] 10706: upgrade failed'), 'the failure');
    expect(b.console.lines.some((l) => /^\[app\] download rejected: md5 [0-9a-f]{32}, 10701 says [0-9a-f]{32}$/.test(l))).toBe(true);
    expect(b.tapText('mcuToModule')).not.toContain('AT+QIOTUPDATE=3');
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0.bin')).toBe(true);
    expect(record(b)).toMatchObject({ seq: 1, state: 'confirmed' });
  });

  test('battery and signal limits of the plan: refused with AT+QIOTUPDATE=0 and the reason on the console', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin', mcu: { batteryPercent: 20 } });
    await plan(b, 'STM32_2_0_0.bin', { minBattery: 30 });
    await b.until(() => b.console.lines.includes('[app] plan ->2_0_0 refused: battery 20% below 30%'), 'the refusal');
    expect(b.tapText('mcuToModule')).toContain('AT+QIOTUPDATE=0\r');

    const c = bench({ slotA: 'STM32_1_0_0.bin' });
    c.module.setSignal(5, 99); // -103 dBm
    await plan(c, 'STM32_2_0_0.bin', { minSignal: -90 });
    await c.until(() => c.console.lines.includes('[app] plan ->2_0_0 refused: signal -103 dBm below -90 dBm'), 'the refusal');
    expect(c.tapText('mcuToModule')).toContain('AT+CSQ\r');
  });
});

describe('planted defects of the new image', () => {
  test('never-confirms: self-test fails, the watchdog resets it, the bootloader reverts → rolled back to 1_0_0, 10706', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin' });
    await plan(b, 'STM32_2_0_0-never-confirms.bin');
    await b.until(() => b.console.lines.includes('[app] STM32 1_0_0 start confirmed') && lineAfter(b, /^\[app\] STM32 1_0_0 start confirmed$/, /^\[boot\] revert: /), 'the revert');
    await b.until(() => moduleSaid(b, 10706), '10706');
    expect(b.console.lines).toEqual(expect.arrayContaining(['[app] STM32 2_0_0 start trial', '[app] self-test failed', '[wdg] watchdog reset', '[boot] revert: STM32 2_0_0 was not confirmed', '[boot] boot slot A STM32 1_0_0 confirmed']));
    expect(b.console.lines).not.toContain('[app] confirmed');
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0.bin')).toBe(true);
    expect(slotHolds(b, SLOT_B, 'STM32_2_0_0-never-confirms.bin')).toBe(true);
    expect(record(b)).toMatchObject({ state: 'confirmed' });
    expect(b.mcu.stats.watchdogResets).toBe(1);
    // The image in trial never told the module anything: the old version after the revert settles the OTA.
    expect(b.tapText('mcuToModule')).not.toContain('AT+QIOTMCUVER="STM32","2_0_0"');
  });

  test('crash-at-boot: a hard fault at start, the watchdog, the revert → rolled back', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin' });
    await plan(b, 'STM32_2_0_0-crash-at-boot.bin');
    await b.until(() => lineAfter(b, /^\[app\] STM32 1_0_0 start confirmed$/, /^\[boot\] revert: STM32 2_0_0 was not confirmed$/), 'the revert');
    await b.until(() => moduleSaid(b, 10706), '10706');
    expect(lineAfter(b, /^\[wdg\] watchdog reset$/, /^\[app\] crash: /)).toBe(true);
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0.bin')).toBe(true);
  });

  test('wrong-version: installed and confirmed, but it reports 2_0_0_x → 10706 (inconsistent)', async () => {
    const b = bench({ slotA: 'STM32_1_0_0.bin' });
    await plan(b, 'STM32_2_0_0-wrong-version.bin');
    await b.until(() => moduleSaid(b, 10706), '10706');
    expect(b.tapText('mcuToModule')).toContain('AT+QIOTMCUVER="STM32","2_0_0_x"\r');
    expect(b.console.lines).toContain('[app] STM32 2_0_0_x start trial');
    expect(slotHolds(b, SLOT_A, 'STM32_2_0_0-wrong-version.bin')).toBe(true);
    expect(record(b)).toMatchObject({ state: 'confirmed' });
    expect(b.module.snapshot().mcuVersions).toEqual({ STM32: '2_0_0_x' });
  });
});

describe('planted defects of the client that runs the download', () => {
  test('skip-md5: a corrupted download is installed anyway (AT+QIOTUPDATE=3); the bootloader refuses slot B → old image, 10706', async () => {
    const b = bench({ slotA: 'STM32_1_0_0-skip-md5.bin' });
    b.cloud.corruptNextDownload(1);
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => moduleSaid(b, 10706), '10706');
    expect(b.console.lines).toContain('[app] download complete: md5 not checked');
    expect(b.tapText('mcuToModule')).toContain('AT+QIOTUPDATE=3\r');
    expect(b.console.lines.some((l) => /^\[boot\] slot B bad: STM32 2_0_0: body CRC 0x[0-9a-f]{8}, header says 0x[0-9a-f]{8}$/.test(l))).toBe(true);
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0-skip-md5.bin')).toBe(true);
    expect(record(b)).toMatchObject({ state: 'confirmed' });
  });

  test('wrong-offset: every block lands 4 bytes further on in slot B; the bootloader finds no image there → old image, 10706', async () => {
    const b = bench({ slotA: 'STM32_1_0_0-wrong-offset.bin' });
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => moduleSaid(b, 10706), '10706');
    expect(b.console.lines).toContain('[app] download complete: md5 ok');
    expect(b.console.lines).toContain('[boot] slot B bad: no valid image header');
    const img = image('STM32_2_0_0.bin');
    expect(b.flash(SLOT_B + 4, img.length).equals(img)).toBe(true);
    expect(b.flash(SLOT_B, 4).equals(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBe(true);
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0-wrong-offset.bin')).toBe(true);
  });

  test('no-restart: after a module reboot it reads on from its old offset; the MD5 then fails → 10706, not upgraded', async () => {
    const b = bench({ slotA: 'STM32_1_0_0-no-restart.bin', cloud: { retryDelayMs: 500 } });
    await plan(b, 'STM32_2_0_0.bin');
    await b.until(() => b.console.lines.includes('[app] block 3072+1024'), 'four blocks read');
    b.rails.set('moduleVbat', false);
    b.rails.set('moduleVbat', true);
    await b.until(() => b.console.lines.includes('[app] 10706: upgrade failed'), 'the failure');
    const pieces = b.console.lines.map((l, i) => [l, i] as const).filter(([l]) => l === '[app] piece 0+8960 of 8960');
    expect(pieces).toHaveLength(2);
    // The first block after the second announcement is not block 0.
    expect(b.console.lines.slice(pieces[1]![1] + 1).find((l) => l.startsWith('[app] block '))).not.toBe('[app] block 0+1024');
    expect(b.console.lines.some((l) => l.startsWith('[app] download rejected: md5 '))).toBe(true);
    expect(slotHolds(b, SLOT_A, 'STM32_1_0_0-no-restart.bin')).toBe(true);
  });

  test('ignores-10706: after a failed plan it never answers the next 10700 (the reference client does)', async () => {
    for (const [file, stuck] of [['STM32_1_0_0-ignores-10706.bin', true], ['STM32_1_0_0.bin', false]] as const) {
      const b = bench({ slotA: file });
      b.cloud.corruptNextDownload(1);
      await plan(b, 'STM32_2_0_0.bin');
      await b.until(() => moduleSaid(b, 10706), '10706');
      const tapped = b.tapText('moduleToMcu').length;
      const pkg = b.cloud.addPackage({ component: 'STM32', version: '1_1_0', type: 'full', data: image('STM32_1_1_0.bin') });
      b.cloud.addPlan({ components: [{ component: 'STM32', packageId: pkg.id }] });
      await b.until(() => b.tapText('moduleToMcu').indexOf('+QIOTEVT: 7,10700,"STM32","","1_1_0"', tapped) >= 0, 'the second 10700');
      if (stuck) {
        // A minute of the MCU's own time later it still has not answered; the module waits in RECEIVED_PLAN.
        await new Promise<void>((resolve) => b.mcu.rt.after(60_000, resolve));
        expect(b.module.otaState).toBe('RECEIVED_PLAN');
        expect((b.mcu.snapshot().application as { state: string }).state).toBe('stuck');
        expect(b.console.lines).not.toContain('[app] 10706: upgrade failed');
      } else {
        await b.until(() => b.module.otaState === Object.keys(Ota)[0] && moduleSaid(b, 10705), 'the second plan installed', 30_000);
        expect(slotHolds(b, SLOT_A, 'STM32_1_1_0.bin')).toBe(true);
      }
    }
  });
});
