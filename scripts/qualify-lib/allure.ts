// Allure results for a qualification run, written with allure-js-commons' own reporter runtime (the library
// allure-vitest writes the suites' results with), so `npm run report -- <dir>` renders them like the suites':
// one result per case, the flow's steps and attachments (download check, read-back comparison, AT transcript,
// run record), the station as its environment. Status: passed; failed (the image); broken (inconclusive:
// the station); skipped. The message is the typed error that decided the case, its trace starts with its
// class and kind ("OpenOcdError [infrastructure]: …") as reports/categories.json expects.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { Stage, Status } from 'allure-js-commons';
import { FileSystemWriter, ReporterRuntime } from 'allure-js-commons/sdk/reporter';
import type { Recorder } from '../../rig/sota/recorder.ts';
import type { CaseError, CaseStatus } from './outcome.ts';

const STATUS: Record<CaseStatus, Status> = { passed: Status.PASSED, failed: Status.FAILED, inconclusive: Status.BROKEN, skipped: Status.SKIPPED, config: Status.BROKEN };

export interface AllureCaseInfo {
  name: string;
  /** Stable across runs of the same case on the same release pair: the history id is made from it. */
  fullName: string;
  labels: Record<string, string>;
  parameters: Record<string, string>;
  description?: string;
}

/** The results directory of one qualification run. */
export class QualifyAllure {
  private readonly runtime: ReporterRuntime;

  constructor(readonly resultsDir: string) {
    this.runtime = new ReporterRuntime({ writer: new FileSystemWriter({ resultsDir }) });
  }

  start(info: AllureCaseInfo): AllureCase {
    const labels = [...Object.entries(info.labels), ['host', os.hostname()], ['language', 'javascript'], ['framework', 'sota-rig qualify']].map(([name, value]) => ({ name: name!, value: value! }));
    const uuid = this.runtime.startTest({
      name: info.name,
      fullName: info.fullName,
      historyId: createHash('md5').update(`${info.fullName}|${info.labels.station ?? ''}`).digest('hex'),
      labels,
      parameters: Object.entries(info.parameters).map(([name, value]) => ({ name, value })),
      ...(info.description ? { description: info.description } : {}),
    });
    return new AllureCase(this.runtime, uuid);
  }
}

/** One case: a Recorder for the flow, then finish() with the case's status. */
export class AllureCase implements Recorder {
  private readonly figures: string[] = [];

  constructor(
    private readonly runtime: ReporterRuntime,
    private readonly uuid: string,
  ) {}

  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    const step = this.runtime.startStep(this.uuid, undefined, { name });
    try {
      const value = await body();
      if (step) {
        this.runtime.updateStep(step, (s) => void (s.status = Status.PASSED));
        this.runtime.stopStep(step);
      }
      return value;
    } catch (err) {
      if (step) {
        const kind = (err as { kind?: string }).kind;
        this.runtime.updateStep(step, (s) => {
          s.status = kind === 'infrastructure' ? Status.BROKEN : Status.FAILED;
          s.statusDetails = { message: err instanceof Error ? err.message : String(err) };
        });
        this.runtime.stopStep(step);
      }
      throw err;
    }
  }

  attach(name: string, content: string | Uint8Array, contentType: string): void {
    this.runtime.writeAttachment(this.uuid, undefined, name, Buffer.from(content), { contentType });
  }

  measure(name: string, value: number, unit: string): void {
    this.figures.push(`${name}: ${value} ${unit}`);
  }

  finish(status: CaseStatus, message: string, error?: CaseError): void {
    if (this.figures.length > 0) this.attach('figures', `${this.figures.join('\n')}\n`, 'text/plain');
    this.runtime.updateTest(this.uuid, (r) => {
      r.status = STATUS[status];
      r.stage = Stage.FINISHED;
      if (status !== 'passed') {
        r.statusDetails = {
          message: error ? `${error.message}` : message,
          trace: error ? `${error.name} [${error.kind}]: ${error.message}\n${message}` : message,
        };
      }
    });
    this.runtime.stopTest(this.uuid);
    this.runtime.writeTest(this.uuid);
  }
}
