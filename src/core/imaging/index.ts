/**
 * Imaging building blocks: decoding and validation (PNG, JPEG, DICOM), DICOM rendering,
 * anonymisation and writing, the train/serve preprocessing contract, statistics, perceptual
 * hashing, quality checks and synthetic radiographs. Pure functions: no HTTP, no database.
 */
export {
  sniffFormat,
  requireFormat,
  probeImage,
  openImage,
  toDecodeError,
  checkDimensions,
  DEFAULT_DECODE_OPTIONS,
} from './decode.js';
export type { ImageFormat, ImageInfo, DecodeOptions, OpenedImage } from './decode.js';

export { decodeDicom, readDicomHeader, isDicom, decodeRleFrame, TRANSFER_SYNTAXES, DEFAULT_DICOM_MAX_PIXELS } from './dicom.js';
export type { DicomImage, DicomImageMeta, DicomHeader, DecodeDicomOptions, VoiFunction, VoiSource } from './dicom.js';

export { anonymiseDicom, hashPatientId, hashUid, DEIDENTIFICATION_METHOD } from './anonymise.js';
export type { AnonymiseOptions, AnonymiseResult } from './anonymise.js';

export { makeDicom, encodeRleFrame, TS_EXPLICIT_LE, TS_IMPLICIT_LE, TS_RLE, CR_IMAGE_STORAGE } from './dicom-writer.js';
export type { MakeDicomOptions } from './dicom-writer.js';

export {
  PreprocessSpec,
  parsePreprocessSpec,
  preprocessingHash,
  preprocess,
  encodeGreyPng,
  toModelInput,
  PREPROCESS_VERSION,
} from './preprocess.js';
export type { PreprocessSpecInput, PreprocessOptions, PreprocessResult } from './preprocess.js';

export { analyseImage, ANALYSIS_SPEC } from './analyse.js';
export type { ImageAnalysis } from './analyse.js';

export { imageStats } from './stats.js';
export type { ImageStats } from './stats.js';

export { perceptualHash, perceptualHashOfPixels, phashFrom32x32, hammingDistance } from './phash.js';

export { checkQuality, passesQuality, DEFAULT_QUALITY_THRESHOLDS } from './quality.js';
export type { QualityCode, QualityIssue, QualityThresholds, QualityImageInfo, QualityStats } from './quality.js';

export { generateChestXray, renderChestXray, generateDataset } from './synthetic.js';
export type {
  ChestXrayOptions,
  RenderedImage,
  PneumoniaKind,
  GenerateDatasetOptions,
  SyntheticDataset,
  SyntheticFile,
  SyntheticLabel,
} from './synthetic.js';

export { IMAGE_SHIFTS, findShifts } from './shifts.js';
export type { ImageShift } from './shifts.js';
