import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { AppError } from '../errors.js';
import { validateKey, validatePrefix, type ListPage, type ObjectInfo, type ObjectStore } from './object-store.js';

export interface S3ObjectStoreOptions {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
  /** Create the bucket at first use when missing (MinIO/s3rver convenience). */
  createBucket?: boolean;
  /** Server-side encryption requested on every PutObject (and the copy behind touch). */
  sse?: 'AES256' | 'aws:kms';
  /** KMS key for 'aws:kms' (empty = the account's default aws/s3 key). */
  sseKmsKeyId?: string;
}

type S3Module = typeof import('@aws-sdk/client-s3');

/** S3 / MinIO object store. The AWS SDK loads lazily, off the embedded path. S3 PUTs are atomic. */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const;
  readonly #opts: Readonly<S3ObjectStoreOptions>;
  #ready?: Promise<{ client: S3Client; s3: S3Module }>;

  constructor(options: S3ObjectStoreOptions) {
    this.#opts = Object.freeze({ ...options, prefix: (options.prefix ?? '').replace(/^\/+|\/+$/g, '') });
  }

  #init(): Promise<{ client: S3Client; s3: S3Module }> {
    this.#ready ??= (async () => {
      const s3 = await import('@aws-sdk/client-s3');
      const o = this.#opts;
      const client = new s3.S3Client({
        region: o.region ?? 'us-east-1',
        endpoint: o.endpoint || undefined,
        forcePathStyle: o.forcePathStyle ?? true,
        credentials: o.accessKeyId ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey ?? '' } : undefined,
      });
      if (o.createBucket) {
        try {
          await client.send(new s3.HeadBucketCommand({ Bucket: o.bucket }));
        } catch {
          await client.send(new s3.CreateBucketCommand({ Bucket: o.bucket }));
        }
      }
      return { client, s3 };
    })().catch((err) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  /** The server-side encryption parameters of a write. */
  #sse(): { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string } {
    const o = this.#opts;
    if (!o.sse) return {};
    return o.sse === 'aws:kms' && o.sseKmsKeyId ? { ServerSideEncryption: o.sse, SSEKMSKeyId: o.sseKmsKeyId } : { ServerSideEncryption: o.sse };
  }

  #full(key: string): string {
    validateKey(key);
    return this.#opts.prefix ? `${this.#opts.prefix}/${key}` : key;
  }

  #strip(full: string): string {
    return this.#opts.prefix ? full.slice(this.#opts.prefix.length + 1) : full;
  }

  async put(key: string, data: Buffer | Uint8Array | string, contentType?: string): Promise<void> {
    const { client, s3 } = await this.#init();
    await client.send(new s3.PutObjectCommand({ Bucket: this.#opts.bucket, Key: this.#full(key), Body: data, ContentType: contentType, ...this.#sse() }));
  }

  async putStream(key: string, body: Readable, contentType?: string): Promise<number> {
    // Buffer the stream: PutObject needs a known length; artifacts stay well below memory limits.
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
    const data = Buffer.concat(chunks);
    await this.put(key, data, contentType);
    return data.length;
  }

  async get(key: string): Promise<Buffer> {
    const stream = await this.getStream(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks);
  }

  async getStream(key: string): Promise<Readable> {
    const { client, s3 } = await this.#init();
    try {
      const out = await client.send(new s3.GetObjectCommand({ Bucket: this.#opts.bucket, Key: this.#full(key) }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const { client, s3 } = await this.#init();
    try {
      const out = await client.send(new s3.HeadObjectCommand({ Bucket: this.#opts.bucket, Key: this.#full(key) }));
      return { key, size: out.ContentLength ?? 0, modified: out.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * S3 has no touch: copying the object onto itself with replaced metadata renews LastModified on
   * AWS S3 and MinIO. Servers that keep the old time (s3rver) get the bytes written again.
   */
  async touch(key: string): Promise<void> {
    const { client, s3 } = await this.#init();
    const full = this.#full(key);
    const head = async () => {
      try {
        return await client.send(new s3.HeadObjectCommand({ Bucket: this.#opts.bucket, Key: full }));
      } catch (err) {
        if (isNotFound(err)) throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
        throw err;
      }
    };
    const before = await head();
    await client.send(
      new s3.CopyObjectCommand({
        Bucket: this.#opts.bucket,
        Key: full,
        CopySource: `${this.#opts.bucket}/${full.split('/').map(encodeURIComponent).join('/')}`,
        MetadataDirective: 'REPLACE',
        ContentType: before.ContentType,
        ...this.#sse(),
      }),
    );
    const after = await head();
    if ((after.LastModified?.getTime() ?? 0) <= (before.LastModified?.getTime() ?? 0)) {
      await this.put(key, await this.get(key), before.ContentType);
    }
  }

  async delete(key: string): Promise<void> {
    const { client, s3 } = await this.#init();
    await client.send(new s3.DeleteObjectCommand({ Bucket: this.#opts.bucket, Key: this.#full(key) }));
  }

  async list(prefix: string, options: { pageSize?: number; pageToken?: string } = {}): Promise<ListPage> {
    validatePrefix(prefix);
    const { client, s3 } = await this.#init();
    const full = this.#opts.prefix ? `${this.#opts.prefix}/${prefix}` : prefix;
    // ListObjects (v1) with Marker: the page token is the last key seen, the same contract as the
    // fs store, and it avoids v2 continuation tokens (s3rver builds those with DES, gone in OpenSSL 3).
    const out = await client.send(
      new s3.ListObjectsCommand({
        Bucket: this.#opts.bucket,
        Prefix: full,
        MaxKeys: Math.min(Math.max(options.pageSize ?? 1000, 1), 1000),
        Marker: options.pageToken ? this.#full(options.pageToken) : undefined,
      }),
    );
    const items = (out.Contents ?? []).map((o) => ({ key: this.#strip(o.Key!), size: o.Size ?? 0, modified: o.LastModified?.getTime() ?? 0 }));
    return out.IsTruncated && items.length ? { items, nextPageToken: items[items.length - 1]!.key } : { items };
  }

  async ping(): Promise<boolean> {
    try {
      const { client, s3 } = await this.#init();
      await client.send(new s3.HeadBucketCommand({ Bucket: this.#opts.bucket }));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#ready) {
      try {
        (await this.#ready).client.destroy();
      } catch {
        /* init failed: nothing to close */
      }
    }
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; Code?: string };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.Code === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}
