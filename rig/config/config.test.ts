import { afterAll, describe, expect, test } from 'vitest';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.ts';
import { openStation } from '../station/open.ts';
import { ConfigValidationError, loadConfig, parseConfig, resolveSecret, type HardwareStationInput } from './index.ts';
import { parseDotenvBasic } from './load.ts';
import * as util from 'node:util';
import { tempDirs } from '../testing/temp-dir.ts';

const tmp = tempDirs();
afterAll(tmp.remove);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const configModule = path.join(root, 'rig', 'config', 'index.ts');

/** A minimal valid bench; cases below break one thing each. */
function bench(): HardwareStationInput & Record<string, unknown> {
  return {
    module: { port: '/dev/serial/by-id/usb-Quectel_EC200U-if02-port0' },
    power: {
      boards: { relays: { port: '/dev/serial/by-id/usb-Arduino-if00' } },
      lines: {
        'module-vbat': { kind: 'gpio', chip: 'pinctrl-rp1', line: 17 },
        'target-vdd': { kind: 'firmata', board: 'relays', pin: 7, relay: 'NC' },
      },
      roles: { moduleSupply: 'module-vbat', targetSupply: 'target-vdd' },
    },
    probe: { interface: { kind: 'stlink', serial: '066DFF555051897267233656' }, target: 'stm32f4x' },
    layout: { slotAddress: 0x0800_0000, slotSize: 256 * 1024 },
  };
}

function problemsOf(input: unknown): { message: string; problems: { path: string; expected: string; found: string }[] } {
  try {
    parseConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).kind).toBe('config');
    const e = err as ConfigValidationError;
    return { message: e.message, problems: [...e.problems] };
  }
  throw new Error('the config was accepted');
}

function set(obj: Record<string, unknown>, keyPath: string, value: unknown): Record<string, unknown> {
  const keys = keyPath.split('.');
  let cur = obj as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  if (value === undefined) delete cur[keys.at(-1)!];
  else cur[keys.at(-1)!] = value;
  return obj;
}

describe('validation names the exact key, what was expected and what was found', () => {
  const cases: { name: string; change: [string, unknown][]; path: string; expected: RegExp; found: RegExp }[] = [
    {
      name: 'a probe serial of the wrong type',
      change: [['probe.interface.serial', 12345]],
      path: 'stations.bench-2.probe.interface.serial',
      expected: /^a string$/,
      found: /^12345$/,
    },
    {
      name: 'a misspelt key',
      change: [['probe.interfce', { kind: 'stlink' }]],
      path: 'stations.bench-2.probe.interfce',
      expected: /one of the keys interface, target, workAreaSize/,
      found: /unknown key "interfce"/,
    },
    {
      name: 'an unknown target family',
      change: [['probe.target', 'stm32h7x']],
      path: 'stations.bench-2.probe.target',
      expected: /one of "stm32f1x", "stm32f4x"/,
      found: /"stm32h7x"/,
    },
    {
      name: 'an unknown probe interface kind',
      change: [['probe.interface', { kind: 'jlink' }]],
      path: 'stations.bench-2.probe.interface.kind',
      expected: /one of "stlink", "cmsis-dap", "remote_bitbang", "buspirate"/,
      found: /"jlink"/,
    },
    {
      name: 'a role naming a line that does not exist',
      change: [['power.roles.moduleReset', 'module-rst']],
      path: 'stations.bench-2.power.roles.moduleReset',
      expected: /a line named in power.lines \(have: module-vbat, target-vdd\)/,
      found: /"module-rst"/,
    },
    {
      name: 'a relay on a board that is not declared',
      change: [['power.lines.target-vdd', { kind: 'firmata', board: 'relay-board', pin: 7 }]],
      path: 'stations.bench-2.power.lines.target-vdd.board',
      expected: /no board "relay-board" in boards \(have: relays\)/,
      found: /"relay-board"/,
    },
    {
      name: 'an address that does not fit 32 bits',
      change: [['layout.slotAddress', '0x080000000']],
      path: 'stations.bench-2.layout.slotAddress',
      expected: /a 32-bit address/,
      found: /"0x080000000"/,
    },
    {
      name: 'a negative slot size',
      change: [['layout.slotSize', -4096]],
      path: 'stations.bench-2.layout.slotSize',
      expected: /a number > 0/,
      found: /-4096/,
    },
    {
      name: 'a missing module port',
      change: [['module.port', undefined]],
      path: 'stations.bench-2.module.port',
      expected: /a string/,
      found: /nothing \(the key is missing\)/,
    },
    {
      name: 'a module echo setting that is not one',
      change: [['module.echo', 'false']],
      path: 'stations.bench-2.module.echo',
      expected: /^one of "keep", "off", "on"$/,
      found: /^"false"$/,
    },
    {
      name: 'a product key without its secret',
      change: [['module.productKey', 'p11abc']],
      path: 'stations.bench-2.module.productSecret',
      expected: /productKey and productSecret go together/,
      found: /nothing/,
    },
    {
      name: 'a declared plan with a malformed hash',
      change: [['plans', { kind: 'declared', plans: [{ name: 'p', package: { file: 'a.bin', sha256: 'abc' }, targetVersion: '2_0_0' }] }]],
      path: 'stations.bench-2.plans.plans[0].package.sha256',
      expected: /64 lowercase hex characters/,
      found: /^"abc"$/,
    },
    {
      name: 'a plan API URL that is not one',
      change: [['plans', { kind: 'api', url: 'admin-server' }]],
      path: 'stations.bench-2.plans.url',
      expected: /a valid url/,
      found: /"admin-server"/,
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const station = bench();
      for (const [k, v] of c.change) set(station, k, v);
      const { message, problems } = problemsOf({ stations: { 'bench-2': station } });
      expect(problems).toHaveLength(1);
      const [p] = problems;
      expect(p!.path).toBe(c.path);
      expect(p!.expected).toMatch(c.expected);
      expect(p!.found).toMatch(c.found);
      // The message carries the same facts, prefixed by the station.
      expect(message.startsWith('bench-2: invalid config')).toBe(true);
      expect(message).toContain(`${c.path}: expected ${p!.expected}, found ${p!.found}`);
    });
  }

  test('every problem is listed at once, across stations', () => {
    const a = set(bench(), 'probe.target', 'stm32x');
    const b = set(bench(), 'module.baudRate', '115200');
    const { message, problems } = problemsOf({ stations: { 'bench-1': a, 'bench-2': b } });
    expect(problems.map((p) => p.path)).toEqual(['stations.bench-1.probe.target', 'stations.bench-2.module.baudRate']);
    expect(message).toMatch(/^invalid config \(inline config\): 2 problems\n/);
    expect(message).toContain('stations.bench-2.module.baudRate: expected a number, found "115200"');
  });

  test('a secret written into the config is refused without being shown', () => {
    const station = set(bench(), 'module.productKey', 'p11abc');
    set(station, 'module.productSecret', 'sEcReT-VaLuE-42');
    const { message, problems } = problemsOf({ stations: { 'bench-2': station } });
    expect(problems[0]!.path).toBe('stations.bench-2.module.productSecret');
    expect(problems[0]!.expected).toBe('an object');
    expect(message).not.toContain('sEcReT-VaLuE-42');
    expect(message).toContain('not shown');
  });

  test('station names and the built-in virtual station', () => {
    const bad = problemsOf({ stations: { 'bench 2': bench() } });
    expect(bad.problems[0]!.path).toBe('stations.bench 2');
    expect(bad.problems[0]!.expected).toMatch(/^a key that is a station name: letters, digits/);
    expect(bad.problems[0]!.found).toBe('the key "bench 2"');

    const taken = problemsOf({ stations: { virtual: { ...bench(), kind: 'hardware' } } });
    expect(taken.problems).toEqual([{ path: 'stations.virtual.kind', expected: expect.stringMatching(/^"virtual" \(the name of the built-in/), found: '"hardware"' }]);

    const wrongOption = problemsOf({ stations: { virtual: { target: 'stm32f4x', imei: '861234567890123', modem: {} } } });
    expect(wrongOption.problems).toEqual([
      { path: 'stations.virtual.modem', expected: expect.stringMatching(/one of the keys kind, .*target, baud, module, timeScale/), found: 'the unknown key "modem"' },
    ]);
    // The virtual station's module has its port from the sim: of a bench's module keys only `echo` applies.
    const port = problemsOf({ stations: { virtual: { module: { port: '/dev/x', echo: 'off' } } } });
    expect(port.problems).toEqual([{ path: 'stations.virtual.module.port', expected: 'one of the keys echo', found: 'the unknown key "port"' }]);
  });

  test('the top level', () => {
    expect(problemsOf([]).problems).toEqual([{ path: '', expected: 'an object', found: 'an empty list' }]);
    expect(problemsOf({ station: {} }).problems).toEqual([{ path: 'station', expected: 'one of the keys stations', found: 'the unknown key "station"' }]);
  });
});

describe('defaults and the built-in virtual station', () => {
  test('no stations → only the virtual station, with its defaults', () => {
    const c = parseConfig({});
    expect(Object.keys(c.stations)).toEqual(['virtual']);
    expect(c.stations.virtual).toMatchObject({ kind: 'virtual', target: 'stm32f1x', baud: 115200, timeScale: 1, component: 'STM32', layout: { slotAddress: 0x0800_0000 } });
  });

  test('a hardware entry gets its kind and defaults; the virtual station may be overridden without kind', () => {
    const c = parseConfig({ stations: { 'bench-2': bench(), virtual: { target: 'stm32f4x', timeScale: 0.05 } } });
    const b = c.stations['bench-2']!;
    expect(b.kind).toBe('hardware');
    if (b.kind !== 'hardware') throw new Error('unreachable');
    expect(b.module.baudRate).toBe(115200);
    expect(b.probe.openocd).toBe('openocd');
    expect(b.power.lines['module-vbat']).toMatchObject({ safe: 'on', activeLow: false });
    expect(b.plans).toEqual({ kind: 'declared', plans: [], crcAlgorithm: 'crc-32' });
    expect(b.timeouts.timeScale).toBe(1);
    expect(c.stations.virtual).toMatchObject({ kind: 'virtual', target: 'stm32f4x', timeScale: 0.05 });
  });

  test("the module's echo: the module's own ('keep') unless a station says 'off' or 'on', on benches and virtual stations alike", () => {
    const c = parseConfig({ stations: { 'bench-2': bench(), 'bench-3': set(bench(), 'module.echo', 'off'), v2: { kind: 'virtual', module: { echo: 'on' } } } });
    const echo = (name: string) => c.stations[name]!.module.echo;
    expect([echo('bench-2'), echo('bench-3'), echo('virtual'), echo('v2')]).toEqual(['keep', 'off', 'keep', 'on']);
  });

  test('a hex string address (JSON) becomes a number', () => {
    const c = parseConfig({ stations: { b: set(bench(), 'layout.slotAddress', '0x08010000') } });
    expect(c.stations.b!.layout.slotAddress).toBe(0x0801_0000);
  });
});

describe('the example hardware config', () => {
  test('fixtures/stations/example.rig.config.ts validates as the bench it describes', async () => {
    const c = await loadConfig({ path: path.join(root, 'fixtures', 'stations', 'example.rig.config.ts'), env: {} });
    const b = c.stations['bench-1']!;
    if (b.kind !== 'hardware') throw new Error(`bench-1 is ${b.kind}`);
    expect(b.module.port).toMatch(/^\/dev\/serial\/by-id\/usb-Quectel_.*-if02-port0$/);
    expect(b.module.productSecret).toEqual({ env: 'RIG_BENCH1_PRODUCT_SECRET' });
    expect(b.power.lines['module-vbat']).toMatchObject({ kind: 'gpio', chip: 'pinctrl-rp1', line: 17 });
    expect(b.power.lines['target-vdd']).toMatchObject({ kind: 'firmata', board: 'relays' });
    expect(b.power.roles).toEqual({ moduleSupply: 'module-vbat', targetSupply: 'target-vdd', targetReset: 'target-nrst' });
    expect(b.probe).toMatchObject({ interface: { kind: 'stlink', serial: expect.any(String) }, target: 'stm32f4x' });
    expect(b.plans.kind).toBe('declared');
    expect(Object.keys(c.stations).sort()).toEqual(['bench-1', 'virtual', 'virtual-f4']);
    expect(c.source).toBe(path.join(root, 'fixtures', 'stations', 'example.rig.config.ts'));
  });

  test('a copy in the repository root loads as it says (its import does not depend on where the file is)', async () => {
    // "Copy it to ./rig.config.ts": a relative import of rig/config would not resolve from there.
    const copy = path.join(root, `rig.config.copy-test-${process.pid}.ts`);
    writeFileSync(copy, readFileSync(path.join(root, 'fixtures', 'stations', 'example.rig.config.ts')));
    try {
      const c = await loadConfig({ path: copy, env: {} });
      expect(Object.keys(c.stations).sort()).toEqual(['bench-1', 'virtual', 'virtual-f4']);
    } finally {
      rmSync(copy, { force: true });
    }
  });
});

describe('finding and loading the config', () => {
  const dir = (): string => tmp.make('rig-config-');

  test('a .ts config with a syntax error names the file, line, column and the reason', async () => {
    const d = dir();
    writeFileSync(path.join(d, 'rig.config.ts'), "export default {\n  stations: { a: { module: { port: '/dev/x' } } }\n  oops oops\n};\n");
    const err = await loadConfig({ cwd: d, env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`could not load config file ${path.join(d, 'rig.config.ts')}`);
    expect((err as ConfigError).seen).toMatch(/rig\.config\.ts:3:\d+: ERROR: Expected "}" but found "oops"/);
  });

  test('no file anywhere → only the virtual station', async () => {
    const c = await loadConfig({ cwd: dir(), env: {} });
    expect(c.source).toBeUndefined();
    expect(Object.keys(c.stations)).toEqual(['virtual']);
  });

  test('./rig.config.ts is loaded through tsx, with defineConfig', async () => {
    const cwd = dir();
    writeFileSync(
      path.join(cwd, 'rig.config.ts'),
      `import { defineConfig } from ${JSON.stringify(configModule)};\nconst slot: number = 0x08004000;\nexport default defineConfig({ stations: { 'bench-7': ${JSON.stringify(bench())
        .replace('134217728', 'slot')} } });\n`,
    );
    const c = await loadConfig({ cwd, env: {} });
    expect(c.source).toBe(path.join(cwd, 'rig.config.ts'));
    expect(c.stations['bench-7']!.layout.slotAddress).toBe(0x0800_4000);
  });

  test('RIG_CONFIG points at a JSON file; --config wins over it', async () => {
    const cwd = dir();
    writeFileSync(path.join(cwd, 'a.json'), JSON.stringify({ stations: { a: bench() } }));
    writeFileSync(path.join(cwd, 'b.json'), JSON.stringify({ stations: { b: bench() } }));
    expect(Object.keys((await loadConfig({ cwd, env: { RIG_CONFIG: 'a.json' } })).stations)).toContain('a');
    expect(Object.keys((await loadConfig({ cwd, env: { RIG_CONFIG: 'a.json' }, path: 'b.json' })).stations)).toContain('b');
  });

  test('a config file that is missing, broken or invalid is one ConfigError naming the file', async () => {
    const cwd = dir();
    await expect(loadConfig({ cwd, env: {}, path: 'nope.ts' })).rejects.toThrow(/config file .*nope\.ts does not exist/);
    writeFileSync(path.join(cwd, 'rig.config.json'), '{ "stations": { ');
    const broken = await loadConfig({ cwd, env: {} }).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(ConfigError);
    expect((broken as Error).message).toMatch(/could not load config file .*rig\.config\.json/);
    writeFileSync(path.join(cwd, 'rig.config.json'), JSON.stringify({ stations: { b: set(bench(), 'probe.interface.serial', 7) } }));
    await expect(loadConfig({ cwd, env: {} })).rejects.toThrow(/invalid config rig\.config\.json: 1 problem\n {2}stations\.b\.probe\.interface\.serial: expected a string, found 7/);
  });

  test('a config module that exports nothing says what it should export', async () => {
    const cwd = dir();
    writeFileSync(path.join(cwd, 'rig.config.mjs'), 'export const stations = {};\n');
    await expect(loadConfig({ cwd, env: {} })).rejects.toThrow(/exports no config[\s\S]*export default defineConfig/);
  });
});

describe('secrets', () => {
  const withSecret = (): Record<string, unknown> => {
    const s = bench();
    set(s, 'module.productKey', 'p11abc');
    set(s, 'module.productSecret', { env: 'RIG_TEST_PRODUCT_SECRET' });
    return s;
  };

  test('a missing secret variable is a ConfigError naming the variable and the key that wants it', async () => {
    const config = parseConfig({ stations: { 'bench-2': withSecret() } });
    const err = await openStation('bench-2', { config, lockDir: tmp.make('lock-') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).station).toBe('bench-2');
    expect((err as Error).message).toContain('secret RIG_TEST_PRODUCT_SECRET is not set');
    expect((err as Error).message).toContain('stations.bench-2.module.productSecret');
  });

  test('the value comes from the environment or an untracked .env, and is never in an error', async () => {
    expect(resolveSecret({ env: 'S1' }, { station: 'b', key: 'k', env: { S1: 'from-env' }, dotenv: { S1: 'from-dotenv' } })).toBe('from-env');
    const cwd = tmp.make('rig-config-');
    mkdirSync(path.join(cwd, 'cfg'));
    writeFileSync(path.join(cwd, 'cfg', 'rig.config.json'), JSON.stringify({ stations: { 'bench-2': withSecret() } }));
    writeFileSync(path.join(cwd, 'cfg', '.env'), '# bench secrets\nRIG_TEST_PRODUCT_SECRET="s3cr3t value"\n');
    const c = await loadConfig({ cwd, env: {}, path: 'cfg/rig.config.json' });
    expect(resolveSecret({ env: 'RIG_TEST_PRODUCT_SECRET' }, { station: 'bench-2', key: 'k', env: {}, dotenv: c.dotenv })).toBe('s3cr3t value');
    const empty = (() => {
      try {
        return resolveSecret({ env: 'S2' }, { station: 'b', key: 'k', env: { S2: '' } });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(empty).toBeInstanceOf(ConfigError);
    expect((empty as Error).message).toMatch(/S2 is empty/);
  });

  test('the .env reader for Nodes without util.parseEnv reads a bench .env as util.parseEnv does', () => {
    const text = '# secrets for bench-1\nRIG_A=plain\nexport RIG_B="quoted value"\nRIG_C=\'single # not a comment\'\nRIG_D=value # comment\n\nRIG_E=\n';
    const basic = parseDotenvBasic(text);
    expect(basic).toEqual({ RIG_A: 'plain', RIG_B: 'quoted value', RIG_C: 'single # not a comment', RIG_D: 'value', RIG_E: '' });
    const native = (util as { parseEnv?: (t: string) => Record<string, string> }).parseEnv;
    if (native) expect(basic).toEqual({ ...native(text) });
  });
});

describe('the MCU side of a station (dut mode)', () => {
  const region = (address: number, size: number) => ({ address, size });
  const mcu = () => ({
    taps: { mcuToModule: '/dev/serial/by-id/usb-FTDI_FT2232H-if00-port0', moduleToMcu: '/dev/serial/by-id/usb-FTDI_FT2232H-if01-port0' },
    console: { port: '/dev/serial/by-id/usb-CP2102-if00-port0' },
    layout: {
      bootloader: region(0x0800_0000, 0x4000),
      record: [region(0x0800_4000, 0x800), region(0x0800_4800, 0x800)],
      slotA: region(0x0802_0000, 0x20000),
      slotB: region(0x0804_0000, 0x20000),
      scratch: region(0x0806_0000, 0x800),
    },
    bootRecord: 'vmcu-1',
  });

  test('a bench declares taps, console, layout and decoder; bauds default to 115200, hex addresses are read', () => {
    const m = { ...mcu(), layout: { ...mcu().layout, slotB: { address: '0x08040000', size: 0x20000 } } };
    const entry = parseConfig({ stations: { 'bench-2': { ...bench(), mcu: m } } }).stations['bench-2']!;
    if (entry.kind !== 'hardware') throw new Error('not a bench');
    expect(entry.mcu?.taps.baudRate).toBe(115200);
    expect(entry.mcu?.console?.baudRate).toBe(115200);
    expect(entry.mcu?.layout.slotB).toEqual({ address: 0x0804_0000, size: 0x20000 });
    expect(entry.mcu?.bootRecord).toBe('vmcu-1');
  });

  test.each([
    ['overlapping slots', (m: ReturnType<typeof mcu>) => ((m.layout.slotB = region(0x0803_f000, 0x20000)), m), 'stations.bench-2.mcu.layout.slotB', /a region apart from slotA \(0x8020000\+131072 overlaps 0x803f000\+131072\)/],
    ['one tap port for both directions', (m: ReturnType<typeof mcu>) => ((m.taps.moduleToMcu = m.taps.mcuToModule), m), 'stations.bench-2.mcu.taps.moduleToMcu', /a port of its own/],
    ['the vmcu-1 decoder without its two record copies', (m: ReturnType<typeof mcu>) => ((m.layout.record = [region(0x0800_4000, 0x800)]), m), 'stations.bench-2.mcu.layout.record', /two copies for the 'vmcu-1' decoder \(found 1\)/],
    ['an unknown decoder', (m: ReturnType<typeof mcu>) => ((m.bootRecord = 'tf-m'), m), 'stations.bench-2.mcu.bootRecord', /one of "vmcu-1", "mcuboot", "none"/],
  ])('%s is named at its key', (_name, change, path, expected) => {
    const m = mcu();
    const { problems } = problemsOf({ stations: { 'bench-2': { ...bench(), mcu: change(m) } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe(path);
    expect(problems[0]!.expected).toMatch(expected);
  });
});
