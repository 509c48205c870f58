// `npm run mutate`: mutation testing (Stryker 9.6 with its vitest runner; 10.x needs Node 22) over the
// modules whose tests are fast. Each mutant is a small change to the code (a condition flipped, a call
// removed); a test that fails on it "kills" it. A surviving mutant is behaviour no test pins down. Not part
// of `npm test`: it takes long. The report: reports/mutation/index.html (and mutation.json).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'rig/at/{framer,lines,port,transcript,passive,hangup}.ts',
    'rig/quecthing/{cursor,events,fields,quecthing}.ts',
    'rig/images/*.ts',
    // The pure parts of rig/sota and rig/probe: what decides, not what drives a station.
    'rig/sota/{boot-record,dut-verdict,faults,pieces,record,schedule,verdict}.ts',
    'rig/probe/{args,log,tcl}.ts',
    '!**/*.test.ts',
  ],
  coverageAnalysis: 'perTest',
  // A mutant in a module-level constant (a CRC table) would need every test run again: left out.
  ignoreStatic: true,
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  // On top of the test's own time: a mutant that loops for ever is a timeout (counted as killed) this much later.
  timeoutMS: 5_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: 'reports/mutation/.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 80, low: 60, break: null },
};
