import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FsObjectStore, ObjectKeyring, openObjectStore } from '../../src/core/objects/index.js';
import { AppError } from '../../src/core/errors.js';
import { describeObjectStoreContract } from '../contract/object-store.contract.js';
import { startS3Server, tempHome, uniqueName } from '../helpers/engines.js';

describeObjectStoreContract('filesystem (embedded)', async () => {
  const home = tempHome();
  return { value: new FsObjectStore(home.dir), cleanup: async () => home.cleanup() };
});

describeObjectStoreContract('filesystem, encrypted at rest (XRAY_OBJECT_KEY_FILE)', async () => {
  const home = tempHome();
  const keyFile = path.join(home.dir, 'master.key');
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const store = await openObjectStore(`file:${path.join(home.dir, 'objects')}`, { keyFile });
  assert.equal((store as FsObjectStore).encrypted, true);
  return { value: store, cleanup: async () => home.cleanup() };
});

describeObjectStoreContract('S3 protocol (s3rver on loopback)', async () => {
  const server = await startS3Server();
  const store = await openObjectStore(`s3://${uniqueName('bucket').replace(/_/g, '-')}/some/prefix`, {
    endpoint: server.endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
    createBucket: true,
  });
  return { value: store, cleanup: async () => (await store.close(), await server.close()) };
});

const unprocessable = (pattern: RegExp) => (err: unknown) => err instanceof AppError && err.code === 'UNPROCESSABLE' && pattern.test(err.message);
const key = () => randomBytes(32);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !path.join(e.parentPath, e.name).includes(`${path.sep}.tmp`))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('filesystem envelope encryption', () => {
  test('no plaintext on disk; a flipped byte, a moved file or the wrong master key fail typed', async () => {
    const home = tempHome();
    try {
      const store = new FsObjectStore(home.dir, { keyring: new ObjectKeyring([key()]) });
      const secret = Buffer.from('PATIENT-XRAY-PIXELS '.repeat(100));
      await store.put('images/a.png', secret);
      const onDisk = readFileSync(path.join(home.dir, 'images/a.png'));
      assert.equal(onDisk.subarray(0, 8).toString(), 'XRAYENC1');
      assert.equal(onDisk.includes(Buffer.from('PATIENT')), false, 'no plaintext at rest');
      assert.equal(onDisk.length, secret.length + 112);
      assert.equal((await store.stat('images/a.png'))?.size, secret.length, 'sizes are plaintext sizes');
      assert.equal((await store.list('images/')).items[0]?.size, secret.length);

      // Two writes of the same bytes differ on disk (a fresh data key and iv each time).
      await store.put('images/b.png', secret);
      assert.notDeepEqual(readFileSync(path.join(home.dir, 'images/b.png')), onDisk);

      const flipped = Buffer.from(onDisk);
      flipped[200] = flipped[200]! ^ 1;
      writeFileSync(path.join(home.dir, 'images/c.png'), flipped);
      await assert.rejects(store.get('images/c.png'), unprocessable(/failed authentication/));
      await assert.rejects(async () => (await store.getStream('images/c.png')).toArray(), unprocessable(/failed authentication/));

      // A file copied under another key does not decrypt (the object key is authenticated).
      writeFileSync(path.join(home.dir, 'images/d.png'), onDisk);
      await assert.rejects(store.get('images/d.png'), unprocessable(/failed authentication/));

      const other = new FsObjectStore(home.dir, { keyring: new ObjectKeyring([key()]) });
      await assert.rejects(other.get('images/a.png'), unprocessable(/master key [0-9a-f]{16}, which XRAY_OBJECT_KEY_FILE does not hold/));
      const plainReader = new FsObjectStore(home.dir);
      await assert.rejects(plainReader.get('images/a.png'), unprocessable(/set XRAY_OBJECT_KEY_FILE/));
    } finally {
      home.cleanup();
    }
  });

  test('large objects stream through the cipher both ways, and tampering is caught at the end', async () => {
    const home = tempHome();
    try {
      const store = new FsObjectStore(home.dir, { keyring: new ObjectKeyring([key()]) });
      const big = randomBytes(17 * 1024 * 1024 + 3);
      const chunks = Array.from({ length: 18 }, (_, i) => big.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
      assert.equal(await store.putStream('models/big.onnx', Readable.from(chunks)), big.length);
      const back = Buffer.concat(await (await store.getStream('models/big.onnx')).toArray());
      assert.equal(back.equals(big), true);
      const file = path.join(home.dir, 'models/big.onnx');
      const stored = readFileSync(file);
      stored[stored.length - 5] = stored[stored.length - 5]! ^ 0x80;
      writeFileSync(file, stored);
      await assert.rejects(async () => (await store.getStream('models/big.onnx')).toArray());
    } finally {
      home.cleanup();
    }
  });

  test('rotation: reencrypt encrypts plain objects and re-wraps old ones under the new key; times kept; the old key can go', async () => {
    const home = tempHome();
    try {
      const plain = new FsObjectStore(home.dir);
      await plain.put('runs/before-encryption.json', '{"a":1}');
      const oldKey = key();
      const newKey = key();
      const v1 = new FsObjectStore(home.dir, { keyring: new ObjectKeyring([oldKey]) });
      await v1.put('images/x.png', 'x-bytes');
      await v1.put('images/y.png', 'y-bytes');
      assert.equal((await v1.get('runs/before-encryption.json')).toString(), '{"a":1}', 'objects from before encryption stay readable');
      const past = new Date('2024-01-02T03:04:05Z');
      utimesSync(path.join(home.dir, 'images/x.png'), past, past);

      // The key file: the new key first, the old one kept for reading until the re-encryption is done.
      const keyFile = path.join(home.dir, '..', `${path.basename(home.dir)}.keys`);
      writeFileSync(keyFile, `# rotated\n${newKey.toString('base64')}\n${oldKey.toString('hex')}\n`);
      const v2 = new FsObjectStore(home.dir, { keyring: ObjectKeyring.fromFile(keyFile) });
      assert.equal((await v2.get('images/y.png')).toString(), 'y-bytes');
      const result = await v2.reencrypt();
      assert.deepEqual(result, { encrypted: 1, rewrapped: 2, unchanged: 0 });
      assert.deepEqual(await v2.reencrypt(), { encrypted: 0, rewrapped: 0, unchanged: 3 }, 'idempotent');
      assert.equal(statSync(path.join(home.dir, 'images/x.png')).mtimeMs, past.getTime(), 'modification time kept (garbage collection reads it)');

      const onlyNew = new FsObjectStore(home.dir, { keyring: new ObjectKeyring([newKey]) });
      assert.equal((await onlyNew.get('images/x.png')).toString(), 'x-bytes');
      assert.equal((await onlyNew.get('runs/before-encryption.json')).toString(), '{"a":1}');
      rmSync(keyFile);
      for (const f of filesUnder(home.dir)) assert.equal(readFileSync(f).subarray(0, 8).toString(), 'XRAYENC1', f);
      await assert.rejects(new FsObjectStore(home.dir, { keyring: new ObjectKeyring([oldKey]) }).get('images/x.png'), unprocessable(/does not hold/));
    } finally {
      home.cleanup();
    }
  });

  test('key files: base64 or hex, 32 bytes, at least one', () => {
    const home = tempHome();
    try {
      const file = path.join(home.dir, 'k');
      writeFileSync(file, 'c2hvcnQ=\n');
      assert.throws(() => ObjectKeyring.fromFile(file), (e: unknown) => e instanceof AppError && /key 1 is not 32 bytes/.test(e.message));
      writeFileSync(file, '# nothing\n\n');
      assert.throws(() => ObjectKeyring.fromFile(file), (e: unknown) => e instanceof AppError && /holds no key/.test(e.message));
      assert.throws(() => ObjectKeyring.fromFile(path.join(home.dir, 'missing')), (e: unknown) => e instanceof AppError && /cannot read/.test(e.message));
    } finally {
      home.cleanup();
    }
  });
});

describe('S3 server-side encryption', () => {
  /** s3rver behind a recording proxy: what the platform sends on the wire. */
  async function recordingS3(): Promise<{ endpoint: string; puts: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
    const s3 = await startS3Server();
    const upstream = new URL(s3.endpoint);
    const puts: http.IncomingHttpHeaders[] = [];
    const proxy = http.createServer((req, res) => {
      if (req.method === 'PUT') puts.push(req.headers);
      const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(out);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const { port } = proxy.address() as { port: number };
    return { endpoint: `http://127.0.0.1:${port}`, puts, close: async () => (await new Promise((r) => proxy.close(r)), await s3.close()) };
  }

  for (const [sse, kms] of [['AES256', undefined], ['aws:kms', 'arn:aws:kms:eu-west-1:111122223333:key/test-key']] as const) {
    test(`XRAY_S3_SSE=${sse}: every PutObject and the touch copy request it`, async () => {
      const server = await recordingS3();
      const store = await openObjectStore(`s3://${uniqueName('sse').replace(/_/g, '-')}/p`, {
        endpoint: server.endpoint,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
        createBucket: true,
        sse,
        sseKmsKeyId: kms,
      });
      try {
        await store.put('a/b.bin', Buffer.from('bytes'));
        await store.putStream('a/c.bin', Readable.from([Buffer.from('more')]));
        await store.touch('a/b.bin');
        assert.equal((await store.get('a/b.bin')).toString(), 'bytes');
        const objectPuts = server.puts.filter((h) => h['x-amz-copy-source'] !== undefined || h['content-length'] !== '0');
        assert.ok(objectPuts.length >= 3, `${objectPuts.length} object writes`);
        for (const h of objectPuts) {
          assert.equal(h['x-amz-server-side-encryption'], sse);
          assert.equal(h['x-amz-server-side-encryption-aws-kms-key-id'], kms);
        }
      } finally {
        await store.close();
        await server.close();
      }
    });
  }
});

describe('xray objects reencrypt and the platform with XRAY_OBJECT_KEY_FILE', () => {
  test('the platform writes encrypted objects; the command encrypts older plain ones, is audited, and refuses without a key', async () => {
    const { openPlatform } = await import('../../src/core/platform.js');
    const { testConfig } = await import('../../src/core/config/index.js');
    const { reencryptObjects } = await import('../../src/cli/commands/objects.js');
    const home = tempHome();
    try {
      const env = { XRAY_HOME: home.dir, XRAY_LOG_LEVEL: 'silent' };
      const before = await openPlatform(testConfig(home.dir));
      await before.objects.put('images/old.png', 'plain-old-bytes');
      await before.close();
      const lines: string[] = [];
      assert.equal(await reencryptObjects(env, (l) => lines.push(l)), 1);
      assert.match(lines[0]!, /XRAY_OBJECT_KEY_FILE is not set/);

      const keyFile = path.join(home.dir, '..', `${path.basename(home.dir)}.objkey`);
      writeFileSync(keyFile, randomBytes(32).toString('base64'));
      const platform = await openPlatform(testConfig(home.dir, { XRAY_OBJECT_KEY_FILE: keyFile }));
      await platform.objects.put('images/new.png', 'new-bytes');
      assert.equal(readFileSync(path.join(home.dir, 'objects/images/new.png')).subarray(0, 8).toString(), 'XRAYENC1');
      assert.equal(readFileSync(path.join(home.dir, 'objects/images/old.png')).toString(), 'plain-old-bytes');
      assert.equal(await reencryptObjects({ ...env, XRAY_OBJECT_KEY_FILE: keyFile }, (l) => lines.push(l)), 0);
      assert.match(lines.at(-1)!, /1 plain objects encrypted, 0 re-wrapped, 1 already current/);
      assert.equal(readFileSync(path.join(home.dir, 'objects/images/old.png')).subarray(0, 8).toString(), 'XRAYENC1');
      assert.equal((await platform.objects.get('images/old.png')).toString(), 'plain-old-bytes');
      await platform.audit.flush();
      const { items } = await platform.audit.query({ action: 'objects.reencrypt' });
      assert.equal(items.length, 1);
      await platform.close();
      rmSync(keyFile);
    } finally {
      home.cleanup();
    }
  });
});
