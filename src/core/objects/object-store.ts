import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Last written or touched, epoch ms (second precision on S3). */
  modified: number;
}

export interface ListPage {
  items: ObjectInfo[];
  nextPageToken?: string;
}

/**
 * Bytes storage for images, checkpoints, ONNX files and reports (never blobs in SQL rows).
 * Keys are '/'-separated relative paths; validated before touching a path or a URL.
 */
export interface ObjectStore {
  readonly kind: 'fs' | 's3';
  /** Writes atomically (readers never see a partial object). Overwrites. */
  put(key: string, data: Buffer | Uint8Array | string, contentType?: string): Promise<void>;
  /** Streams a (possibly large) body into the store atomically; returns bytes written. */
  putStream(key: string, body: Readable, contentType?: string): Promise<number>;
  /** Reads a whole object; NOT_FOUND when missing. */
  get(key: string): Promise<Buffer>;
  /** Streams an object; NOT_FOUND when missing. */
  getStream(key: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  /** Size of an object, or null when missing. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** Marks an existing object as just written (garbage collection spares recent objects); NOT_FOUND when missing. */
  touch(key: string): Promise<void>;
  /** Deletes; missing keys are fine. */
  delete(key: string): Promise<void>;
  /** Lists keys under a prefix in key order, paged. */
  list(prefix: string, options?: { pageSize?: number; pageToken?: string }): Promise<ListPage>;
  /** true when the backing store answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const KEY_PART = /^[A-Za-z0-9._@=+-]+$/;

/** Refuses traversal, absolute paths, empty parts, NUL and odd characters in object keys. */
export function validateKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new AppError('INVALID_INPUT', 'object key must be 1–1024 characters');
  }
  const parts = key.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..' || !KEY_PART.test(part)) {
      throw new AppError('INVALID_INPUT', `invalid object key '${key.replace(/[^\x20-\x7e]/g, '?')}'`);
    }
  }
  return key;
}

export function validatePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  return validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix) + (prefix.endsWith('/') ? '/' : '');
}

export function sha256Hex(data: Buffer | Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Content-addressed key for immutable artifacts: `<namespace>/ab/cd/<sha256>[.ext]`. */
export function contentKey(namespace: string, sha256: string, ext = ''): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new AppError('INVALID_INPUT', `not a sha256 hex digest: '${sha256}'`);
  return validateKey(`${namespace}/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}${ext}`);
}

/**
 * Stores bytes under their sha256 (idempotent); returns the digest and key. Bytes already there are
 * touched, so a garbage collection running meanwhile treats them as new until they are referenced.
 */
export async function putContentAddressed(
  store: ObjectStore,
  namespace: string,
  data: Buffer,
  ext = '',
  contentType?: string,
): Promise<{ sha256: string; key: string; existed: boolean }> {
  const sha256 = sha256Hex(data);
  const key = contentKey(namespace, sha256, ext);
  // The touch is also the existence check: NOT_FOUND (never stored, or collected meanwhile) means write it.
  const existed = await store.touch(key).then(
    () => true,
    (err: unknown) => (err instanceof AppError && err.code === 'NOT_FOUND' ? false : Promise.reject(err)),
  );
  if (!existed) await store.put(key, data, contentType);
  return { sha256, key, existed };
}
