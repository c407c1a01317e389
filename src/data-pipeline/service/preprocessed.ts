import { isAppError } from '../../core/errors.js';
import { validateKey } from '../../core/objects/index.js';
import { parsePreprocessSpec, preprocessingHash, type PreprocessSpec, type PreprocessSpecInput } from '../../core/imaging/index.js';
import { NAMESPACES, type DataContext } from './context.js';

/** Where the preprocessed PNG of an image is cached: `preprocessed/<spechash>/<imagehash>.png`. */
export function preprocessedKey(specHash: string, imageHash: string): string {
  return validateKey(`${NAMESPACES.preprocessed}/${specHash}/${imageHash}.png`);
}

/** The stored (for DICOM: anonymised) bytes of an image. @throws AppError NOT_FOUND. */
export async function getImageBytes(ctx: DataContext, hash: string): Promise<Buffer> {
  const image = await ctx.images.require(hash);
  return ctx.platform.objects.get(image.objectKey);
}

/**
 * The preprocessed PNG of a stored image under a spec, from the cache or made (and cached) now.
 * The cache key includes the spec hash, so a changed spec never serves stale pixels.
 */
export async function preprocessedPng(ctx: DataContext, imageHash: string, specInput: PreprocessSpecInput | PreprocessSpec): Promise<{ png: Buffer; cached: boolean }> {
  const spec = parsePreprocessSpec(specInput);
  const key = preprocessedKey(preprocessingHash(spec), imageHash);
  try {
    return { png: await ctx.platform.objects.get(key), cached: true };
  } catch (err) {
    if (!isAppError(err) || err.code !== 'NOT_FOUND') throw err;
  }
  const raw = await getImageBytes(ctx, imageHash);
  const png = pngOf(await ctx.pool.run(raw, spec, { png: true }));
  await ctx.platform.objects.put(key, png, 'image/png');
  return { png, cached: false };
}

/** Preprocesses an uploaded image (not stored) to a PNG. */
export async function preprocessUpload(ctx: DataContext, bytes: Buffer, specInput: PreprocessSpecInput): Promise<{ png: Buffer; specHash: string; source: { format: string; width: number; height: number } }> {
  const spec = parsePreprocessSpec(specInput);
  const result = await ctx.pool.run(bytes, spec, { png: true });
  return { png: pngOf(result), specHash: preprocessingHash(spec), source: result.source };
}

/** The PNG a worker made, as a Buffer over the same bytes. */
function pngOf(result: { png?: Uint8Array }): Buffer {
  const png = result.png!;
  return Buffer.from(png.buffer, png.byteOffset, png.byteLength);
}
