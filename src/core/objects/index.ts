import { fileURLToPath } from 'node:url';
import type { ObjectStore } from './object-store.js';
import { FsObjectStore } from './fs-object-store.js';

export * from './object-store.js';
export { FsObjectStore } from './fs-object-store.js';

export interface S3Settings {
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
  createBucket?: boolean;
}

/** Opens the object store named by URL: `file:<dir>` or `s3://bucket/prefix`. The one engine switch. */
export async function openObjectStore(url: string, s3: S3Settings = {}): Promise<ObjectStore> {
  if (url.startsWith('file:')) {
    const rest = url.slice('file:'.length);
    return new FsObjectStore(rest.startsWith('//') ? fileURLToPath(url) : rest);
  }
  if (url.startsWith('s3://')) {
    const { S3ObjectStore } = await import('./s3-object-store.js');
    const [bucket, ...prefix] = url.slice('s3://'.length).split('/');
    if (!bucket) throw new Error(`object store URL '${url}' has no bucket`);
    return new S3ObjectStore({ bucket, prefix: prefix.join('/'), createBucket: true, ...s3 });
  }
  throw new Error(`unknown object store URL scheme in '${url}'; use file:<dir> or s3://bucket/prefix`);
}
