// rig/config — the rig's configuration: schemas, loading, secrets, and the built-in virtual station entry.
//
//   // rig.config.ts, anywhere in the repository: package.json's "exports" maps sota-rig/config here
//   import { defineConfig } from 'sota-rig/config';
//   export default defineConfig({ stations: { 'bench-2': { module: { port: '/dev/serial/by-id/…' }, … } } });
//
//   const config = await loadConfig();            // --config, RIG_CONFIG, ./rig.config.ts|.mjs|.js|.json
//   config.stations['bench-2'];                   // validated, defaults filled in; `virtual` is always there
//
// A config that does not validate throws one ConfigValidationError (a ConfigError: exit code 2) listing each
// problem as `<key path>: expected …, found …`. Secrets are { env: 'NAME' }, read by resolveSecret.
export { CONFIG_FILE_NAMES, defineConfig, loadConfig, parseConfig, resolveSecret, type LoadConfigOptions, type LoadedConfig } from './load.ts';
export { ConfigValidationError, describeIssues, formatPath, parseOrThrow, type ConfigProblem } from './issues.ts';
export * from './schema.ts';
