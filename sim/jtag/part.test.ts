// The target's admin routes and its rails, as sim/main.ts wires them.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { startAdmin, type AdminServer } from '../admin.ts';
import { Rails } from '../rails.ts';
import { startJtagPart } from './part.ts';

let admin: AdminServer | undefined;
let close: (() => Promise<void>) | undefined;
let dir: string | undefined;
afterEach(async () => {
  await close?.();
  await admin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  admin = close = dir = undefined;
});

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

test('admin routes switch the supply and NRST through the rails and load/dump flash', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'jtag-part-'));
  const image = Buffer.alloc(64, 0xa5);
  image.writeUInt32LE(0x20000800, 0);
  image.writeUInt32LE(0x08000041, 4);
  await writeFile(path.join(dir, 'img.bin'), image);
  admin = await startAdmin();
  const rails = new Rails();
  const part = await startJtagPart({ target: 'stm32f1x', flashSizeKiB: 128, flashImage: path.join(dir, 'img.bin') }, { rails, admin, log: () => {} });
  close = part.close;
  expect(part.info).toEqual({ jtag: { host: '127.0.0.1', port: part.jtag.info.port, target: 'stm32f1x' } });
  expect(part.jtag.target.readFlash(0, 64).equals(image)).toBe(true);

  expect((await post(`${admin.url}/target/power`, { on: false })).json).toMatchObject({ powered: false, coreState: 'off' });
  expect(rails.get('targetVdd')).toBe(false);
  expect((await post(`${admin.url}/target/power`, { on: true })).json).toMatchObject({ powered: true, coreState: 'running' });
  const edges: string[] = [];
  rails.on('change', (name, level) => edges.push(`${name}=${level}`));
  await post(`${admin.url}/target/reset`, {});
  expect(edges).toEqual(['targetNrst=false', 'targetNrst=true']);

  const load = await post(`${admin.url}/target/flash/load`, { base64: Buffer.from([1, 2, 3]).toString('base64'), offset: 0x100, erase: true });
  expect(load).toEqual({ status: 200, json: { bytes: 3, offset: 0x100 } });
  const dump = await post(`${admin.url}/target/flash/dump`, { offset: 0xfe, length: 6 });
  expect(Buffer.from(dump.json.base64 as string, 'base64')).toEqual(Buffer.from([0xff, 0xff, 1, 2, 3, 0xff]));
  const file = path.join(dir, 'dump.bin');
  expect((await post(`${admin.url}/target/flash/dump`, { file, offset: 0x100, length: 3 })).json).toEqual({ bytes: 3, file });
  expect(await readFile(file)).toEqual(Buffer.from([1, 2, 3]));

  expect((await post(`${admin.url}/target/flash/defect`, { kind: 'garble', offset: 0x200, length: 8 })).json).toEqual({ defect: { kind: 'garble', offset: 0x200, length: 8 } });
  expect(part.jtag.target.flash.defect).toEqual({ kind: 'garble', offset: 0x200, length: 8 });
  expect((await post(`${admin.url}/target/flash/defect`, { kind: 'none' })).json).toEqual({ defect: null });
  expect(part.jtag.target.flash.defect).toBeUndefined();

  const bad = await post(`${admin.url}/target/flash/load`, { base64: 'AAAA', offset: 128 * 1024 });
  expect(bad.status).toBe(400);
  expect(bad.json.error).toMatch(/outside the STM32F103/);
  expect((await post(`${admin.url}/target/flash/load`, { offset: 0 })).status).toBe(400);
});
