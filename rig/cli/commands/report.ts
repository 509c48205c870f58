// `rig report`: scripts/report.mjs (zx, run through tsx as `npm run report` does), with its options.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InfrastructureError } from '../../errors.ts';
import { ExitCode, packageRoot } from '../main.ts';
import { runCommand } from '../station.ts';

export async function run(argv: string[]): Promise<number> {
  return runCommand(false, async () => {
    const root = packageRoot();
    const tsx = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
    const args = argv.map((a) => (a === '--help-report' ? '--help' : a));
    const child = spawn(process.execPath, ['--import', tsx, path.join(root, 'scripts', 'report.mjs'), ...args], { stdio: 'inherit', cwd: root, env: { ...process.env, INIT_CWD: process.env.INIT_CWD ?? process.cwd() } });
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', (err) => reject(new InfrastructureError(`could not run scripts/report.mjs: ${err.message}`, { cause: err })));
        child.once('close', (c) => resolve(c));
      });
      return code === 0 ? ExitCode.ok : ExitCode.failure;
    } finally {
      process.removeListener('SIGINT', ignore);
    }
  }, { ownSignals: true });
}
