import { fileURLToPath } from 'node:url';
import type { ObjectStore } from './object-store.js';
import { FsObjectStore } from './fs-object-store.js';

import { ObjectKeyring } from './envelope.js';
import type { Config } from '../config/index.js';

export * from './object-store.js';
export { FsObjectStore, type ReencryptResult } from './fs-object-store.js';
export { ObjectKeyring } from './envelope.js';

export interface S3Settings {
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
  createBucket?: boolean;
  /** S3 server-side encryption on every write: SSE-S3 ('AES256') or SSE-KMS ('aws:kms', with sseKmsKeyId). */
  sse?: 'AES256' | 'aws:kms';
  sseKmsKeyId?: string;
  /** Filesystem store: envelope encryption with the master key(s) in this file (XRAY_OBJECT_KEY_FILE). */
  keyFile?: string;
}

/** The object store settings of a configuration: S3 credentials and encryption at rest for either engine. */
export function objectStoreSettings(config: Config): S3Settings {
  return {
    endpoint: config.s3.endpoint || undefined,
    region: config.s3.region,
    accessKeyId: config.s3.accessKeyId || undefined,
    secretAccessKey: config.s3.secretAccessKey || undefined,
    forcePathStyle: config.s3.forcePathStyle,
    sse: config.s3.sse || undefined,
    sseKmsKeyId: config.s3.sseKmsKeyId || undefined,
    keyFile: config.objectKeyFile || undefined,
  };
}

/** Opens the object store named by URL: `file:<dir>` or `s3://bucket/prefix`. The one engine switch. */
export async function openObjectStore(url: string, s3: S3Settings = {}): Promise<ObjectStore> {
  if (url.startsWith('file:')) {
    const rest = url.slice('file:'.length);
    const keyring = s3.keyFile ? ObjectKeyring.fromFile(s3.keyFile) : undefined;
    return new FsObjectStore(rest.startsWith('//') ? fileURLToPath(url) : rest, { keyring });
  }
  if (url.startsWith('s3://')) {
    const { S3ObjectStore } = await import('./s3-object-store.js');
    const [bucket, ...prefix] = url.slice('s3://'.length).split('/');
    if (!bucket) throw new Error(`object store URL '${url}' has no bucket`);
    return new S3ObjectStore({ bucket, prefix: prefix.join('/'), createBucket: true, ...s3 });
  }
  throw new Error(`unknown object store URL scheme in '${url}'; use file:<dir> or s3://bucket/prefix`);
}
