// Images, packages, manifests, hashes and the delta codec (docs/architecture.md §2, rig/images).
export {
  CRC_ALGORITHMS, Crc32, crc32, crcAlgorithmsMatching, crcParams, DEFAULT_CRC_ALGORITHM, formatCrc, listCrcAlgorithms,
  type CrcAlgorithm, type CrcParams,
} from './crc.ts';
export { digestOf, Hashes, md5Hex, sha256Hex, type PackageDigest } from './digest.ts';
export {
  describeIdentity, identifyImage, IMAGE_HEADER_FORMAT, IMAGE_HEADER_MAGIC, IMAGE_HEADER_OFFSET, IMAGE_HEADER_SIZE,
  imageBodyCrc, parseImageHeader, writeImageHeader, type ImageHeader, type ImageHeaderFields, type ImageIdentity,
} from './header.ts';
export { compareImages, describeComparison, type CompareOptions, type DiffRange, type ImageComparison } from './compare.ts';
export {
  assertPackage, describeVerification, verifyPackage,
  type DigestField, type DigestMismatch, type PackageVerification, type VerifyOptions,
} from './verify.ts';
export { applyDelta, checkVcdiffHeader, encodeDelta, XDELTA3_ARGS, type DeltaExpectation, type EncodeOptions, type ImageRef } from './delta.ts';
export { Image, type ImageMeta } from './image.ts';
export { Package, type PackageInfo, type PackageType } from './package.ts';
export {
  compilePattern, DEFAULT_LOCATOR, detectLocator, formatLocator, formatMcubootVersion, LOCATOR_KINDS, LOCATOR_SYNTAX, locateVersion,
  locatorJson, locatorSchema, MCUBOOT_DEFAULT_FORMAT, MCUBOOT_MAGIC, parseLocator, VERSION_RE,
  type Located, type LocatorKind, type VersionLocator,
} from './locator.ts';
export { identifyContent, identifyRelease, UnnamedImageError, type ContentIdentity, type IdentifyOptions, type ReleaseIdentity } from './identify.ts';
export {
  addRelease, compareVersions, deltaPackage, deltaPackageEntry, fullPackage, fullPackageEntry, imageEntry, imageRef, loadReleases,
  type AddedRelease, type AddReleaseOptions,
} from './release.ts';
export {
  currentManifestPath, defaultManifestPath, FirmwareSet, loadManifest, MANIFEST_FORMAT, manifestSchema,
  type ImageEntry, type ManifestJson, type PackageEntry,
} from './manifest.ts';
