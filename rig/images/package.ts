import { FirmwareError } from '../errors.ts';
import { applyDelta, type ImageRef } from './delta.ts';
import { HashedBytes, sha256Hex, type PackageDigest } from './digest.ts';
import { Image } from './image.ts';
import { verifyPackage, type PackageVerification } from './verify.ts';

export type PackageType = 'full' | 'delta';

export interface PackageInfo {
  /** Manifest key, e.g. "full_2_0_0", "delta_1_0_0_to_2_0_0". */
  name: string;
  component: string;
  /** The target version: what the MCU reports after the upgrade (10700's targetVersion). */
  version: string;
  type: PackageType;
  /** For deltas, the version the delta applies to (10700's sourceVersion); undefined for full packages. */
  sourceVersion: string | undefined;
  /**
   * What the cloud announces for the file in 10700/10701 (crc in CRC-32/IEEE). For a deliberately
   * corrupted package this is the digest of the intact file, so a correct download check must fail.
   */
  declared: Required<PackageDigest>;
  /** The image a delta applies to; undefined for full packages. */
  source: ImageRef | undefined;
  /** The image the package produces. */
  target: ImageRef;
}

/** A package file as uploaded to Developer Center: a full image or a VCDIFF delta. */
export class Package extends HashedBytes implements PackageInfo {
  readonly name: string;
  readonly component: string;
  readonly version: string;
  readonly type: PackageType;
  readonly sourceVersion: string | undefined;
  readonly declared: Required<PackageDigest>;
  readonly source: ImageRef | undefined;
  readonly target: ImageRef;

  constructor(bytes: Uint8Array, info: PackageInfo) {
    if ((info.type === 'delta') !== (info.source !== undefined && info.sourceVersion !== undefined)) {
      throw new FirmwareError(`package ${info.name}: a delta needs a source, a full package has none`, {
        expected: info.type === 'delta' ? 'sourceVersion and source' : 'no sourceVersion, no source',
        seen: `sourceVersion ${JSON.stringify(info.sourceVersion)}, source ${info.source ? 'present' : 'absent'}`,
      });
    }
    super(bytes);
    this.name = info.name;
    this.component = info.component;
    this.version = info.version;
    this.type = info.type;
    this.sourceVersion = info.sourceVersion;
    this.declared = info.declared;
    this.source = info.source;
    this.target = info.target;
  }


  /**
   * `downloaded` (the package's own bytes by default) against the declared digest, CRC-32/IEEE as the
   * manifest records it. The flow checks against the 10701 it received instead; this is for fixtures.
   */
  verify(downloaded: Uint8Array = this.bytes): PackageVerification {
    return verifyPackage(downloaded, this.declared);
  }

  /**
   * The image this package installs, given the image currently in the slot (needed for deltas only).
   * Pass a slot read-back through Image.fromBytes first: it trims the erased tail to the image's length,
   * which the delta's source hash covers. `downloaded` replaces the package's own bytes with what was
   * actually read from the module.
   */
  apply(current?: Image | Uint8Array, downloaded: Uint8Array = this.bytes): Image {
    const meta = { component: this.component, version: this.version };
    if (this.type === 'full') {
      const sha = sha256Hex(downloaded);
      if (downloaded.length !== this.target.size || sha !== this.target.sha256) {
        throw new FirmwareError(`full package ${this.name} is not image ${this.version}`, {
          expected: `${this.target.size} bytes, sha256 ${this.target.sha256}`,
          seen: `${downloaded.length} bytes, sha256 ${sha}`,
        });
      }
      return new Image(downloaded, meta);
    }
    if (current === undefined) {
      throw new FirmwareError(`delta package ${this.name} needs the current image`, {
        expected: `image ${this.sourceVersion}`,
        seen: 'no current image',
      });
    }
    const source = current instanceof Image ? current.bytes : current;
    return new Image(applyDelta(downloaded, source, { source: this.source!, target: this.target }), meta);
  }

  override toString(): string {
    const from = this.type === 'delta' ? `${this.sourceVersion} → ` : '';
    return `${this.component} ${this.type} ${from}${this.version} (${this.size} bytes)`;
  }
}
