// rig/probe — the station's debug probe: one long-lived OpenOCD child driven over its Tcl RPC port.
//
//   const setup = buildProbeArgs({ interface: { kind: 'stlink', serial: '066D…' }, target: 'stm32f4x' });
//   const probe = await Probe.open({ ...setup, station: 'bench-2' }, { signal });
//   await probe.examine();                      // { idcode, cpuid, core, deviceId, flashSizeKiB, flash, state }
//   await probe.waitExamined(5000);             // after the target's supply comes back: until OpenOCD re-examined it
//   await probe.reset('halt' | 'run' | 'init'); // → 'halted' | 'running' …
//   await probe.readWords(0x08000000, 4);       // Uint32Array; readMemory(addr, n, { width: 8|16|32 })
//   const flash = await probe.readRegion(0x08000000, 256 * 1024);          // Buffer
//   await probe.verify(0x08000000, image);      // throws RegionMismatchError (FirmwareError) naming addresses
//   await probe.program(0x08000000, image);     // { written: false } when pre-verify finds it already there
//   await probe.erase(0x08020000, 0x20000);
//   probe.log.text(); probe.log.recent(20);     // OpenOCD's log for the report / for errors
//   probe.alive; await probe.exited;            // watch for an OpenOCD that died while idle
//   await probe.restart(); await probe.close();
//
// Every operation takes { signal?, timeoutMs? }; defaults grow with size for reads and writes. On timeout or
// abort OpenOCD is killed (process group, SIGKILL) and the call throws InfrastructureError / AbortedError;
// an OpenOCD that dies (rc 134 when the adapter socket drops mid-scan) gives InfrastructureError with the
// last log lines; so does a lost adapter link (remote_bitbang socket error, USB device gone), on which
// OpenOCD is killed at once because 0.12 never reconnects; a command OpenOCD refuses gives
// OpenOcdCommandError (a ProtocolError) with its Tcl code and text — unless the target is not examined
// (curstate "unknown": unpowered, or just powered back on), which is an InfrastructureError.
// No OpenOCD outlives the rig process (exit handler, and setpriv --pdeathsig where available).
// The configuration is data (buildProbeArgs): the driver never knows whether it talks to a bench or to the
// virtual station.

export { buildProbeArgs, FAMILIES } from './args.ts';
export type { FamilyProfile, ProbeConfig, ProbeInterface, ProbeSetup, TargetFamily } from './args.ts';
export { OpenOcdCommandError, RegionMismatchError } from './errors.ts';
export type { ByteDifference, RegionComparison } from './errors.ts';
export { ProbeLog } from './log.ts';
export type { ProbeLogOptions } from './log.ts';
export { describeExit, LINK_LOST_PATTERNS, liveOpenOcdPids, OpenOcdSession } from './openocd.ts';
export type { ExitInfo, OpenOcdOptions } from './openocd.ts';
export { compareRegion, coreName, DEFAULT_TIMEOUTS, idcodeFromScanChain, Probe } from './probe.ts';
export type { OpOptions, ProbeOptions, ProbeTimeouts, ProgramResult, ResetMode, TargetInfo, TargetState } from './probe.ts';
