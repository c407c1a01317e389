/** Shared helpers for the imaging tests (not a test file itself). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { AppError } from '../../../src/core/errors.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** `../shared/data/dicom` relative to the project root; absent in some checkouts. */
export const DICOM_DIR = join(projectRoot, '..', 'shared', 'data', 'dicom');
export const DICOM_MONO2 = join(DICOM_DIR, '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
export const DICOM_MONO1 = join(DICOM_DIR, 'Fake_MONOHR1.dcm');
export const DICOM_SKIP = 'shared DICOM fixtures not found at ../shared/data/dicom (skipped)';

export function dicomFixtures(): { mono2: Buffer; mono1: Buffer } | null {
  if (!existsSync(DICOM_MONO2) || !existsSync(DICOM_MONO1)) return null;
  return { mono2: readFileSync(DICOM_MONO2), mono1: readFileSync(DICOM_MONO1) };
}

/** Asserts that `promise` rejects (or `fn` throws) an AppError with `code`; returns it. */
export async function expectAppError(action: Promise<unknown> | (() => unknown), code: string): Promise<AppError> {
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (err) {
    if (!(err instanceof AppError)) throw new Error(`expected AppError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected AppError ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected AppError ${code}, but nothing was thrown`);
}

/** Decodes a PNG/JPEG to raw single-channel bytes. */
export async function decodeGrey(buf: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(buf).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** A greyscale gradient image as raw bytes. */
export function gradient(width: number, height: number): Uint8Array {
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px[y * width + x] = Math.round(((x + y) / (width + height - 2)) * 255);
  return px;
}

export function rawToPng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 = 1): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}
