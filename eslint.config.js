import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'run/', 'reports/allure-report/', 'reports/allure-results/', 'reports/mutation/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // sim/ is the independent model of the hardware: it must never see the rig's code.
    files: ['sim/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/rig/**', '../rig/*'], message: 'sim/ never imports rig/ (DESIGN.md §2)' }] }] },
  },
  {
    files: ['rig/**/*.ts'],
    ignores: ['rig/station/virtual.ts', '**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/sim/**'], message: 'only rig/station/virtual.ts may start sim/ (DESIGN.md §2)' }, { group: ['vitest', 'allure-*'], message: 'rig/ does not depend on vitest or Allure (DESIGN.md §2)' }] }] },
  },
);
