// rig/sota: upgrade flows, the fault model and verification (docs/architecture.md §1, §4).
//
//   await ensureBaseline(station, images.v1_0_0, { signal });            // known image, module registered
//   const run = await runProxyUpgrade(station, {
//     plan: { component: 'STM32', package: pkgs.full_2_0_0 },            // or a PreparedPlan + package
//     current: images.v1_0_0, faults: [parseFault('offset=8192:power-cycle-module')],
//     recorder, signal, battery: 80, expect: ['upgraded', 'failed-intact'],
//   });
//   run.verdict      // { outcome: 'upgraded' | 'refused' | 'failed-intact' | undefined, reason, failure, ok, summary }
//   run.readback     // { address, size, identified, matchesTarget, matchesCurrent, firstDifference, comparison }
//   await writeFile('run.json', serializeRunRecord(run));                 // with station.config and, when needed, firmware
//   const again = await replay(parseRunRecord(text), station);          // { same, comparison, record }
//
//   // dut mode: the MCU image under test drives; the rig observes taps and console, and judges over SWD
//   const dut = await runDutUpgrade(station, { plan: spec, from: images.v1_0_0, bootloader, faults, expect: ['upgraded'] });
//   dut.verdict.outcome // 'upgraded' | 'rolled-back' | 'failed-intact' | 'refused' | 'bricked' | 'inconsistent'
export { DOWNLOAD_NOTIFY_LIMIT, ProtocolTimerError, runProxyUpgrade } from './proxy.ts';
export type { ProxyRun, ProxyUpgradeOptions } from './proxy.ts';
export { runDutUpgrade } from './dut.ts';
export type { DutRun, DutUpgradeOptions } from './dut.ts';
export { judgeDut } from './dut-verdict.ts';
export type { DutEvidence, SlotEvidence } from './dut-verdict.ts';
export { DutObserver, formatTapLine } from './dut-observe.ts';
export type { TapLine } from './dut-observe.ts';
export { bootRecordDecoder, readBootRecord } from './boot-record.ts';
export type { BootPhase, BootRecord } from './boot-record.ts';
export { ensureBaseline } from './baseline.ts';
export type { BaselineOptions, BaselineResult } from './baseline.ts';
export { ensureRegistered } from './module.ts';
export { replay, sameVerdict, verdictLabel } from './replay.ts';
export type { ReplayOptions, ReplayResult } from './replay.ts';
export {
  completeRecord,
  parseRunRecord,
  recordedFirmware,
  recordedStationConfig,
  recordedVirtualSettings,
  serializeRunRecord,
  RUN_RECORD_FORMAT,
  RUN_RECORD_VERSION,
} from './record.ts';
export type * from './record.ts';
export { judge, OUTCOMES } from './verdict.ts';
export type { Evidence, Failure, FailureType, IntactReason, Outcome, ReadbackResult, Verdict } from './verdict.ts';
export { defaultFaultDurations, formatAction, formatFault, formatTrigger, parseFault } from './faults.ts';
export type { Fault, FaultAction, FaultTrigger } from './faults.ts';
export { checkFaults, FaultSchedule } from './schedule.ts';
export { DownloadAssembly } from './pieces.ts';
export type { Piece, PieceAnnouncement } from './pieces.ts';
export { silentRecorder } from './recorder.ts';
export type { Recorder } from './recorder.ts';
