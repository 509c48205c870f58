// A stand-in for a rig process that dies with an OpenOCD still running, for the "no OpenOCD outlives the
// rig" tests. Prints {"pid"} once OpenOCD is up, then waits for one line on stdin: `exit` →
// process.exit without closing the probe, `throw` → an uncaught exception; or is killed from outside.
// `--no-pdeathsig` leaves the exit handler as the only guard. `--probe <runDir>` holds a whole Probe (its
// scratch directory under runDir) instead of a bare session.

import { OpenOcdSession } from '../openocd.ts';
import { Probe } from '../probe.ts';

const parentDeathSignal = !process.argv.includes('--no-pdeathsig');
const probeAt = process.argv.indexOf('--probe');
const args = ['-c', 'adapter driver dummy'];
let held: { pid: number };
if (probeAt >= 0) {
  // The dummy adapter has no target: the probe is opened, never used.
  const probe = await Probe.open({ station: 'orphan-test', args, targetName: 'none', flashBank: 0, flashBase: 0, flashSizeRegister: 0, runDir: process.argv[probeAt + 1], parentDeathSignal });
  held = { pid: probe.pid };
} else {
  const session = await OpenOcdSession.start({ station: 'orphan-test', args, parentDeathSignal });
  held = { pid: session.pid };
}
process.stdout.write(`${JSON.stringify(held)}\n`);
process.stdin.setEncoding('utf8');
process.stdin.once('data', (line: string) => {
  if (line.trim() === 'exit') process.exit(3);
  if (line.trim() === 'throw') throw new Error('the rig crashed');
});
