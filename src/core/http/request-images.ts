import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

/**
 * The image of a single-image request: the first file of a multipart body, or the raw body
 * (image/png, image/jpeg, application/dicom, application/octet-stream).
 * @throws AppError INVALID_INPUT when there is none; PAYLOAD_TOO_LARGE via the multipart limits.
 */
export async function readSingleImage(req: FastifyRequest): Promise<Uint8Array> {
  if (req.isMultipart()) {
    const file = await req.file();
    if (!file) throw new AppError('INVALID_INPUT', 'the multipart body holds no file');
    return file.toBuffer();
  }
  if (Buffer.isBuffer(req.body)) return req.body;
  const how = 'send the image as a multipart file or as a raw body (image/png, image/jpeg, application/dicom, application/octet-stream)';
  if (req.body === undefined || req.body === null) throw new AppError('INVALID_INPUT', `no image in the request; ${how}`);
  throw new AppError('UNSUPPORTED_MEDIA_TYPE', `content type '${req.headers['content-type'] ?? ''}' is not accepted here; ${how}`);
}

/** Every file of a multipart body, in order. */
export async function readManyImages(req: FastifyRequest): Promise<{ filename: string; bytes: Uint8Array }[]> {
  const out: { filename: string; bytes: Uint8Array }[] = [];
  for await (const file of req.files()) out.push({ filename: file.filename, bytes: await file.toBuffer() });
  if (out.length === 0) throw new AppError('INVALID_INPUT', 'the multipart body holds no files');
  return out;
}

/** true when the request's body is JSON (content type application/json). */
export function isJsonRequest(req: FastifyRequest): boolean {
  return /^application\/json\b/i.test(String(req.headers['content-type'] ?? ''));
}
