// `rig image add|identify|list`: the releases of a component as the rig keeps them (a manifest). `add` takes
// an ordinary firmware file (objcopy's .bin, an MCUboot-signed image), names it by its version (given, or
// found by the component's locator) and adds it with its full package and a delta from every earlier
// release; `identify` says what a file is; `list` shows the manifest. No station is opened.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../errors.ts';
import { identifyContent } from '../../images/identify.ts';
import { formatLocator, locateVersion, LOCATOR_SYNTAX, parseLocator, type VersionLocator } from '../../images/locator.ts';
import { currentManifestPath, defaultManifestPath, loadManifest } from '../../images/manifest.ts';
import { addRelease } from '../../images/release.ts';
import { ExitCode } from '../main.ts';
import { intOption, paint, parse, table, UsageError } from '../output.ts';
import { runCommand } from '../station.ts';
import { closest } from '../suggest.ts';

const ACTIONS = ['add', 'identify', 'list'] as const;

const OPTIONS = {
  json: { type: 'boolean' },
  manifest: { type: 'string' },
  component: { type: 'string' },
  version: { type: 'string' },
  locator: { type: 'string' },
  'load-address': { type: 'string' },
} as const;

function locatorOption(text: string | undefined): VersionLocator | undefined {
  if (text === undefined) return undefined;
  try {
    return parseLocator(text);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`--locator: ${err.summary}`, { expected: LOCATOR_SYNTAX, seen: text });
    throw err;
  }
}

async function readImageFile(file: string | undefined, action: string): Promise<Uint8Array> {
  if (file === undefined) throw new UsageError(`rig image ${action}: which file?`, { expected: `rig image ${action} <file.bin>`, seen: 'no file' });
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    throw new UsageError(`cannot read image file ${file}`, { expected: 'a readable firmware file (.bin)', seen: (err as Error).message });
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  const json = values.json === true;
  return runCommand(json, async () => {
    const action = positionals[0];
    if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
      const hint = action === undefined ? undefined : closest(action, ACTIONS);
      throw new UsageError(action === undefined ? 'rig image: what to do?' : `rig image: unknown action '${action}'${hint ? ` (did you mean '${hint}'?)` : ''}`, {
        expected: `one of ${ACTIONS.join(', ')}`,
        seen: action ?? 'nothing',
      });
    }
    const manifestPath = values.manifest !== undefined ? path.resolve(values.manifest) : currentManifestPath();
    const locator = locatorOption(values.locator);
    const out = paint(process.stdout);

    if (action === 'list') {
      if (positionals.length > 1) throw new UsageError('rig image list: too many arguments', { expected: 'rig image list [--manifest <file>]', seen: positionals.join(' ') });
      const set = await loadManifest(manifestPath);
      const images = [...set.images.values()].map((i) => ({ version: i.version, size: i.size, sha256: i.sha256 }));
      const packages = [...set.packages.values()].map((p) => ({ name: p.name, type: p.type, from: p.sourceVersion ?? null, to: p.version, size: p.size }));
      if (json) process.stdout.write(`${JSON.stringify({ manifest: manifestPath, component: set.component, locator: formatLocator(set.locator), images, packages }, null, 2)}\n`);
      else {
        process.stdout.write(`${out.bold(set.component)} releases in ${manifestPath} (versions named by ${formatLocator(set.locator)})\n`);
        process.stdout.write(`${table(['version', 'bytes', 'sha256'], images.map((i) => [i.version, String(i.size), i.sha256]), out)}\n\n`);
        process.stdout.write(`${table(['package', 'type', 'delivers', 'bytes'], packages.map((p) => [p.name, p.type, `${p.from ? `${p.from} → ` : ''}${p.to}`, String(p.size)]), out)}\n`);
      }
      return ExitCode.ok;
    }

    if (positionals.length > 2) throw new UsageError(`rig image ${action}: one file at a time`, { expected: `rig image ${action} <file.bin>`, seen: positionals.slice(1).join(' ') });
    const file = positionals[1];
    const bytes = await readImageFile(file, action);

    if (action === 'identify') {
      const set = await loadManifest(manifestPath).catch(() => undefined);
      const use = locator ?? set?.locator;
      const id = identifyContent(bytes, { known: set?.images.values() ?? [], ...(use ? { locator: use } : {}) });
      const located = use ? locateVersion(bytes, use) : id.located;
      if (json) process.stdout.write(`${JSON.stringify({ file, size: bytes.length, release: id.image ? { component: id.image.component, version: id.image.version } : null, located, text: id.text, manifest: set ? manifestPath : null }, null, 2)}\n`);
      else process.stdout.write(`${file}: ${id.image ? `release ${id.text} of ${manifestPath}` : id.text}\n`);
      return ExitCode.ok;
    }

    // add
    if (values.manifest === undefined && manifestPath === defaultManifestPath()) {
      throw new UsageError('rig image add: which manifest?', {
        expected: '--manifest <file> or RIG_MANIFEST (fixtures/manifest.json is the project\'s own generated fixture set, written by scripts/make-fixtures.ts)',
        seen: 'neither',
      });
    }
    const loadAddress = values['load-address'] === undefined ? undefined : intOption('load-address', values['load-address'], 0, 0, 0xffff_ffff);
    const r = await addRelease({ manifestPath, bytes, component: values.component, version: values.version, locator, loadAddress, origin: path.basename(file!) });
    const image = r.release.image;
    if (json) {
      process.stdout.write(`${JSON.stringify({ manifest: manifestPath, created: r.created, alreadyThere: r.alreadyThere, component: image.component, version: image.version, versionFrom: r.release.versionFrom, sha256: image.sha256, size: image.size, locator: formatLocator(r.locator), packages: r.packages, written: r.written }, null, 2)}\n`);
      return ExitCode.ok;
    }
    const from = r.release.versionFrom === 'image' ? ` (found by ${r.release.located.found ? r.release.located.where : formatLocator(r.locator)})` : r.release.versionFrom === 'given and image' ? ' (given, and the image agrees)' : ' (given)';
    if (r.alreadyThere) {
      process.stdout.write(`${image.component} ${image.version}${from} is already in ${manifestPath} with these bytes: nothing to do\n`);
      return ExitCode.ok;
    }
    process.stdout.write(`${out.green('added')} ${image.component} ${image.version}${from}: ${image.size} bytes, sha256 ${image.sha256}\n`);
    if (r.created) process.stdout.write(`  created ${manifestPath}; the component's versions are named by ${formatLocator(r.locator)}\n`);
    process.stdout.write(`  packages: ${r.packages.join(', ')}\n  files: ${r.written.join(', ')} (in ${path.dirname(manifestPath)})\n`);
    if (values.manifest !== undefined && process.env.RIG_MANIFEST === undefined) {
      process.stdout.write(out.dim(`  other rig commands and npm run qualify use it with RIG_MANIFEST=${manifestPath}\n`));
    }
    return ExitCode.ok;
  });
}
