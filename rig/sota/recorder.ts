// How flows hand their evidence to whoever runs them (docs/architecture.md §2): the CLI prints and saves it, the suites
// map it to Allure steps and attachments. rig/ never imports vitest or Allure.

export interface Recorder {
  /** A named phase of the flow; nested calls are sub-steps. Resolves or rejects as `body` does. */
  step<T>(name: string, body: () => Promise<T>): Promise<T>;
  /** Evidence: a transcript, a log, a comparison, a chart. */
  attach(name: string, content: string | Uint8Array, contentType: string): void;
  /** A figure: bytes/s, a phase duration. */
  measure(name: string, value: number, unit: string): void;
  /** Progress of a long phase (downloads, block reads, programming, read-back) for progress bars. */
  progress?(phase: string, done: number, total: number): void;
}

/** A recorder that keeps nothing, for callers that only want the result. */
export const silentRecorder: Recorder = {
  step: (_name, body) => body(),
  attach: () => undefined,
  measure: () => undefined,
};

/**
 * The probe's progress option for a recorder that shows progress (the CLI's bars); none for one that does
 * not, so the write stays one OpenOCD call (the suites, the bench).
 */
export function programProgress(recorder: Recorder): { progress?: (done: number, total: number) => void } {
  const progress = recorder.progress?.bind(recorder);
  return progress ? { progress: (done, total) => progress('programming', done, total) } : {};
}
