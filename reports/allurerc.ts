// Allure 3 configuration for `npm run report` (scripts/report.mjs), which passes it with --config.
// Allure loads this file itself (through jiti), so it is evaluated once per report, when the results are
// already on disk: that is what lets it declare one environment per station found in them.
//
// Inputs, all optional (scripts/report.mjs sets them):
//   SOTA_REPORT_RESULTS  JSON array of allure-results directories to look for stations in
//                        (default: reports/allure-results)
//   SOTA_REPORT_HISTORY  the history file (default: reports/history/history.jsonl)
//   SOTA_REPORT_NAME     the report's title
//   SOTA_REPORT_INVENTORY JSON array of `rig inventory --json` files (the farm's hosts) for the per-station
//                        tables, besides the station records the suites leave in the results directories
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'allure';
import { environmentsConfig, planEnvironments, scanOrigins } from '../scripts/report-lib/environments.ts';
import { readInventories, readStationRecords, reportVariables } from '../scripts/report-lib/stations.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

function pathList(variable: string, fallback: string[]): string[] {
  const raw = process.env[variable];
  if (!raw) return fallback;
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || !parsed.every((d) => typeof d === 'string')) {
    throw new Error(`${variable}: expected a JSON array of paths, seen ${raw}`);
  }
  return parsed;
}

const resultsDirs = pathList('SOTA_REPORT_RESULTS', [path.join(here, 'allure-results')]);
const environments = planEnvironments(await scanOrigins(resultsDirs));
const records = [...(await readInventories(pathList('SOTA_REPORT_INVENTORY', []))), ...(await readStationRecords(resultsDirs))];
const variables = reportVariables(environments, records);
const categories: unknown = JSON.parse(readFileSync(path.join(here, 'categories.json'), 'utf8'));

export default defineConfig({
  name: process.env.SOTA_REPORT_NAME ?? 'sota-rig',
  output: path.join(here, 'allure-report'),
  historyPath: process.env.SOTA_REPORT_HISTORY ?? path.join(here, 'history', 'history.jsonl'),
  environments: environmentsConfig(environments, variables.byEnvironment),
  variables: variables.report,
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
