// `rig flash <station> <image>`: program the application slot (or --address) and verify by read-back.
import { compareRegion } from '../../probe/probe.ts';
import { ExitCode } from '../main.ts';
import { COMMON_OPTIONS, intOption, paint, parse, UsageError } from '../output.ts';
import { CliRecorder } from '../progress.ts';
import { hex, imageTooLarge, nameContent, readWithProgress, resolveImage } from '../flashio.ts';
import { requireStationName, runCommand, withStation } from '../station.ts';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_OPTIONS, address: { type: 'string' }, force: { type: 'boolean' }, 'no-reset': { type: 'boolean' } });
  const json = values.json === true;
  return runCommand(json, async () => {
    const name = requireStationName(positionals[0], 'flash');
    const imageArg = positionals[1];
    if (imageArg === undefined || positionals.length > 2) throw new UsageError('rig flash: which image?', { expected: 'rig flash <station> <version|file.bin>', seen: `rig flash ${positionals.join(' ')}` });
    const image = await resolveImage(imageArg);
    const recorder = new CliRecorder({ quiet: json });
    return withStation(name, { config: values.config, attach: values.attach, recorder }, async ({ station, signal }) => {
      const address = intOption('address', values.address, station.layout.slotAddress, 0, 0xffff_ffff);
      if (values.address === undefined && image.bytes.length > station.layout.slotSize) throw imageTooLarge(station.name, image.bytes.length, station.layout.slotSize);
      const probe = station.probe;
      const t0 = performance.now();
      let written = false;
      await recorder.step(`program ${image.label} at ${hex(address)}`, async () => {
        if (!values.force) {
          const seen = await readWithProgress(probe, address, image.bytes.length, recorder, 'pre-verify', signal);
          if (compareRegion(address, image.bytes, seen).equal) {
            recorder.line(paint(process.stderr).dim('  the flash already holds this image: nothing written (--force writes anyway)'));
            return;
          }
        }
        // Written in chunks after one erase, so the bar moves while OpenOCD writes (it says nothing itself).
        await probe.program(address, image.bytes, { preverify: false, signal, progress: (done, total) => recorder.progress('programming', done, total) });
        written = true;
      });
      if (!values['no-reset']) await recorder.step('reset and run', () => probe.reset('run', { signal }));
      const ms = Math.round(performance.now() - t0);
      const identity = await nameContent(image.bytes, address, station.layout.slotAddress, station.layout.slotSize);
      if (json) {
        process.stdout.write(`${JSON.stringify({ station: station.name, image: image.label, address, bytes: image.bytes.length, written, verified: true, identity, ms }, null, 2)}\n`);
      } else {
        const p = paint(process.stdout);
        // A manifest version names itself; a file is named by what its bytes are.
        process.stdout.write(`${p.green('flashed')} ${image.version !== undefined ? image.label : `${image.label} (${identity})`} at ${hex(address)}: ${written ? 'written and verified by read-back' : 'already there, verified'} in ${(ms / 1000).toFixed(1)} s\n`);
      }
      return ExitCode.ok;
    });
  });
}
