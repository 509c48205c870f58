// Delta packages are plain VCDIFF (RFC 3284): encoded by Debian's xdelta3, applied by @ably/vcdiff-decoder.
// Plain VCDIFF carries no checksum of its source (xdelta3's adler32 extension is off so the decoder accepts
// it), and decoding against the wrong source silently yields garbage; so the package manifest records the
// source's size and SHA-256 and the target's, and applyDelta checks both ends.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { scratchPrefix } from '../scratch.ts';
import path from 'node:path';
import type * as Vcdiff from '@ably/vcdiff-decoder';
import { FirmwareError, InfrastructureError } from '../errors.ts';
import { sha256Hex } from './digest.ts';

export interface ImageRef {
  /** Version string, used only in messages. */
  version?: string;
  size: number;
  sha256: string;
}

export interface DeltaExpectation {
  source: ImageRef;
  target: ImageRef;
}

const VCDIFF_MAGIC = [0xd6, 0xc3, 0xc4, 0x00];
// The flags that make xdelta3 write what the decoder reads: no secondary compression (-S none), no
// application header (-A), no adler32 checksum (-n). LIBRARIES.md "Delta packages" records the check.
export const XDELTA3_ARGS = ['-e', '-f', '-S', 'none', '-A', '-n'] as const;

const label = (r: ImageRef) => (r.version ? `${r.version} ` : '');

// The decoder (with its WebAssembly) costs a process ~15 MB of RSS: loaded by the first delta applied, not
// by every rig process that might see one.
let decoder: typeof Vcdiff.decode | undefined;
function decode(delta: Uint8Array, source: Uint8Array): Uint8Array {
  decoder ??= (createRequire(import.meta.url)('@ably/vcdiff-decoder') as typeof Vcdiff).decode;
  return decoder(delta, source);
}

/** Rejects what is not a VCDIFF this decoder can read, with the reason in VCDIFF's own terms. */
export function checkVcdiffHeader(delta: Uint8Array): void {
  const magic = Array.from(delta.subarray(0, 4));
  if (delta.length < 5 || VCDIFF_MAGIC.some((b, i) => magic[i] !== b)) {
    throw new FirmwareError('delta package is not VCDIFF', {
      expected: 'RFC 3284 magic d6c3c400',
      seen: `${Buffer.from(delta.subarray(0, 4)).toString('hex') || 'an empty file'}`,
    });
  }
  const indicator = delta[4]!;
  if (indicator !== 0) {
    throw new FirmwareError('delta package uses VCDIFF extensions the decoder cannot read', {
      expected: 'Hdr_Indicator 0 (encode with xdelta3 -S none -A -n)',
      seen: `Hdr_Indicator 0x${indicator.toString(16).padStart(2, '0')}${indicator & 1 ? ' (secondary compression)' : ''}${indicator & 2 ? ' (code table)' : ''}${indicator & 4 ? ' (application header)' : ''}`,
    });
  }
}

/**
 * Rebuilds the target image from `source` and a VCDIFF `delta`. Refuses a source whose size or SHA-256
 * is not the one the delta was made from, and a result that is not the expected target, byte for byte.
 */
export function applyDelta(delta: Uint8Array, source: Uint8Array, expect: DeltaExpectation): Uint8Array {
  const sourceSha = sha256Hex(source);
  if (source.length !== expect.source.size || sourceSha !== expect.source.sha256.toLowerCase()) {
    throw new FirmwareError(`delta refused: it applies to ${label(expect.source)}and the current image is another one`, {
      expected: `source ${label(expect.source)}of ${expect.source.size} bytes, sha256 ${expect.source.sha256.toLowerCase()}`,
      seen: `${source.length} bytes, sha256 ${sourceSha}`,
    });
  }
  checkVcdiffHeader(delta);
  let target: Uint8Array;
  try {
    target = decode(delta, source);
  } catch (cause) {
    throw new FirmwareError('VCDIFF delta could not be decoded', {
      expected: `a delta from ${label(expect.source)}to ${label(expect.target)}`.trim(),
      seen: cause instanceof Error ? cause.message : String(cause),
      cause,
    });
  }
  const targetSha = sha256Hex(target);
  if (target.length !== expect.target.size || targetSha !== expect.target.sha256.toLowerCase()) {
    throw new FirmwareError(`delta applied but the result is not ${label(expect.target)}`.trim(), {
      expected: `${expect.target.size} bytes, sha256 ${expect.target.sha256.toLowerCase()}`,
      seen: `${target.length} bytes, sha256 ${targetSha}`,
    });
  }
  return target;
}

export interface EncodeOptions {
  /** The xdelta3 binary; `xdelta3` on PATH by default. */
  xdelta3?: string;
}

/** Runs xdelta3 to make a plain VCDIFF delta from `source` to `target` (used by scripts/make-fixtures). */
export async function encodeDelta(source: Uint8Array, target: Uint8Array, opts: EncodeOptions = {}): Promise<Uint8Array> {
  const bin = opts.xdelta3 ?? 'xdelta3';
  const dir = await mkdtemp(scratchPrefix('delta'));
  try {
    const src = path.join(dir, 'source.bin');
    const tgt = path.join(dir, 'target.bin');
    const out = path.join(dir, 'delta.vcdiff');
    await writeFile(src, source);
    await writeFile(tgt, target);
    const args = [...XDELTA3_ARGS, '-s', src, tgt, out];
    await new Promise<void>((resolve, reject) => {
      execFile(bin, args, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(new InfrastructureError(`${bin} not found: delta packages cannot be encoded`, {
            expected: 'the xdelta3 binary (Debian package xdelta3, installed by npm run setup)',
            seen: `spawn ${bin} ENOENT`,
          }));
        } else {
          reject(new InfrastructureError(`${bin} failed to encode a delta`, {
            expected: 'exit status 0',
            seen: `${err.message.split('\n')[0]}${stderr ? ` — ${stderr.trim()}` : ''}`,
            cause: err,
          }));
        }
      });
    });
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
