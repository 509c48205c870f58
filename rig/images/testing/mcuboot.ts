// An MCUboot-signed image as imgtool lays one out (header, body, TLV area with the SHA-256 TLV), built
// byte by byte from docs.mcuboot.com/design for the locator's tests and for `qualify` runs on images that
// carry no rig header. The header is spelled as hex, field by field, so a test reads like the layout.
import { createHash } from 'node:crypto';

export interface McubootImageOptions {
  /** The application binary (vector table first), placed after the header. */
  body: Uint8Array;
  version: { major: number; minor: number; revision: number; build: number };
  /** ih_hdr_size; imgtool's --header-size, 0x200 on STM32 (the vector table alignment). */
  headerSize?: number;
  loadAddress?: number;
  /** Leave the SHA-256 TLV out (an image signed by a tool that does not hash). */
  noHash?: boolean;
}

const le = (n: number, bytes: number): string => {
  let s = '';
  for (let i = 0; i < bytes; i++) s += ((n >>> (8 * i)) & 0xff).toString(16).padStart(2, '0');
  return s;
};

export function mcubootImage(opts: McubootImageOptions): Uint8Array {
  const hdrSize = opts.headerSize ?? 0x200;
  const v = opts.version;
  const header = Buffer.from(
    [
      '3db8f396', // ih_magic 0x96f3b83d
      le(opts.loadAddress ?? 0, 4), // ih_load_addr
      le(hdrSize, 2), // ih_hdr_size
      '0000', // ih_protect_tlv_size
      le(opts.body.length, 4), // ih_img_size
      '00000000', // ih_flags
      le(v.major, 1) + le(v.minor, 1) + le(v.revision, 2) + le(v.build, 4), // ih_ver
      '00000000', // _pad1
    ].join(''),
    'hex',
  );
  const head = Buffer.alloc(hdrSize, 0xff);
  header.copy(head);
  const signed = Buffer.concat([head, opts.body]);
  if (opts.noHash) return new Uint8Array(Buffer.concat([signed, Buffer.from('07690400', 'hex')]));
  const sha = createHash('sha256').update(signed).digest();
  // TLV info (magic 0x6907, total 4 + 4 + 32), then the SHA-256 TLV: type 0x10, length 32.
  const tlv = Buffer.concat([Buffer.from('07692800', 'hex'), Buffer.from('10002000', 'hex'), sha]);
  return new Uint8Array(Buffer.concat([signed, tlv]));
}
