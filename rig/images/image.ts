import { FirmwareError } from '../errors.ts';
import type { ImageRef } from './delta.ts';
import { HashedBytes } from './digest.ts';
import { describeIdentity, identifyImage, IMAGE_HEADER_OFFSET, type ImageHeader, type ImageIdentity } from './header.ts';

export interface ImageMeta {
  component: string;
  version: string;
}

/** An MCU application image: the exact bytes programmed at the slot address, with cached hashes. */
export class Image extends HashedBytes {
  readonly component: string;
  readonly version: string;

  constructor(bytes: Uint8Array, meta: ImageMeta) {
    super(bytes);
    this.component = meta.component;
    this.version = meta.version;
  }

  /**
   * An image whose component and version come from its own header; FirmwareError unless the header is
   * there and the body CRC matches (a torn or foreign image must not pass for a known version).
   */
  static fromBytes(bytes: Uint8Array, headerOffset = IMAGE_HEADER_OFFSET): Image {
    const id = identifyImage(bytes, headerOffset);
    if (id.state !== 'valid') {
      throw new FirmwareError('bytes are not a whole sota-rig image', {
        expected: `a valid image header at 0x${headerOffset.toString(16)} and a matching body CRC`,
        seen: describeIdentity(id),
      });
    }
    return new Image(bytes.subarray(0, id.header.imageLength), id.header);
  }


  /** What the image's own header says about it (never throws). */
  identify(headerOffset = IMAGE_HEADER_OFFSET): ImageIdentity {
    return identifyImage(this.bytes, headerOffset);
  }

  header(headerOffset = IMAGE_HEADER_OFFSET): ImageHeader {
    const id = this.identify(headerOffset);
    if (id.state === 'valid') return id.header;
    throw new FirmwareError(`image ${this.component} ${this.version} has no valid header`, {
      expected: `a valid header at 0x${headerOffset.toString(16)}`,
      seen: describeIdentity(id),
    });
  }

  ref(): ImageRef {
    return { version: this.version, size: this.size, sha256: this.sha256 };
  }

  /** Byte-for-byte equality (hash first, so comparing against a cached image is cheap). */
  equals(other: Image | Uint8Array): boolean {
    const bytes = other instanceof Image ? other.bytes : other;
    if (bytes.length !== this.bytes.length) return false;
    if (other instanceof Image) return other.sha256 === this.sha256;
    return Buffer.compare(bytes, this.bytes) === 0;
  }

  override toString(): string {
    return `${this.component} ${this.version} (${this.size} bytes, sha256 ${this.sha256.slice(0, 12)}…)`;
  }
}
