// A rig process that holds a station's power lines, for the tests that kill it or crash it: it opens the
// lines from the config in argv[2] and obeys JSON commands on stdin, one per line, answering on stdout.
//   {"set":"vbat","on":false}  {"get":"vbat"}  {"close":true}  {"throw":"boom"}  {"reject":"boom"}
//   {"otherCleanup":true}: another module's SIGTERM cleanup, written the composable way (do the work,
//   remove yourself, re-raise only if no listener is left), to show the two cooperate.
import { createInterface } from 'node:readline';
import { openPowerLines, type PowerLines } from '../open.ts';
import { isRigError } from '../../errors.ts';

const say = (msg: unknown): void => void process.stdout.write(`${JSON.stringify(msg)}\n`);
const errorJson = (err: unknown): unknown =>
  isRigError(err) ? err.toJSON() : { name: (err as Error)?.name, message: (err as Error)?.message, code: (err as NodeJS.ErrnoException)?.code };

const config = JSON.parse(process.argv[2] ?? '{}') as { station: string; power: Parameters<typeof openPowerLines>[0] };

let power: PowerLines;
try {
  power = await openPowerLines(config.power, { station: config.station });
} catch (err) {
  say({ error: errorJson(err) });
  process.exit(3);
}
say({ opened: [...power.lines.keys()] });

for await (const text of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(text) as { set?: string; on?: boolean; get?: string; close?: boolean; throw?: string; reject?: string; otherCleanup?: boolean };
  try {
    if (cmd.set !== undefined) {
      await power.line(cmd.set).set(cmd.on === true);
      say({ done: text });
    } else if (cmd.get !== undefined) {
      say({ value: await power.line(cmd.get).get() });
    } else if (cmd.close) {
      await power.close();
      say({ closed: true });
    } else if (cmd.throw !== undefined) {
      const msg = cmd.throw;
      setImmediate(() => {
        throw new Error(msg);
      });
    } else if (cmd.otherCleanup) {
      const other = (): void => {
        // Asynchronous work of its own, finishing after the power lines' cleanup has started.
        void (async () => {
          for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
          say({ otherCleanup: 'done' });
          process.removeListener('SIGTERM', other);
          if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM');
        })();
      };
      process.on('SIGTERM', other);
      say({ done: text });
    } else if (cmd.reject !== undefined) {
      void Promise.reject(new Error(cmd.reject));
    }
  } catch (err) {
    say({ error: errorJson(err) });
  }
}
