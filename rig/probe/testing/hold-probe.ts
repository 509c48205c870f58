// A stand-in for a rig process that dies with an OpenOCD still running, for the "no OpenOCD outlives the
// rig" tests. Prints {"pid","port"} once OpenOCD is up, then waits for one line on stdin: `exit` →
// process.exit without closing the probe, `throw` → an uncaught exception; or is killed from outside.
// `--no-pdeathsig` leaves the exit handler as the only guard.

import { OpenOcdSession } from '../openocd.ts';

const parentDeathSignal = !process.argv.includes('--no-pdeathsig');
const session = await OpenOcdSession.start({ station: 'orphan-test', args: ['-c', 'adapter driver dummy'], parentDeathSignal });
process.stdout.write(`${JSON.stringify({ pid: session.pid, port: session.tclPort })}\n`);
process.stdin.setEncoding('utf8');
process.stdin.once('data', (line: string) => {
  if (line.trim() === 'exit') process.exit(3);
  if (line.trim() === 'throw') throw new Error('the rig crashed');
});
