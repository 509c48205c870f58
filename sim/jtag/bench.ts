// Read-back and programming speed of the virtual STM32 through the real OpenOCD (a benchmark, not a test):
//   npx tsx sim/jtag/bench.ts [stm32f4x|stm32f1x ...] [--buspirate | --unix] [--runs N]
// Prints one JSON line per measurement: the median of N runs of OpenOCD's own KiB/s figure. Default
// remote_bitbang over TCP without a work area; --unix the same over a UNIX socket; --buspirate the Bus
// Pirate on its pty with the cfg's work area (OpenOCD's flash loader, carried out by the virtual core).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { startJtagTarget } from './index.ts';
import { virtualOpenocdArgs } from './openocd-args.ts';
import { OpenocdSession } from './openocd-session.ts';
import { targetNames, type TargetName } from '../target/profiles.ts';

const argv = process.argv.slice(2);
const unix = argv.includes('--unix');
const buspirate = argv.includes('--buspirate');
const transport = buspirate ? 'buspirate' : unix ? 'unix' : 'tcp';
const runsAt = argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 3;
const targets = argv.filter((a): a is TargetName => (targetNames as readonly string[]).includes(a));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** utime + stime of a process in ms, from /proc (clock ticks of 10 ms). */
function openocdCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rate(text: string): number {
  const m = text.match(/\(([\d.]+) KiB\/s\)/);
  if (!m) throw new Error(`no KiB/s figure in: ${text}`);
  return Number(m[1]);
}

const dir = await mkdtemp(path.join(tmpdir(), 'jtag-bench-'));
try {
  for (const target of targets.length > 0 ? targets : targetNames) {
    const socketPath = unix ? path.join(dir, `${target}.sock`) : undefined;
    const sim = await startJtagTarget({ target, socketPath, busPirateDir: buspirate ? dir : undefined });
    const ocd = await OpenocdSession.start({
      args: virtualOpenocdArgs({ target, host: sim.info.host, port: sim.info.port, ...(buspirate ? { buspirate: sim.info.buspirate, workAreaSize: null } : {}) }),
    });
    try {
      for (const kib of [256, 512]) {
        const rates: number[] = [];
        const cpuRates: number[] = [];
        for (let i = 0; i < runs; i++) {
          const cpu0 = process.cpuUsage();
          const ocd0 = openocdCpuMs(ocd.pid);
          const text = await ocd.ok(`flash read_bank 0 ${path.join(dir, 'rb.bin')} 0 ${kib * 1024}`, 120_000);
          const cpu = process.cpuUsage(cpu0);
          const simMs = (cpu.user + cpu.system) / 1000;
          const ocdMs = openocdCpuMs(ocd.pid) - ocd0;
          rates.push(rate(text));
          // What the pair would reach alone on the machine: the round trips are strictly sequential, so
          // the wall time of an unloaded run is about the sum of both processes' CPU time.
          cpuRates.push(Math.round((kib / ((simMs + ocdMs) / 1000)) * 10) / 10);
          console.error(`  ${target} ${kib} KiB: ${rates.at(-1)} KiB/s; CPU simulator ${simMs.toFixed(0)} ms, openocd ${ocdMs} ms`);
        }
        console.log(JSON.stringify({ target, op: 'flash read_bank', kib, transport, medianKiBps: median(rates), runs: rates, cpuBoundKiBps: median(cpuRates), load: loadavg()[0] }));
      }
      const size = buspirate ? 32 * 1024 : target === 'stm32f4x' ? 16 * 1024 : 4 * 1024;
      const file = path.join(dir, 'img.bin');
      await writeFile(file, Buffer.alloc(size, 0x5a));
      await ocd.ok('reset halt');
      const rates: number[] = [];
      for (let i = 0; i < runs; i++) {
        rates.push(rate(await ocd.ok(`flash write_image erase ${file} 0x08004000 bin`, 120_000)));
      }
      console.log(JSON.stringify({ target, op: 'flash write_image erase', kib: size / 1024, transport, medianKiBps: median(rates), runs: rates }));
    } finally {
      await ocd.close();
      await sim.close();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
