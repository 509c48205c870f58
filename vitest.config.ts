import { configDefaults, defineConfig } from 'vitest/config';

// Unit tests sit next to the code they test (rig/, sim/); end-to-end SOTA suites live in suites/.
// forks, not threads: serialport's native binding is not safe in worker_threads (LIBRARIES.md §3.1).
export default defineConfig({
  test: {
    pool: 'forks',
    // Most tests wait on paced UARTs, protocol timers and OpenOCD rather than compute, so two workers on a
    // 2-core machine halve the wall time (vitest's default is cores − 1, i.e. one).
    maxWorkers: Number(process.env.RIG_TEST_WORKERS ?? 2),
    // reportMatchers: false keeps every passing expect() out of the report's steps: the steps are the SOTA
    // phases, and a failed expect is the test's status message anyway.
    // RIG_PROGRESS=1 (npm run nightly sets it) adds a line per test start and end for nightly's heartbeat.
    reporters: [
      'default',
      // RIG_ALLURE_RESULTS: where a farm job keeps its station's results (npm run nightly -- --results).
      ['allure-vitest/reporter', { resultsDir: process.env.RIG_ALLURE_RESULTS ?? 'reports/allure-results', reportMatchers: false }],
      ...(process.env.RIG_PROGRESS === '1' ? ['./scripts/nightly-progress.ts'] : []),
    ],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // suites/support holds the suites' own helpers; their tests need no station, so they run once here
          // rather than once per station in every nightly process.
          include: ['rig/**/*.test.ts', 'sim/**/*.test.ts', 'scripts/**/*.test.ts', 'suites/support/**/*.test.ts'],
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
          exclude: [...configDefaults.exclude, 'suites/support/**', 'suites/health/**'],
          // One run directory for the station health ledger that the suite files share (suites/support/health.ts).
          globalSetup: ['suites/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          // A hardware station is one set of boards: its files run one at a time. Each file on the virtual
          // station starts its own simulator (virtual stations lock per process), so those files can overlap.
          fileParallelism: (process.env.RIG_STATION ?? 'virtual') === 'virtual',
        },
      },
      {
        extends: true,
        test: {
          // The station's health check (suites/health): what npm run nightly runs first on each station.
          name: 'health',
          include: ['suites/health/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
