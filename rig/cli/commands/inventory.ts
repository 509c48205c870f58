// `rig inventory [station...]`: the stations of this host and what each one is, read live (module IMEI,
// firmware and QuecThing version, probe and serial, target IDCODE), with the last health check each had on
// this host. A table, or with --json the inventory a farm's merge job puts into the report
// (rig/station/inventory.ts). Each station is opened, read and closed in turn; one that cannot be read is
// listed with why, and the others are still read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config/load.ts';
import { isRigError } from '../../errors.ts';
import { readIdentity } from '../../station/identity.ts';
import { hostName, readLastHealth, type Inventory, type InventoryEntry } from '../../station/inventory.ts';
import { openStation } from '../../station/open.ts';
import { simSettings } from '../../station/virtual.ts';
import { ExitCode, packageRoot } from '../main.ts';
import { COMMON_OPTIONS, paint, parse, table, UsageError } from '../output.ts';
import { runCommand, withInterrupt } from '../station.ts';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, 'with-virtual': { type: 'boolean' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const config = await loadConfig(values.config === undefined ? {} : { path: values.config });
    const all = Object.keys(config.stations);
    const unknown = positionals.filter((s) => !all.includes(s));
    if (unknown.length > 0) {
      throw new UsageError(`rig inventory: no station ${unknown.join(', ')}`, { expected: `one of ${all.join(', ')}`, seen: unknown.join(', ') });
    }
    // As nightly: with hardware configured, the virtual stations are not part of the host's inventory.
    const hardware = all.filter((s) => config.stations[s]!.kind !== 'virtual');
    const names = positionals.length > 0 ? positionals : hardware.length > 0 && values['with-virtual'] !== true ? hardware : all;
    const host = hostName();
    const entries: InventoryEntry[] = [];
    await withInterrupt(async (signal) => {
      for (const name of names) {
        const entry = config.stations[name]!;
        const kind = entry.kind === 'virtual' ? 'virtual' : 'hardware';
        const base: InventoryEntry = { station: name, kind, host, ...(entry.kind === 'virtual' ? { sim: simSettings(entry) } : {}) };
        const health = readLastHealth(name);
        if (health) base.health = health;
        if (!json) process.stderr.write(`${name}: reading …\n`);
        try {
          const station = await openStation(name, { config, signal });
          try {
            entries.push({ ...base, identity: await readIdentity(station, signal) });
          } finally {
            await station.close();
          }
        } catch (err) {
          if (signal.aborted) throw err;
          entries.push({ ...base, error: { kind: isRigError(err) ? err.kind : 'internal', message: err instanceof Error ? err.message : String(err) } });
        }
      }
    });
    const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    const inventory: Inventory = { host, generatedAt: new Date().toISOString(), rig: pkg.version, node: process.version, stations: entries };
    if (json) process.stdout.write(`${JSON.stringify(inventory, null, 2)}\n`);
    else process.stdout.write(`${render(inventory)}\n`);
    // Listed either way; a station that could not be read is the farm's problem (69), like a doctor failure.
    return entries.some((e) => e.error) ? ExitCode.infrastructure : ExitCode.ok;
  });
}

function render(inv: Inventory): string {
  const p = paint(process.stdout);
  const rows = inv.stations.map((e) => {
    const id = e.identity;
    const health = e.health ? `${e.health.ok ? p.green('passed') : p.red('FAILED')} ${e.health.at.slice(0, 16).replace('T', ' ')}` : p.dim('never');
    if (!id) return [e.station, p.red(`not read: ${e.error?.message.split('\n')[0] ?? '?'}`), '', '', '', '', '', health];
    // remote_bitbang and a Bus Pirate (named by its serial port) have no USB serial number to look for.
    const noSerial = id.probe.adapter === 'remote_bitbang' || id.probe.adapter.startsWith('Bus Pirate');
    const probe = [id.probe.adapter, id.probe.serial ?? (noSerial ? '' : p.dim('serial ?'))].filter(Boolean).join(' ');
    return [e.station, id.module.model, id.module.firmware, id.module.imei, id.module.quecthing, probe, `${id.target.family} ${id.target.idcode ?? '?'}`, health];
  });
  return [`${inv.host}: ${inv.stations.length} station(s), sota-rig ${inv.rig}, node ${inv.node}`, table(['station', 'module', 'firmware', 'IMEI', 'QuecThing', 'probe', 'target IDCODE', 'last health'], rows, p)].join('\n');
}
