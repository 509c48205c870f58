// `rig readback <station> [region] -o <file>`: target memory over SWD into a file, and what image it holds.
import { writeFile } from 'node:fs/promises';
import { sha256Hex } from '../../images/digest.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, paint, parse, UsageError } from '../output.ts';
import { CliRecorder } from '../progress.ts';
import { hex, nameContent, parseRegion, readWithProgress } from '../flashio.ts';
import { requireStationName, runCommand, withStation } from '../station.ts';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, output: { type: 'string', short: 'o' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const name = requireStationName(positionals[0], 'readback');
    if (positionals.length > 2) throw new UsageError('rig readback: too many arguments', { expected: 'rig readback <station> [region] -o <file>', seen: positionals.join(' ') });
    const region = parseRegion(positionals[1]);
    const out = values.output;
    if (out === undefined || out === '') throw new UsageError('rig readback: where to?', { expected: '-o <file>', seen: 'no -o' });
    const recorder = new CliRecorder({ quiet: json });
    return withStation(name, { config: values.config, attach: values.attach, recorder }, async ({ station, signal }) => {
      let address: number;
      let length: number;
      if (region.kind === 'slot') {
        address = station.layout.slotAddress;
        length = station.layout.slotSize;
      } else if (region.kind === 'flash') {
        const info = await recorder.step('examine the target', () => station.probe.examine({ signal }));
        address = info.flash.base;
        length = info.flash.size > 0 ? info.flash.size : info.flashSizeKiB * 1024;
      } else {
        ({ address, length } = region);
      }
      const t0 = performance.now();
      const bytes = await recorder.step(`read ${length} bytes at ${hex(address)}`, () => readWithProgress(station.probe, address, length, recorder, 'read-back', signal));
      const ms = performance.now() - t0;
      await writeFile(out, bytes);
      const identity = await nameContent(bytes, address, station.layout.slotAddress, station.layout.slotSize);
      const rate = Math.round(length / (ms / 1000));
      if (json) {
        process.stdout.write(`${JSON.stringify({ station: station.name, address, length, file: out, sha256: sha256Hex(bytes), identity, bytesPerSecond: rate }, null, 2)}\n`);
      } else {
        const p = paint(process.stdout);
        process.stdout.write(`${p.green('read')} ${length} bytes at ${hex(address)} into ${out} (${(ms / 1000).toFixed(1)} s, ${rate} B/s)\n  holds: ${identity}\n`);
      }
      return ExitCode.ok;
    });
  });
}
