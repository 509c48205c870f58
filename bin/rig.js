#!/usr/bin/env node
// The `rig` command starts from the compiled dist/ (no TypeScript at start-up: a Pi is slow).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/rig/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('rig: dist/ is missing; run `npm run setup` (or `npm run build`) first');
  process.exit(70);
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
