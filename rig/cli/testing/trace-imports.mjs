// For tests: `node --import ./trace-imports.mjs …` prints "import <url>" on stderr for every module the
// process resolves, so a test can check that `rig --help` stays clear of heavy libraries.
import { register } from 'node:module';

register('./trace-hooks.mjs', import.meta.url);
