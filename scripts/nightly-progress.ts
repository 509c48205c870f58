// A vitest reporter for long unattended runs (scripts/nightly.mjs turns it on with RIG_PROGRESS=1): one line
// on stderr as each test starts and ends, marked so that nightly can count them for its heartbeat instead of
// printing them. vitest's own reporter, when it writes to a log rather than a terminal, says nothing until a
// whole suite file is done, which on a hardware station is many minutes.
import type { Reporter, TestCase } from 'vitest/node';

/** The prefix of a progress line; what follows is JSON (ProgressEvent). */
export const PROGRESS_MARK = '##rig-progress ';

export interface ProgressEvent {
  event: 'start' | 'end';
  /** "smoke > the module answers AT". */
  test: string;
  file: string;
  state?: 'passed' | 'failed' | 'skipped' | 'pending';
  ms?: number;
}

function emit(e: ProgressEvent): void {
  process.stderr.write(`${PROGRESS_MARK}${JSON.stringify(e)}\n`);
}

export default class ProgressReporter implements Reporter {
  onTestCaseReady(test: TestCase): void {
    emit({ event: 'start', test: test.fullName, file: test.module.relativeModuleId });
  }

  onTestCaseResult(test: TestCase): void {
    const r = test.result();
    emit({ event: 'end', test: test.fullName, file: test.module.relativeModuleId, state: r.state, ms: Math.round(test.diagnostic()?.duration ?? 0) });
  }
}
