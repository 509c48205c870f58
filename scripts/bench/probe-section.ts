// Item 3 of issue 9 and issue 18: the rig's probe (rig/probe: one long-lived OpenOCD, Tcl RPC) against bare
// OpenOCD runs, on the virtual STM32 of one virtual station (reached as the station config says: the sim's
// Bus Pirate, the cfg's work area), read-back of 256 KiB and programming of 32 KiB, erase included. The virtual JTAG server serves one debugger at a time (a new
// connection takes over), so the rig's session is opened and closed around its own measurements, never
// left connected while a bare openocd runs; opening it is not part of the timed figures (a station opens its
// probe once), and is reported beside them.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { VirtualStationConfig } from '../../rig/config/index.ts';
import { InfrastructureError } from '../../rig/errors.ts';
import { parseImageHeader } from '../../rig/images/index.ts';
import { buildProbeArgs, Probe } from '../../rig/probe/index.ts';
import type { ProbeSetup } from '../../rig/probe/index.ts';
import { startVirtualStation } from '../../rig/station/virtual.ts';
import type { BenchFirmware } from './stations.ts';
import { benchStationConfig, PACKAGE_SIZE, SLOT_ADDRESS } from './stations.ts';
import { processCpuMs, reapedChildrenCpuMs } from './proc.ts';
import { ratio } from './wire.ts';

const HEADER_AT = SLOT_ADDRESS + 0x200;
/** Programming: 32 KiB (16 F1 pages) away from the preloaded image, so the read-back still finds it. */
const PROGRAM_AT = SLOT_ADDRESS + 0x4_0000;
const PROGRAM_SIZE = 32 * 1024;
const HEADER_SIZE = 64;
const SMALL_OPS = 20;
/** Bound on one bare openocd run (start, init, the command, shutdown); a 256 KiB read takes ~2–3 s here. */
const BARE_TIMEOUT_MS = 60_000;

export interface ProbeRun {
  rep: number;
  order: 'rig-first' | 'bare-first';
  readback: {
    rigMs: number;
    bareMs: number;
    /** openocd's own figure for the transfer ("in 2.2s"), without its start-up and init. */
    bareTransferMs: number | null;
    /** Bare openocd started detached, as rig/probe starts it (own process group and session). */
    bareOwnSessionMs: number;
    ratio: number;
    transferRatio: number | null;
    /** CPU of OpenOCD + the sim for the read: rig session, bare (start-up and init included), bare detached. */
    cpuMs: { rig: number; bare: number; bareOwnSession: number };
    cpuRatio: number;
  };
  small: { persistentMs: number; spawnMs: number; speedup: number; probeOpenMs: number };
  program: {
    /** rig/probe's program(): halt, `flash write_image erase` (the write's own wall time, erase included). */
    rigWriteMs: number;
    /** …and with its read-back verify. */
    rigTotalMs: number;
    /** openocd's own figure for the bare `flash write_image erase`, without start-up, init and `reset halt`. */
    bareTransferMs: number | null;
    ratio: number | null;
  };
  /** 1-minute load average when the repetition started. */
  load: number;
}

export interface ProbeSectionResult {
  bytes: number;
  ops: number;
  programBytes: number;
  runs: ProbeRun[];
}

type SmallOp = 'reset halt' | 'read a word' | 'read the version';
const OPS: readonly SmallOp[] = ['reset halt', 'read a word', 'read the version'];

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * Runs openocd to completion with the station's own arguments plus `commands`; bounded. `ownSession` starts
 * it the way rig/probe starts its OpenOCD (detached: a process group and session of its own), to tell the
 * cost of that placement from the cost of the driver.
 */
function bareOpenocd(binary: string, setup: ProbeSetup, commands: readonly string[], station: string, ownSession = false): Promise<{ ms: number; cpuMs: number; output: string }> {
  const args = [...setup.args, '-c', 'gdb_port disabled', '-c', 'telnet_port disabled', '-c', 'tcl_port disabled', '-c', 'init'];
  for (const c of commands) args.push('-c', c);
  args.push('-c', 'shutdown');
  const c0 = reapedChildrenCpuMs();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { detached: ownSession, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), BARE_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new InfrastructureError(`could not run ${binary}: ${err.message}`, { station, expected: 'the openocd binary the station uses', cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code !== 0) {
        reject(
          new InfrastructureError(`bare openocd failed: ${commands.join('; ')}`, {
            station,
            expected: 'exit code 0 after shutdown',
            seen: signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` after ${BARE_TIMEOUT_MS} ms` : ''}` : `exit ${String(code)}`,
            lastLines: output.trim().split('\n').slice(-8),
          }),
        );
        return;
      }
      resolve({ ms, cpuMs: reapedChildrenCpuMs() - c0, output });
    });
  });
}

/** The values `echo [read_memory …]` printed: the last line of hex numbers. */
function echoedValues(output: string, count: number, station: string, what: string): number[] {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => /^(0x[0-9a-f]+ ?)+$/i.test(l));
  const values = (lines.at(-1) ?? '').split(' ').filter(Boolean).map((v) => Number(v));
  if (values.length !== count) throw new InfrastructureError(`bare openocd: ${what} printed no values`, { station, expected: `${count} values`, seen: output.trim().split('\n').slice(-4).join(' | ') });
  return values;
}

/** openocd's own read figure: "wrote 262144 bytes to file … in 2.2s (116.3 KiB/s)". */
function transferMs(output: string): number | null {
  const m = /wrote (\d+) bytes to file .* in ([\d.]+)s/.exec(output);
  return m ? Number(m[2]) * 1000 : null;
}

/** openocd's own write figure: "wrote 32768 bytes from file … in 0.29s (107.7 KiB/s)". */
function writeMs(output: string): number | null {
  const m = /wrote (\d+) bytes from file .* in ([\d.]+)s/.exec(output);
  return m ? Number(m[2]) * 1000 : null;
}

async function rigSmallOp(probe: Probe, op: SmallOp, fw: BenchFirmware): Promise<void> {
  switch (op) {
    case 'reset halt':
      await probe.reset('halt');
      return;
    case 'read a word': {
      const [w] = await probe.readWords(SLOT_ADDRESS, 1);
      if (w !== Buffer.from(fw.current.bytes).readUInt32LE(0)) throw new InfrastructureError('the rig read another word', { station: probe.station, expected: 'the image initial SP', seen: hex(w ?? 0) });
      return;
    }
    case 'read the version': {
      const bytes = Uint8Array.from(await probe.readMemory(HEADER_AT, HEADER_SIZE, { width: 8 }));
      const v = parseImageHeader(bytes, 0).version;
      if (v !== fw.current.version) throw new InfrastructureError('the rig read another version', { station: probe.station, expected: fw.current.version, seen: v });
      return;
    }
  }
}

async function bareSmallOp(binary: string, setup: ProbeSetup, op: SmallOp, fw: BenchFirmware, station: string): Promise<void> {
  switch (op) {
    case 'reset halt':
      await bareOpenocd(binary, setup, ['reset halt'], station);
      return;
    case 'read a word': {
      const r = await bareOpenocd(binary, setup, [`echo [read_memory ${hex(SLOT_ADDRESS)} 32 1]`], station);
      const [w] = echoedValues(r.output, 1, station, 'read a word');
      if (w !== Buffer.from(fw.current.bytes).readUInt32LE(0)) throw new InfrastructureError('bare openocd read another word', { station, expected: 'the image initial SP', seen: hex(w ?? 0) });
      return;
    }
    case 'read the version': {
      const r = await bareOpenocd(binary, setup, [`echo [read_memory ${hex(HEADER_AT)} 8 ${HEADER_SIZE}]`], station);
      const v = parseImageHeader(Uint8Array.from(echoedValues(r.output, HEADER_SIZE, station, 'read the version')), 0).version;
      if (v !== fw.current.version) throw new InfrastructureError('bare openocd read another version', { station, expected: fw.current.version, seen: v });
      return;
    }
  }
}

export async function probeSection(fw: BenchFirmware, reps: number, log: (s: string) => void): Promise<ProbeSectionResult> {
  const name = 'bench-probe';
  const entry = benchStationConfig(name, { baud: 115200, firmware: fw }).stations[name] as VirtualStationConfig;
  const virtual = await startVirtualStation(entry, { station: name });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'sota-rig-bench-probe-'));
  const hw = virtual.config;
  const setup = buildProbeArgs(hw.probe);
  const openProbe = () => Probe.open({ ...setup, station: name, openocd: hw.probe.openocd, timeouts: hw.probe.timeouts });
  const image = fw.pkg.bytes.subarray(0, PROGRAM_SIZE);
  const imageFile = path.join(scratch, 'program.bin');
  await writeFile(imageFile, image);
  try {
    const runs: ProbeRun[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const load = os.loadavg()[0]!;
      const order = rep % 2 === 0 ? 'rig-first' : 'bare-first';
      let rig: { ms: number; cpuMs: number; bytes: Buffer } | undefined;
      let bare: { ms: number; cpuMs: number; transferMs: number | null; bytes: Buffer } | undefined;
      for (const who of order === 'rig-first' ? ['rig', 'bare'] : ['bare', 'rig']) {
        const s0 = processCpuMs(virtual.pid);
        if (who === 'rig') {
          const probe = await openProbe();
          try {
            const o0 = processCpuMs(probe.pid);
            const t0 = performance.now();
            const bytes = await probe.readRegion(SLOT_ADDRESS, PACKAGE_SIZE);
            const ms = performance.now() - t0;
            rig = { ms, cpuMs: processCpuMs(probe.pid) - o0 + processCpuMs(virtual.pid) - s0, bytes };
          } finally {
            await probe.close();
          }
        } else {
          const file = path.join(scratch, `bare-${rep}.bin`);
          const r = await bareOpenocd(hw.probe.openocd, setup, [`flash read_bank 0 ${file} 0 ${PACKAGE_SIZE}`], name);
          bare = { ms: r.ms, cpuMs: r.cpuMs + processCpuMs(virtual.pid) - s0, transferMs: transferMs(r.output), bytes: await readFile(file) };
          await rm(file, { force: true });
        }
      }
      const d0 = processCpuMs(virtual.pid);
      const detachedFile = path.join(scratch, `bare-own-session-${rep}.bin`);
      const detached = await bareOpenocd(hw.probe.openocd, setup, [`flash read_bank 0 ${detachedFile} 0 ${PACKAGE_SIZE}`], name, true);
      const detachedCpuMs = detached.cpuMs + processCpuMs(virtual.pid) - d0;
      await rm(detachedFile, { force: true });
      if (!rig!.bytes.equals(bare!.bytes) || !Buffer.from(fw.current.bytes).equals(rig!.bytes.subarray(0, fw.current.size))) {
        throw new InfrastructureError('the two read-backs differ, or do not hold the preloaded image', { station: name, expected: `the same ${PACKAGE_SIZE} bytes starting with ${fw.current.version}`, seen: 'different bytes' });
      }

      // 20 small operations: on one open session, then one openocd per operation.
      const o0 = performance.now();
      const probe = await openProbe();
      const probeOpenMs = performance.now() - o0;
      let persistentMs: number;
      try {
        const t0 = performance.now();
        for (let i = 0; i < SMALL_OPS; i++) await rigSmallOp(probe, OPS[i % OPS.length]!, fw);
        persistentMs = performance.now() - t0;
      } finally {
        await probe.close();
      }
      const t1 = performance.now();
      for (let i = 0; i < SMALL_OPS; i++) await bareSmallOp(hw.probe.openocd, setup, OPS[i % OPS.length]!, fw, name);
      const spawnMs = performance.now() - t1;

      // Programming 32 KiB, erase included: rig/probe's program() (its write alone, then with the verify) and
      // a bare `flash write_image erase` (openocd's own figure), in the same order as the read-back.
      let rigProgram: { writeMs: number; totalMs: number } | undefined;
      let bareProgramMs: number | null = null;
      for (const who of order === 'rig-first' ? ['rig', 'bare'] : ['bare', 'rig']) {
        if (who === 'rig') {
          const p = await openProbe();
          try {
            const r = await p.program(PROGRAM_AT, image, { preverify: false });
            rigProgram = { writeMs: r.writeMs, totalMs: r.totalMs };
          } finally {
            await p.close();
          }
        } else {
          const r = await bareOpenocd(hw.probe.openocd, setup, ['reset halt', `flash write_image erase ${imageFile} ${hex(PROGRAM_AT)} bin`], name);
          bareProgramMs = writeMs(r.output);
        }
      }

      const run: ProbeRun = {
        rep,
        order,
        readback: {
          rigMs: rig!.ms,
          bareMs: bare!.ms,
          bareTransferMs: bare!.transferMs,
          bareOwnSessionMs: detached.ms,
          ratio: ratio(rig!.ms, bare!.ms),
          transferRatio: bare!.transferMs ? ratio(rig!.ms, bare!.transferMs) : null,
          cpuMs: { rig: rig!.cpuMs, bare: bare!.cpuMs, bareOwnSession: detachedCpuMs },
          cpuRatio: ratio(rig!.cpuMs, bare!.cpuMs),
        },
        small: { persistentMs, spawnMs, speedup: ratio(spawnMs, persistentMs), probeOpenMs },
        program: {
          rigWriteMs: rigProgram!.writeMs,
          rigTotalMs: rigProgram!.totalMs,
          bareTransferMs: bareProgramMs,
          ratio: bareProgramMs ? ratio(rigProgram!.writeMs, bareProgramMs) : null,
        },
        load,
      };
      runs.push(run);
      log(
        `  probe #${rep + 1} (${order}): read-back rig ${run.readback.rigMs.toFixed(0)} ms, bare openocd ${run.readback.bareMs.toFixed(0)} ms ` +
          `(its transfer ${run.readback.bareTransferMs?.toFixed(0) ?? '?'} ms; detached ${detached.ms.toFixed(0)} ms) → ${run.readback.ratio.toFixed(3)}×, ` +
          `CPU openocd+sim ${rig!.cpuMs.toFixed(0)} / ${bare!.cpuMs.toFixed(0)} / ${detachedCpuMs.toFixed(0)} ms → ${run.readback.cpuRatio.toFixed(3)}×; ` +
          `${SMALL_OPS} small ops: session ${persistentMs.toFixed(0)} ms, spawn-per-op ${spawnMs.toFixed(0)} ms → ${run.small.speedup.toFixed(1)}× (probe open ${probeOpenMs.toFixed(0)} ms); ` +
          `program ${PROGRAM_SIZE / 1024} KiB: rig ${run.program.rigWriteMs.toFixed(0)} ms (${run.program.rigTotalMs.toFixed(0)} ms with its verify), bare ${bareProgramMs?.toFixed(0) ?? '?'} ms; load ${load.toFixed(2)}`,
      );
    }
    return { bytes: PACKAGE_SIZE, ops: SMALL_OPS, programBytes: PROGRAM_SIZE, runs };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await virtual.close();
  }
}
