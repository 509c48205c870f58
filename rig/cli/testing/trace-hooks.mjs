// Module resolution hook (runs on the loader thread): a synchronous write to fd 2 per resolved module.
import { writeSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  writeSync(2, `import ${result.url}\n`);
  return result;
}
