// `npm run fuzz`: the AT read path against a million hostile inputs, and the heap a port holds under
// garbage. Options: --inputs N (1000000), --seed S (16), --ports P (4), --lines L (10000 lines of 4 KiB per
// port), --out FILE (reports/fuzz/latest.json). Exit 0 when nothing untyped was thrown, 1 otherwise.
// The heap is measured twice: with the transcript's byte budget (as shipped) and without it (every entry up
// to the entry limit kept, as before the budget), so the figure says what the budget buys.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzFramerAndDecoder, garbageThroughPorts } from '../rig/at/testing/fuzz.ts';

const { values } = parseArgs({
  options: { inputs: { type: 'string', default: '1000000' }, seed: { type: 'string', default: '16' }, ports: { type: 'string', default: '4' }, lines: { type: 'string', default: '10000' }, out: { type: 'string', default: 'reports/fuzz/latest.json' } },
});
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`fuzz: --${name} must be a whole number ≥ 1, got ${values[name]}\n`);
    process.exit(64);
  }
  return n;
};
const inputs = num('inputs');
const seed = num('seed');
const ports = num('ports');
const lines = num('lines');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) process.stderr.write('fuzz: run under node --expose-gc (npm run fuzz does) for a heap figure after collection\n');

const load0 = loadavg()[0]!;
const t0 = performance.now();
const stats = fuzzFramerAndDecoder({ count: inputs, seed });
const fuzzMs = performance.now() - t0;
process.stdout.write(
  `framer + decoder: ${stats.inputs.toLocaleString('en')} inputs, ${stats.chunks.toLocaleString('en')} reads, ${(stats.bytes / 1e6).toFixed(1)} MB in ${(fuzzMs / 1000).toFixed(1)} s; ` +
    `untyped exceptions ${stats.untyped.length}, typed ${stats.typed}\n  frames ${JSON.stringify(stats.frames)}\n  events ${JSON.stringify(stats.events)}\n`,
);
for (const u of stats.untyped) process.stdout.write(`  UNTYPED: ${u.error.split('\n')[0]} on ${JSON.stringify(u.input)}\n`);

const bounded = garbageThroughPorts({ ports, lines, seed, ...(gc ? { gc } : {}) });
const unbounded = garbageThroughPorts({ ports, lines, seed, transcriptMaxBytes: Number.POSITIVE_INFINITY, ...(gc ? { gc } : {}) });
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MB`;
process.stdout.write(
  `heap per port after ${lines.toLocaleString('en')} lines of 4 KiB garbage (${ports} ports): ${mb(bounded.perPortBytes)} with the byte budget ` +
    `(${bounded.heldEntries} entries, ${bounded.dropped} dropped), ${mb(unbounded.perPortBytes)} without it (${unbounded.heldEntries} entries); thrown ${bounded.thrown + unbounded.thrown}\n`,
);
const load1 = loadavg()[0]!;
const out = path.resolve(values.out!);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ at: new Date().toISOString(), load: [load0, load1], seed, fuzz: { ...stats, ms: Math.round(fuzzMs) }, heap: { ports, lines, bounded, unbounded, gc: gc !== undefined } }, null, 2)}\n`,
);
process.stdout.write(`written ${out} (load ${load0.toFixed(1)} → ${load1.toFixed(1)})\n`);
process.exit(stats.untyped.length === 0 && bounded.thrown + unbounded.thrown === 0 ? 0 : 1);
