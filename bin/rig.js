#!/usr/bin/env -S node --max-semi-space-size=2
// The `rig` command starts from the compiled dist/ (no TypeScript at start-up: a Pi is slow). Its young
// generation is capped at 2 MB a semi-space: V8 lets it grow to 16 MB once enough objects have survived a
// scavenge (an AT transcript does, block after block), ~25 MB of RSS for no speed a rig can measure.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/rig/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('rig: dist/ is missing; run `npm run setup` (or `npm run build`) first');
  process.exit(70);
}

/**
 * The newest source the build compiles (rig/, sim/) when it is newer than dist/: after a git pull without a
 * build, `rig` would otherwise run yesterday's code without a word. A stat per file (about a hundred) costs
 * a few milliseconds; the build writes every output file, so main.js's time is the build's.
 */
function newerSource() {
  const built = statSync(main).mtimeMs;
  for (const dir of ['rig', 'sim']) {
    const root = fileURLToPath(new URL(`../${dir}/`, import.meta.url));
    let names;
    try {
      names = readdirSync(root, { recursive: true });
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
      const file = root + name;
      if (statSync(file, { throwIfNoEntry: false })?.mtimeMs > built) return `${dir}/${name}`;
    }
  }
  return undefined;
}
const stale = process.env.RIG_NO_STALE_CHECK ? undefined : newerSource();
if (stale) console.error(`rig: warning: dist/ is older than ${stale} (git pull?); run \`npm run build\` — this runs the old build`);

const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
// The command is done (station safe, record written); a stop signal while the process winds down ends it now
// with the interrupted exit code rather than killing it outright.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`rig: interrupted (${sig}) after the command had finished; what it wrote stands\n`);
    process.exit(130);
  });
}
