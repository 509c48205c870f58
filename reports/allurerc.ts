// Allure 3 configuration for `npm run report` (scripts/report.mjs), which passes it with --config.
// Allure loads this file itself (through jiti), so it is evaluated once per report, when the results are
// already on disk: that is what lets it declare one environment per station found in them.
//
// Inputs, all optional (scripts/report.mjs sets them):
//   SOTA_REPORT_RESULTS  JSON array of allure-results directories to look for stations in
//                        (default: reports/allure-results)
//   SOTA_REPORT_HISTORY  the history file (default: reports/history/history.jsonl)
//   SOTA_REPORT_NAME     the report's title
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'allure';
import { environmentsConfig, planEnvironments, scanOrigins } from '../scripts/report-lib/environments.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

function resultsDirs(): string[] {
  const raw = process.env.SOTA_REPORT_RESULTS;
  if (!raw) return [path.join(here, 'allure-results')];
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || !parsed.every((d) => typeof d === 'string')) {
    throw new Error(`SOTA_REPORT_RESULTS: expected a JSON array of directories, seen ${raw}`);
  }
  return parsed;
}

const environments = planEnvironments(await scanOrigins(resultsDirs()));
const categories: unknown = JSON.parse(readFileSync(path.join(here, 'categories.json'), 'utf8'));

export default defineConfig({
  name: process.env.SOTA_REPORT_NAME ?? 'sota-rig',
  output: path.join(here, 'allure-report'),
  historyPath: process.env.SOTA_REPORT_HISTORY ?? path.join(here, 'history', 'history.jsonl'),
  environments: environmentsConfig(environments),
  categories: { rules: categories as never },
  plugins: {
    awesome: {
      options: {
        // One self-contained index.html: it opens from file:// (a copied or downloaded report) as well as
        // from a web server; the multi-file report needs an http server to load its data.
        singleFile: true,
        reportLanguage: 'en',
        groupBy: ['parentSuite', 'suite', 'subSuite'],
      },
    },
  },
});
