import { defineConfig } from 'vitest/config';

// Unit tests sit next to the code they test (rig/, sim/); end-to-end SOTA suites live in suites/.
// forks, not threads: serialport's native binding is not safe in worker_threads (LIBRARIES.md §3.1).
export default defineConfig({
  test: {
    pool: 'forks',
    // Most tests wait on paced UARTs, protocol timers and OpenOCD rather than compute, so two workers on a
    // 2-core machine halve the wall time (vitest's default is cores − 1, i.e. one).
    maxWorkers: Number(process.env.RIG_TEST_WORKERS ?? 2),
    reporters: ['default', ['allure-vitest/reporter', { resultsDir: 'reports/allure-results' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['rig/**/*.test.ts', 'sim/**/*.test.ts', 'scripts/**/*.test.ts'],
          // A temp dir of the run's own; what a test leaves in it fails the run, naming it.
          globalSetup: ['scripts/testing/unit-temp-dir.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'suites',
          include: ['suites/**/*.test.ts'],
          // One run directory for the station health ledger that the suite files share (suites/support/health.ts).
          globalSetup: ['suites/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          // A hardware station is one set of boards: its files run one at a time. Each file on the virtual
          // station starts its own simulator (virtual stations lock per process), so those files can overlap.
          fileParallelism: (process.env.RIG_STATION ?? 'virtual') === 'virtual',
        },
      },
    ],
  },
});
