import { defineConfig } from 'vitest/config';

// The tests `npm run mutate` (Stryker) runs against each mutant: the fast ones, for the modules it mutates
// (stryker.config.mjs). Stryker's vitest runner uses worker threads, where serialport's native binding
// crashes: no test here opens a real port (those are in pty.test.ts files and sota-example.test.ts).
export default defineConfig({
  test: {
    include: [
      'rig/at/{framer,fuzz,hangup,lines,passive,port,transcript}.test.ts',
      'rig/quecthing/{cursor,events,quecthing}.test.ts',
      'rig/images/*.test.ts',
      'rig/sota/{boot-record,dut-observe,dut-verdict,faults,pieces,readback,record,replay,schedule,verdict}.test.ts',
      'rig/probe/{args,log,tcl}.test.ts',
    ],
    testTimeout: 30_000,
  },
});
