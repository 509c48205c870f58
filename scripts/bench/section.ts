// One section of `npm run bench`, in a process of its own so that its CPU time and peak RSS are its own (the
// peak RSS of the parallel section is item 5's "rig process"). Started by scripts/bench.mjs:
//
//   tsx scripts/bench/section.ts read|probe|parallel --manifest <dir/manifest.json> --out <result.json>
//       --reps N [--baud B] [--counts 1,2,4]
//
// Progress goes to stderr; the result (with the load average before and after) is written to --out.
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { isRigError } from '../../rig/errors.ts';
import { loadBenchFirmware } from './stations.ts';

const SECTIONS = ['read', 'probe', 'parallel'] as const;
type Section = (typeof SECTIONS)[number];

function usage(message: string): never {
  process.stderr.write(`bench section: ${message}\n`);
  process.exit(64);
}

function count(name: string, raw: string | undefined, min: number): number {
  const v = Number(raw);
  if (raw === undefined || !Number.isInteger(v) || v < min) usage(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { manifest: { type: 'string' }, out: { type: 'string' }, reps: { type: 'string' }, baud: { type: 'string' }, counts: { type: 'string' } },
  });
  const section = positionals[0] as Section;
  if (positionals.length !== 1 || !SECTIONS.includes(section)) usage(`expected one of ${SECTIONS.join(', ')}, got ${JSON.stringify(positionals.join(' '))}`);
  if (!values.manifest || !values.out) usage('--manifest and --out are required');
  const reps = count('reps', values.reps, 1);
  const fw = await loadBenchFirmware(values.manifest);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const loadStart = loadavg();
  const t0 = performance.now();
  let result: unknown;
  // Each section's modules only (the parallel section's peak RSS is item 5's figure: no peer, no probe bench).
  switch (section) {
    case 'read': {
      const { readSection } = await import('./read-section.ts');
      result = await readSection(fw, count('baud', values.baud, 0), reps, log);
      break;
    }
    case 'probe': {
      const { probeSection } = await import('./probe-section.ts');
      result = await probeSection(fw, reps, log);
      break;
    }
    case 'parallel': {
      const counts = (values.counts ?? '1,2,4').split(',').map((c) => count('counts', c, 1));
      const { parallelSection } = await import('./parallel-section.ts');
      result = await parallelSection(fw, count('baud', values.baud, 1), counts, reps, log);
      break;
    }
  }
  const out = { section, result, durationMs: Math.round(performance.now() - t0), load: { start: loadStart, end: loadavg() } };
  await writeFile(values.out, `${JSON.stringify(out, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // The station is named in every rig error; a bug shows its stack.
    process.stderr.write(`bench section failed: ${isRigError(err) ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
