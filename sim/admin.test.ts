// The admin HTTP API: clear JSON errors with 4xx for bad input, and routes other parts can add.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { parseBody, startAdmin, type AdminServer } from './admin.ts';
import { SimClock } from './clock.ts';
import { startCloud, type CloudPart } from './cloud/index.ts';

let admin: AdminServer;
let cloud: CloudPart;
beforeEach(async () => {
  admin = await startAdmin();
  cloud = startCloud({}, { clock: new SimClock(0.001), admin, log: () => {} });
});
afterEach(async () => {
  await cloud.close();
  await admin.close();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: { error?: string } & Record<string, unknown> }> {
  const res = await fetch(`${admin.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

describe('admin API', () => {
  test('listens on 127.0.0.1 only', () => {
    expect(admin.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('POST /packages returns the hashes; GET /packages lists without the data', async () => {
    const r = await call('POST', '/packages', { component: 'STM32', version: '2_0_0', type: 'full', data: Buffer.from('123456789').toString('base64') });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^pkg-/),
      size: 9,
      md5: '25f9e794323b453885f5181f1b624d0b',
      crc32: 0xcbf43926,
      crc: 0xcbf43926,
      sha256: '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225',
    });
    const list = await call('GET', '/packages');
    expect(JSON.stringify(list.body)).not.toContain('"data"');
  });

  test('bad input: 400 with a message naming the problem', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/packages', { version: '2', type: 'full', data: 'AA==' }, /component/],
      ['POST', '/packages', { component: 'S', version: '2', type: 'full', data: '***' }, /data: base64/],
      ['POST', '/packages', { component: 'S', version: 'bad version!', type: 'full', data: 'AA==' }, /version/],
      ['POST', '/packages', { component: 'S', version: '2', type: 'delta', data: 'AA==' }, /needs sourceVersion/],
      ['POST', '/packages', { component: 'S', version: '2', type: 'full', data: 'AA==', extra: 1 }, /extra/],
      ['POST', '/packages', '{not json', /not JSON/],
      ['POST', '/plans', { components: [] }, /components/],
      ['POST', '/plans', { components: [{ component: 'S', packageId: 'pkg-999' }] }, /no package pkg-999/],
      ['POST', '/plans', { components: [{ component: 'S', packageId: 'x' }], rejectionPeriodMinutes: 5 }, /rejectionPeriodMinutes/],
      ['POST', '/plans/plan-404/confirm', { device: 'x' }, /no plan plan-404/],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error).toMatch(message);
    }
  });

  test('unknown route → 404 listing the routes; wrong method → 405', async () => {
    const r = await call('GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.body.error).toContain('POST /packages');
    expect((await call('DELETE', '/packages')).status).toBe(405);
  });

  test('other parts add routes; a duplicate is refused; a handler bug is a 500 with its message', async () => {
    const seen: unknown[] = [];
    admin.route('POST', '/target/:what', ({ params, body }) => {
      seen.push(params.what);
      return parseBody(z.object({ on: z.boolean() }), body);
    });
    expect(() => admin.route('POST', '/target/:what', () => ({}))).toThrow(/registered twice/);
    expect(await call('POST', '/target/power', { on: true })).toEqual({ status: 200, body: { on: true } });
    expect(seen).toEqual(['power']);
    expect((await call('POST', '/target/power', { on: 'yes' })).status).toBe(400);
    admin.route('GET', '/boom', () => {
      throw new Error('kaput');
    });
    const boom = await call('GET', '/boom');
    expect(boom.status).toBe(500);
    expect(boom.body.error).toContain('kaput');
  });
});
