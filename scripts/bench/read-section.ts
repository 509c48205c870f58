// Items 1 and 2 of issue 9 at one baud rate: the rig's read phase (the proxy flow) and the peer's, on the same
// virtual station, alternating which goes first, each against the protocol minimum of the bytes it put on
// the wire; at baud 0 (an unpaced pty) the CPU each spends per MiB. On a paced UART the rig reads once more
// on a second virtual station configured with module.echo 'off' (the station sends ATE0, as MCU firmware
// often does), where the wire carries exactly what issue 9's arithmetic counts.
import { InfrastructureError } from '../../rig/errors.ts';
import type { OpenedStation } from '../../rig/station/index.ts';
import { peerReadPhase } from './peer.ts';
import { rigReadPhase } from './rig-read.ts';
import type { BenchFirmware } from './stations.ts';
import { awaitPiece, baseline, moduleEcho, openBenchStation, settleOta } from './stations.ts';
import { cpuMsPerMiB, median, protocolMinimumMs, ratio, readPhaseBlocks, wireTotals } from './wire.ts';

const BLOCK_SIZE = 1024;

export interface ReadRun {
  rep: number;
  order: 'rig-first' | 'peer-first';
  /** turnaroundMs: median from a block's OK to the next command (the reader's own share of each block). */
  rig: { wallMs: number; cpuMsPerMiB: number; recordPhaseMs: number; recordBytesPerSecond: number; turnaroundMs: number; turnaroundP90Ms: number; turnaroundShare: number; answerMs: number };
  peer: { wallMs: number; cpuMsPerMiB: number; turnaroundMs: number; answerMs: number };
  /** Measured ÷ protocol minimum with the module's echo (it overlaps each command but for its last byte; undefined on an unpaced pty). */
  rigVsWire?: number;
  peerVsWire?: number;
  /** Measured ÷ the echo-free minimum: issue 9's own arithmetic (24 bytes out, 1056 back), the one its targets use. */
  rigVsWireNoEcho?: number;
  peerVsWireNoEcho?: number;
  /** The rig's read phase on a station with module.echo 'off', on a paced UART: its wall time and ÷ the echo-free minimum. */
  rigEchoOff?: { wallMs: number; turnaroundMs: number; answerMs: number; vsWire: number };
  rigVsPeer: number;
}

export interface ReadSectionResult {
  baud: number;
  bytes: number;
  echo: boolean;
  wire: { blocks: number; out: number; back: number; total: number; lineBytes: number; minimumMs: number | null };
  /** The same without the command echo (equal to `wire` when the module does not echo). */
  wireNoEcho: { back: number; total: number; minimumMs: number | null };
  runs: ReadRun[];
}

/** The peer's turn: the rig prepares the download up to 10703, hands the port over, and takes it back. */
export async function peerTurn(station: OpenedStation, fw: BenchFirmware, baud: number, signal?: AbortSignal): Promise<{ wallMs: number; cpuMicros: number; turnaroundMs: number; answerMs: number }> {
  await baseline(station, fw, signal);
  const piece = await awaitPiece(station, fw, signal);
  await station.module.at.close();
  let r;
  try {
    const blockMs = Math.ceil(((BLOCK_SIZE + 64) * 10 * 1000) / (baud > 0 ? baud : 115200));
    r = await peerReadPhase({
      path: station.module.path,
      baudRate: station.module.baudRate,
      start: piece.start,
      length: piece.length,
      blockSize: BLOCK_SIZE,
      blockTimeoutMs: station.timeouts.commandMs + blockMs + station.timeouts.marginMs,
      station: station.name,
    });
  } finally {
    await station.module.reopen(signal ? { signal } : {});
  }
  if (!r.data.equals(fw.pkg.bytes)) {
    throw new InfrastructureError('the peer read other bytes than the package', { station: station.name, expected: `package ${fw.pkg.name} (sha256 ${fw.pkg.sha256})`, seen: 'different bytes' });
  }
  await settleOta(station, fw, signal);
  return { wallMs: r.wallMs, cpuMicros: r.cpuMicros, turnaroundMs: median(r.turnarounds), answerMs: median(r.answers) };
}

export async function readSection(fw: BenchFirmware, baud: number, reps: number, log: (s: string) => void, signal?: AbortSignal): Promise<ReadSectionResult> {
  const name = `bench-read-${baud}`;
  const station = await openBenchStation(name, { baud, firmware: fw });
  let echoOff: OpenedStation | undefined;
  try {
    // Its own sim, idle while the others read: the echo setting is the station's, as a farm configures it.
    if (baud > 0) echoOff = await openBenchStation(`${name}-echo-off`, { baud, firmware: fw, echo: 'off' });
    const echo = moduleEcho(station);
    const blocks = readPhaseBlocks(0, fw.pkg.size, BLOCK_SIZE);
    const totals = wireTotals(blocks, { echo });
    const minimumMs = baud > 0 ? protocolMinimumMs(totals.lineBytes, baud) : null;
    const noEcho = wireTotals(blocks, { echo: false });
    const minimumNoEchoMs = baud > 0 ? protocolMinimumMs(noEcho.lineBytes, baud) : null;
    const runs: ReadRun[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? 'rig-first' : 'peer-first';
      let rig: Awaited<ReturnType<typeof rigReadPhase>> | undefined;
      let rigEchoOff: Awaited<ReturnType<typeof rigReadPhase>> | undefined;
      let peer: { wallMs: number; cpuMicros: number; turnaroundMs: number; answerMs: number } | undefined;
      // On a paced UART the rig reads a third time with the echo off, between the other two.
      const turns = echoOff ? ['rig', 'rig-echo-off', 'peer'] : ['rig', 'peer'];
      for (const who of order === 'rig-first' ? turns : turns.reverse()) {
        if (who === 'rig-echo-off') {
          rigEchoOff = await rigReadPhase(echoOff!, fw, signal ? { signal } : {});
        } else if (who === 'rig') {
          rig = await rigReadPhase(station, fw, signal ? { signal } : {});
          if (rig.blocks !== totals.blocks) {
            throw new InfrastructureError('the flow read in other blocks than the bench counts', { station: name, expected: `${totals.blocks} blocks of ${BLOCK_SIZE}`, seen: `${rig.blocks} blocks` });
          }
        } else {
          peer = await peerTurn(station, fw, baud, signal);
        }
      }
      const run: ReadRun = {
        rep,
        order,
        rig: {
          wallMs: rig!.wallMs,
          cpuMsPerMiB: cpuMsPerMiB(rig!.cpuMicros, rig!.bytes),
          recordPhaseMs: rig!.record.phaseMs,
          recordBytesPerSecond: rig!.record.bytesPerSecond,
          turnaroundMs: rig!.turnaround.medianMs,
          turnaroundP90Ms: rig!.turnaround.p90Ms,
          turnaroundShare: rig!.turnaround.totalMs / rig!.wallMs,
          answerMs: rig!.answerMs,
        },
        peer: { wallMs: peer!.wallMs, cpuMsPerMiB: cpuMsPerMiB(peer!.cpuMicros, fw.pkg.size), turnaroundMs: peer!.turnaroundMs, answerMs: peer!.answerMs },
        rigVsPeer: ratio(rig!.wallMs, peer!.wallMs),
        ...(minimumMs !== null ? { rigVsWire: ratio(rig!.wallMs, minimumMs), peerVsWire: ratio(peer!.wallMs, minimumMs) } : {}),
        ...(minimumNoEchoMs !== null ? { rigVsWireNoEcho: ratio(rig!.wallMs, minimumNoEchoMs), peerVsWireNoEcho: ratio(peer!.wallMs, minimumNoEchoMs) } : {}),
        ...(rigEchoOff && minimumNoEchoMs !== null
          ? { rigEchoOff: { wallMs: rigEchoOff.wallMs, turnaroundMs: rigEchoOff.turnaround.medianMs, answerMs: rigEchoOff.answerMs, vsWire: ratio(rigEchoOff.wallMs, minimumNoEchoMs) } }
          : {}),
      };
      runs.push(run);
      log(
        `  baud ${baud || 'unpaced'} #${rep + 1} (${order}): rig ${run.rig.wallMs.toFixed(0)} ms, ${run.rig.cpuMsPerMiB.toFixed(0)} CPU ms/MiB; ` +
          `turnaround ${run.rig.turnaroundMs.toFixed(2)} ms (p90 ${run.rig.turnaroundP90Ms.toFixed(2)}, ${(100 * run.rig.turnaroundShare).toFixed(1)} % of the phase), command → OK ${run.rig.answerMs.toFixed(2)} ms; ` +
          `peer ${run.peer.wallMs.toFixed(0)} ms, ${run.peer.cpuMsPerMiB.toFixed(0)} CPU ms/MiB, turnaround ${run.peer.turnaroundMs.toFixed(2)} ms, command → OK ${run.peer.answerMs.toFixed(2)} ms` +
          (minimumMs !== null ? `; minimum ${minimumMs.toFixed(0)} ms → rig ${run.rigVsWire!.toFixed(3)}×, peer ${run.peerVsWire!.toFixed(3)}×` : '') +
          (minimumNoEchoMs !== null ? ` (echo-free ${minimumNoEchoMs.toFixed(0)} ms → rig ${run.rigVsWireNoEcho!.toFixed(3)}×, peer ${run.peerVsWireNoEcho!.toFixed(3)}×)` : '') +
          (run.rigEchoOff ? `; rig with module.echo 'off' ${run.rigEchoOff.wallMs.toFixed(0)} ms → ${run.rigEchoOff.vsWire.toFixed(3)}×` : '') +
          `; rig ÷ peer ${run.rigVsPeer.toFixed(3)}`,
      );
    }
    return {
      baud,
      bytes: fw.pkg.size,
      echo,
      wire: { blocks: totals.blocks, out: totals.out, back: totals.back, total: totals.total, lineBytes: totals.lineBytes, minimumMs },
      wireNoEcho: { back: noEcho.back, total: noEcho.total, minimumMs: minimumNoEchoMs },
      runs,
    };
  } finally {
    try {
      await echoOff?.close();
    } finally {
      await station.close();
    }
  }
}
