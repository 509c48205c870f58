// A process that opens a station and holds it until it is told to stop, for the signal tests:
//   node --import tsx rig/station/testing/hold-station.ts <station> <lockDir> [timeScale] [hold|crash]
// It prints one JSON line once the station is open: its own pid and every process below it. With `crash`
// it then dies of an uncaught exception, as a flow with a bug would.
import { parseConfig } from '../../config/load.ts';
import { openStation } from '../open.ts';
import { commandLine, descendants } from './procs.ts';

const [name = 'virtual', lockDir, timeScale = '0.05', mode = 'hold'] = process.argv.slice(2);
const config = parseConfig({ stations: { [name]: { kind: 'virtual', timeScale: Number(timeScale) } } });
const station = await openStation(name, { config, lockDir });
const procs = descendants(process.pid).map((pid) => ({ pid, cmd: commandLine(pid) }));
process.stdout.write(`${JSON.stringify({ pid: process.pid, procs, openocd: station.probe.pid, lockFile: station.lock.file })}\n`);
if (mode === 'crash') {
  setTimeout(() => {
    throw new Error('a bug in the flow');
  }, 10);
}
// Held until a signal ends the process; the station's own handlers bring it to its safe state first.
setInterval(() => {}, 60_000);
