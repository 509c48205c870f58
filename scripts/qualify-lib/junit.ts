// JUnit XML for a qualification run, the format every CI server reads (GitHub Actions test reporters,
// GitLab's `artifacts:reports:junit`, Jenkins): one <testsuite> per run, one <testcase> per case. A failed
// case is a <failure> (the image), an inconclusive one an <error> (the station), a skipped one <skipped>.
import type { CaseStatus } from './outcome.ts';

export interface JunitCase {
  name: string;
  /** Dotted group, e.g. "qualify.STM32.2_1_0". */
  classname: string;
  seconds: number;
  status: CaseStatus;
  /** One line. */
  message: string;
  /** The whole story (error message, verdict summary, where the record is). */
  detail: string;
  errorName?: string;
}

export interface JunitSuite {
  name: string;
  timestamp: string;
  hostname: string;
  properties: Record<string, string>;
  cases: readonly JunitCase[];
}

// XML 1.0 allows tab, LF, CR and #x20 upwards (minus the surrogates and FFFE/FFFF): a module's garbage bytes
// in a message must not make the file unreadable.
// eslint-disable-next-line no-control-regex
const INVALID = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function escapeXml(text: string): string {
  return text.replace(INVALID, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const attr = (o: Record<string, string | number>): string => Object.entries(o).map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`).join('');

function caseXml(c: JunitCase): string {
  const head = `    <testcase${attr({ classname: c.classname, name: c.name, time: c.seconds.toFixed(3) })}`;
  const body = escapeXml(c.detail);
  switch (c.status) {
    case 'passed':
      return `${head}/>`;
    case 'skipped':
      return `${head}>\n      <skipped${attr({ message: c.message })}/>\n    </testcase>`;
    case 'failed':
      return `${head}>\n      <failure${attr({ message: c.message, type: c.errorName ?? 'ImageFailure' })}>${body}</failure>\n    </testcase>`;
    case 'inconclusive':
    case 'config':
      return `${head}>\n      <error${attr({ message: c.message, type: c.status === 'config' ? (c.errorName ?? 'ConfigError') : `inconclusive: ${c.errorName ?? 'StationFailure'}` })}>${body}</error>\n    </testcase>`;
  }
}

export function junitXml(suite: JunitSuite): string {
  const n = (s: CaseStatus) => suite.cases.filter((c) => c.status === s).length;
  const time = suite.cases.reduce((t, c) => t + c.seconds, 0).toFixed(3);
  const counts = { tests: suite.cases.length, failures: n('failed'), errors: n('inconclusive') + n('config'), skipped: n('skipped'), time };
  const props = Object.entries(suite.properties).map(([name, value]) => `      <property${attr({ name, value })}/>`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attr({ name: suite.name, ...counts })}>`,
    `  <testsuite${attr({ name: suite.name, ...counts, timestamp: suite.timestamp, hostname: suite.hostname })}>`,
    ...(props.length > 0 ? ['    <properties>', ...props, '    </properties>'] : []),
    ...suite.cases.map(caseXml),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
