// The virtual bootloader (docs/virtual-mcu.md §4): reads the boot record, verifies and installs a pending
// image by exchanging slots A and B unit by unit through the scratch area with a status entry after each
// step (MCUboot's swap-with-scratch, reduced), resumes a swap a power cut interrupted, reverts an image that
// did not confirm its trial, and boots slot A with the watchdog armed. The unsafe-swap variant (descriptor
// defect bit 16) exchanges through RAM without scratch or status log: a cut leaves slot A torn, and the
// restarted swap exchanges the units already done a second time.
import { offsetOf, type Firmware } from './firmware.ts';
import { checkImage, readHeader, type ImageHeader } from './image.ts';
import { appendLog, readRecord, writeRecord, type BootRecord, type RecordView } from './record.ts';

export interface Boot {
  header: ImageHeader;
  trial: boolean;
}

interface Swap {
  units: number;
  /** Where to start: unit index from 0, step 1..3. */
  unit: number;
  step: number;
}

export async function runBootloader(fw: Fw, self: ImageHeader, unsafe: boolean): Promise<Boot | undefined> {
  const { layout } = fw;
  fw.console(`[boot] BOOT ${self.version}`);
  const records = (): RecordView => readRecord(fw.view(layout.flashBase, layout.slotA.address - layout.flashBase), layout);
  let view = records();
  const reread = (): RecordView => (view = records());
  const write = async (next: Omit<BootRecord, 'seq'>): Promise<void> => {
    await writeRecord(fw.flash, layout, view, next);
    reread();
  };
  if (!view.inForce) await write({ state: 'confirmed', units: 0, crc: 0, length: 0 });
  const rec = view.inForce!;
  fw.console(`[boot] record seq=${rec.seq} state=${rec.state}`);

  const swap = async (s: Swap): Promise<boolean> => {
    const ok = unsafe ? await swapThroughRam(fw, s) : await swapWithScratch(fw, s, () => view, reread);
    if (ok) fw.console('[boot] swap done');
    return ok;
  };

  switch (rec.state) {
    case 'pending': {
      const a = readHeader(fw.readRegion(layout.slotA));
      const b = checkImage(fw.readRegion(layout.slotB), { loadAddress: layout.slotA.address, ...(a ? { component: a.component } : {}) });
      if (!b.ok) {
        fw.console(`[boot] slot B bad: ${b.why}`);
        await write({ state: 'confirmed', units: 0, crc: 0, length: 0 });
        return bootSlotA(fw, false);
      }
      fw.console(`[boot] slot B ${b.header.component} ${b.header.version} ok`);
      const units = Math.ceil(Math.min(layout.slotA.size, Math.max(b.header.length, a?.length ?? 0)) / layout.swapUnit);
      await write({ state: 'swapping', units, crc: b.header.bodyCrc, length: b.header.length });
      if (!(await swap({ units, unit: 0, step: 1 }))) return bricked(fw, 'swap status log full');
      await write({ state: 'trial', units, crc: b.header.bodyCrc, length: b.header.length });
      return bootSlotA(fw, true);
    }
    case 'swapping':
    case 'reverting': {
      const at = unsafe ? { unit: 0, step: 1 } : resumePoint(view);
      if (at.unit < rec.units) fw.console(`[boot] resume swap at unit ${at.unit + 1}/${rec.units} step ${at.step}`);
      if (!(await swap({ units: rec.units, ...at }))) return bricked(fw, 'swap status log full');
      if (rec.state === 'swapping') {
        await write({ state: 'trial', units: rec.units, crc: rec.crc, length: rec.length });
        return bootSlotA(fw, true);
      }
      await write({ state: 'confirmed', units: 0, crc: 0, length: 0 });
      return bootSlotA(fw, false);
    }
    case 'trial': {
      const a = readHeader(fw.readRegion(layout.slotA));
      fw.console(`[boot] revert: ${a ? `${a.component} ${a.version}` : 'the image in slot A'} was not confirmed`);
      await write({ state: 'reverting', units: rec.units, crc: 0, length: 0 });
      if (!(await swap({ units: rec.units, unit: 0, step: 1 }))) return bricked(fw, 'swap status log full');
      await write({ state: 'confirmed', units: 0, crc: 0, length: 0 });
      return bootSlotA(fw, false);
    }
    default:
      return bootSlotA(fw, false);
  }
}

type Fw = Firmware;

function bootSlotA(fw: Fw, trial: boolean): Boot | undefined {
  const a = checkImage(fw.readRegion(fw.layout.slotA), { loadAddress: fw.layout.slotA.address });
  if (!a.ok) return bricked(fw, `slot A ${a.why}`);
  fw.console(`[boot] boot slot A ${a.header.component} ${a.header.version} ${trial ? 'trial' : 'confirmed'}`);
  // Armed on every boot, as an IWDG started by the bootloader: the application feeds it once it is healthy
  // (in trial: only after it confirmed), so a hung or unconfirmed image is reset.
  fw.watchdogArm(fw.options.watchdogMs);
  return { header: a.header, trial };
}

function bricked(fw: Fw, why: string): undefined {
  fw.console(`[boot] no bootable image: ${why}`);
  fw.setPhase('bricked', { why });
  return undefined;
}

/** The step after the last valid status entry. */
function resumePoint(view: RecordView): { unit: number; step: number } {
  const last = view.log[view.log.length - 1];
  if (!last) return { unit: 0, step: 1 };
  return last.step < 3 ? { unit: last.unit, step: last.step + 1 } : { unit: last.unit + 1, step: 1 };
}

async function copyUnit(fw: Fw, from: number, to: number): Promise<void> {
  const bytes = fw.read(from, fw.layout.swapUnit);
  await fw.flash.erase(fw.flash.unitAt(offsetOf(fw, to)));
  await fw.flash.program(offsetOf(fw, to), bytes);
}

/** Steps 1–3 per unit, each followed by its status entry; every step can be redone from its start. */
async function swapWithScratch(fw: Fw, s: Swap, view: () => RecordView, reread: () => RecordView): Promise<boolean> {
  const { layout } = fw;
  for (let i = s.unit; i < s.units; i++) {
    const a = layout.slotA.address + i * layout.swapUnit;
    const b = layout.slotB.address + i * layout.swapUnit;
    for (let step = i === s.unit ? s.step : 1; step <= 3; step++) {
      fw.console(`[boot] swap unit ${i + 1}/${s.units} step ${step}`);
      if (step === 1) await copyUnit(fw, b, layout.scratch.address);
      else if (step === 2) await copyUnit(fw, a, b);
      else await copyUnit(fw, layout.scratch.address, a);
      if (!(await appendLog(fw.flash, layout, view(), { unit: i, step }))) return false;
      reread();
    }
  }
  return true;
}

/** The defect: both units through RAM, A overwritten before B; no scratch, no log. */
async function swapThroughRam(fw: Fw, s: Swap): Promise<boolean> {
  const { layout } = fw;
  for (let i = s.unit; i < s.units; i++) {
    const a = layout.slotA.address + i * layout.swapUnit;
    const b = layout.slotB.address + i * layout.swapUnit;
    const oldA = fw.read(a, layout.swapUnit);
    fw.console(`[boot] swap unit ${i + 1}/${s.units} step 1`);
    await copyUnit(fw, b, a);
    fw.console(`[boot] swap unit ${i + 1}/${s.units} step 2`);
    await fw.flash.erase(fw.flash.unitAt(offsetOf(fw, b)));
    await fw.flash.program(offsetOf(fw, b), oldA);
  }
  return true;
}
