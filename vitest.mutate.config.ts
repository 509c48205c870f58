import { defineConfig } from 'vitest/config';

// The tests `npm run mutate` (Stryker) runs against each mutant: the fast ones, for the modules it mutates
// (stryker.config.mjs). Nothing here starts a sim or a pty; Stryker's vitest runner uses worker threads.
export default defineConfig({
  test: {
    include: [
      'rig/at/{framer,hangup,lines,passive,port,transcript}.test.ts',
      // quecthing.test.ts has a case on a real pty, which serialport cannot open from Stryker's worker threads.
      'rig/quecthing/{cursor,events,sota-example}.test.ts',
      'rig/images/*.test.ts',
      'rig/sota/{boot-record,dut-observe,dut-verdict,faults,pieces,readback,record,replay,schedule,verdict}.test.ts',
      'rig/probe/{args,log,tcl}.test.ts',
    ],
    testTimeout: 30_000,
  },
});
