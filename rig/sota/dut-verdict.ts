// The verdict of a dut run (docs/architecture.md §1): the image under test drove its own upgrade, and the rig judges
// from what it gathered itself — the version reports and module events it tapped, the console, the boot
// record and, last, both slots read back over SWD. A pure function over that evidence, sharing the proxy
// verdict's types (Verdict, Failure), so reports, `rig repro` and the suites treat both modes alike.
//
//   upgraded       slot A = the new image, the boot record confirmed, the MCU reports it, the module said 10705
//   rolled-back    the new image booted in trial, then slot A = the old one again, the MCU reports the old
//                  version, the module said 10706
//   failed-intact  the old image never left (slot A = old, the new one never ran)
//   refused        the MCU refused the plan (AT+QIOTUPDATE=0) and the old image is intact
//   bricked        no valid image in slot A, or no version report within the bound after the last start
//   inconsistent   the MCU reports a version slot A does not hold, or the module and the flash disagree
import type { BootRecord } from './boot-record.ts';
import { end, endWithFinding, fail } from './verdict.ts';
import type { Evidence, Outcome, Verdict } from './verdict.ts';

/** One slot read back over SWD and compared with the image it should hold. */
export interface SlotEvidence {
  address: number;
  /** Bytes read. */
  size: number;
  /** What the bytes are, compared byte for byte: the image the run started from, the new one, erased flash, or neither. */
  holds: 'from' | 'target' | 'erased' | 'other';
  /** The version the image header names, when header and body CRC are valid. */
  identified: { component: string; version: string } | undefined;
  /** describeIdentity(): `STM32 2_0_0, 25344 bytes, valid`, `bad-body-crc …`, `erased`. */
  identity: string;
  /** The image the slot was compared with (`2_0_0 (target)`). */
  against: string;
  /** First differing flash address against that image, null when equal. */
  firstDifference: number | null;
  comparison: string;
  /** The tapped line where the difference began (the block read that carried those bytes, or the last line before the fault that cut it). */
  tapLine?: string;
}

export interface DutEvidence {
  expected: readonly Outcome[];
  fromVersion: string;
  targetVersion: string;
  /** What the MCU answered the plan with, as tapped: AT+QIOTUPDATE=1 or =0. */
  decision: 'confirmed' | 'refused' | undefined;
  /** The module's last word on this OTA (+QIOTEVT: 7,10705 / 10706), tapped or seen on its USB port. */
  moduleResult: 10705 | 10706 | undefined;
  /** The version the MCU reported (AT+QIOTMCUVER) after its last start; undefined when it reported none. */
  lastReport: string | undefined;
  /** The MCU started (power-on, reset, its own reboot) and reported no version within the bound. */
  silentAfterStart: boolean;
  /** The new image ran in trial (console, boot record or a version report seen between the swap and a revert). */
  trialSeen: boolean;
  /** The MCU's own account of giving up the download (console `download rejected: …`), when it gave one. */
  downloadRejected: string | undefined;
  /** The MCU asked to install (AT+QIOTUPDATE=3 answered OK). */
  installRequested: boolean;
  /**
   * Why the download the MCU asked to install was not the one announced (the tapped blocks' MD5 against
   * 10701's), when it was not; undefined when it matched or could not be told (bytes lost on the tap).
   */
  installedBadDownload: string | undefined;
  /** After the module rebooted, the MCU did not restart the download where the module announced the piece. */
  downloadNotRestarted: string | undefined;
  /** A 10700 of this run's plan that the MCU never answered within its bound. */
  planNotAnswered: string | undefined;
  slotA: SlotEvidence | undefined;
  slotB: SlotEvidence | undefined;
  /** The boot record at the end (undefined without a decoder, or when it could not be read). */
  bootRecord: BootRecord | undefined;
  /** An error that ended the run early. */
  error: Evidence['error'];
}

const hex = (n: number) => `0x${n.toString(16)}`;

function where(s: SlotEvidence): string {
  if (s.firstDifference === null) return '';
  return `; first difference at ${hex(s.firstDifference)} against ${s.against}${s.tapLine ? `, from ${s.tapLine}` : ''}`;
}

function holdsText(s: SlotEvidence, e: DutEvidence): string {
  if (s.holds === 'from') return `the old image ${e.fromVersion}`;
  if (s.holds === 'target') return `the new image ${e.targetVersion}`;
  if (s.holds === 'erased') return 'erased flash';
  return s.identified ? `${s.identified.component} ${s.identified.version}, neither the old nor the new image` : s.identity;
}

export function judgeDut(e: DutEvidence): Verdict {
  if (e.error) {
    // The rig's own trouble says nothing about the image.
    if (e.error.kind === 'internal') return fail(e, 'internal', 'internal', e.error.message);
    if (e.error.kind === 'infrastructure') return fail(e, 'infrastructure', 'infrastructure', e.error.message);
    if (e.error.kind === 'config' || e.error.kind === 'usage') return fail(e, 'config', e.error.kind, e.error.message);
  }
  const a = e.slotA;
  if (!a) return fail(e, 'infrastructure', 'infrastructure', 'slot A was not read back, so nothing can be concluded');
  const rec = e.bootRecord ? `; boot record ${e.bootRecord.summary}` : '';

  // The flash first: an MCU with no image it can boot is the finding that matters most.
  if (!a.identified) return end(e, 'bricked', undefined, `slot A at ${hex(a.address)} holds no valid image (${a.identity})${where(a)}${rec}`);
  if (e.silentAfterStart) {
    return end(e, 'bricked', undefined, `the MCU reported no version after its last start; slot A holds ${holdsText(a, e)}${rec}`);
  }

  // What the MCU says against what its flash holds.
  const holdsVersion = a.holds === 'from' ? e.fromVersion : a.holds === 'target' ? e.targetVersion : a.identified.version;
  if (e.lastReport !== undefined && e.lastReport !== holdsVersion) {
    return end(e, 'inconsistent', undefined, `the MCU reports ${e.lastReport} but slot A holds ${holdsText(a, e)}${where(a)}`);
  }
  if (a.holds === 'other') return end(e, 'inconsistent', undefined, `slot A holds ${holdsText(a, e)}${where(a)}`);

  if (a.holds === 'target') {
    if (e.moduleResult === 10706) return end(e, 'inconsistent', undefined, `slot A holds the new image ${e.targetVersion} but the module said 10706 (upgrade failed)${rec}`);
    if (e.bootRecord && e.bootRecord.phase !== 'confirmed') {
      return end(e, 'inconsistent', undefined, `slot A holds the new image ${e.targetVersion} but the boot record is not confirmed (${e.bootRecord.summary}): the next reset reverts it`);
    }
    if (e.moduleResult !== 10705) return end(e, 'inconsistent', undefined, `slot A holds the new image ${e.targetVersion} but the module ${e.moduleResult === undefined ? 'never settled the OTA (no 10705)' : `said ${e.moduleResult}`}`);
    if (e.lastReport === undefined) return end(e, 'inconsistent', undefined, `slot A holds the new image ${e.targetVersion} and the module said 10705, but no version report was tapped`);
    return end(e, 'upgraded', undefined, `slot A = ${e.targetVersion} by read-back, ${e.bootRecord ? 'boot record confirmed, ' : ''}the MCU reports ${e.lastReport}, module said 10705`);
  }

  // Slot A holds the old image.
  if (e.moduleResult === 10705) return end(e, 'inconsistent', undefined, `the module said 10705 but slot A still holds the old image ${e.fromVersion}${rec}`);
  if (e.bootRecord && e.bootRecord.phase !== 'confirmed') {
    return end(e, 'inconsistent', undefined, `slot A holds the old image ${e.fromVersion} but the boot record is not settled (${e.bootRecord.summary})`);
  }
  if (e.decision === 'refused') return end(e, 'refused', 'refused', `the MCU refused the plan, slot A = ${e.fromVersion} by read-back`);
  if (e.trialSeen) {
    if (e.moduleResult !== 10706) return end(e, 'inconsistent', undefined, `the new image ran in trial and slot A holds ${e.fromVersion} again, but the module never said 10706`);
    return end(e, 'rolled-back', undefined, `the new image ran in trial and was reverted: slot A = ${e.fromVersion} by read-back, the MCU reports ${e.lastReport ?? e.fromVersion}, module said 10706${rec}`);
  }
  const why = e.downloadRejected ? `the MCU rejected the download (${e.downloadRejected})` : e.moduleResult === 10706 ? 'module said 10706' : 'no result from the module';
  const reason = e.downloadRejected ? 'download-rejected' : e.moduleResult === 10706 ? 'module-failed' : undefined;
  const intact = `the old image never left (slot A = ${e.fromVersion} by read-back, ${why})`;
  // The old image stayed, but the image that drove the upgrade misbehaved on the way: findings, in the order
  // a reader needs them (the bootloader saving the day does not excuse the client).
  const b = e.slotB;
  if (e.installRequested && e.installedBadDownload !== undefined) {
    return endWithFinding(e, 'failed-intact', reason, 'hash-mismatch-accepted', `the MCU asked to install (AT+QIOTUPDATE=3) a download that does not match 10701: ${e.installedBadDownload}; ${intact}`);
  }
  if (e.installRequested && b && b.holds !== 'target' && b.holds !== 'from') {
    return endWithFinding(e, 'failed-intact', reason, 'slot-b-mismatch', `the MCU asked to install ${e.targetVersion} but slot B holds ${holdsText(b, e)}${where(b)}; ${intact}`);
  }
  if (e.downloadNotRestarted !== undefined) return endWithFinding(e, 'failed-intact', reason, 'download-not-restarted', `${e.downloadNotRestarted}; ${intact}`);
  if (e.planNotAnswered !== undefined) return endWithFinding(e, 'failed-intact', reason, 'plan-not-answered', `${e.planNotAnswered}; ${intact}`);
  return end(e, 'failed-intact', reason, `the old image never left: slot A = ${e.fromVersion} by read-back, ${why}`);
}
