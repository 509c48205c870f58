// The virtual station's admin HTTP API (JSON, 127.0.0.1 only). Each part of the station registers its own
// routes (cloud, module faults, later the target and the Firmata board), so this file knows none of them.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface AdminRequest {
  /** Path parameters from `:name` segments of the route. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (undefined when the body was empty). */
  body: unknown;
}

/** Thrown by a handler to answer with a 4xx and a clear message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Handler = (req: AdminRequest) => unknown;

/** Validates a body against a zod schema, answering 400 with every problem listed. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(body)'}: ${i.message}`);
    throw new HttpError(400, `invalid request body: ${issues.join('; ')}`);
  }
  return r.data;
}

interface Route {
  method: Method;
  pattern: string;
  segments: string[];
  handler: Handler;
}

const maxBodyBytes = 64 * 1024 * 1024;

export interface AdminServer {
  readonly url: string;
  /** Adds a route; `:name` path segments become `params.name`. A duplicate method+path throws. */
  route(method: Method, pattern: string, handler: Handler): void;
  close(): Promise<void>;
}

export async function startAdmin(log: (msg: string) => void = () => {}): Promise<AdminServer> {
  const routes: Route[] = [];

  const match = (method: string, pathname: string): { route: Route; params: Record<string, string> } | 'wrong-method' | undefined => {
    const parts = pathname.split('/').filter((s) => s.length > 0);
    let methodMismatch = false;
    for (const route of routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i]!;
        const part = parts[i]!;
        if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(part);
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route, params };
    }
    return methodMismatch ? 'wrong-method' : undefined;
  };

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body ?? null);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const readBody = (req: IncomingMessage): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBodyBytes) {
          reject(new HttpError(413, `request body larger than ${maxBodyBytes} bytes`));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8').trim();
        if (text === '') return resolve(undefined);
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new HttpError(400, `request body is not JSON: ${(err as Error).message}`));
        }
      });
    });

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = req.method ?? 'GET';
      try {
        const m = match(method, url.pathname);
        if (m === undefined) throw new HttpError(404, `no route ${method} ${url.pathname}; routes: ${routes.map((r) => `${r.method} ${r.pattern}`).join(', ')}`);
        if (m === 'wrong-method') throw new HttpError(405, `${url.pathname} does not accept ${method}`);
        const body = await readBody(req);
        const result = await m.route.handler({ params: m.params, query: url.searchParams, body });
        send(res, 200, result ?? { ok: true });
      } catch (err) {
        if (err instanceof HttpError) send(res, err.status, { error: err.message });
        else {
          log(`admin: ${method} ${url.pathname} failed: ${(err as Error).stack ?? String(err)}`);
          send(res, 500, { error: `internal error: ${(err as Error).message}` });
        }
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    route(method, pattern, handler) {
      if (routes.some((r) => r.method === method && r.pattern === pattern)) throw new Error(`admin route ${method} ${pattern} registered twice`);
      routes.push({ method, pattern, segments: pattern.split('/').filter((s) => s.length > 0), handler });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
