import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { putContentAddressed, sha256Hex, type ObjectStore } from '../../src/core/objects/index.js';
import { AppError } from '../../src/core/errors.js';

export interface Fixture<T> {
  value: T;
  cleanup(): Promise<void>;
}

/** The ObjectStore contract, run against every implementation (fs, S3). */
export function describeObjectStoreContract(name: string, make: () => Promise<Fixture<ObjectStore> | null>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: Fixture<ObjectStore> | null;
    let store: ObjectStore;
    before(async () => {
      fx = await make();
      if (fx) store = fx.value;
    });
    after(async () => fx?.cleanup());
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (fx ? fn() : t.skip(`${name} unavailable`)));

    it('put then get returns the same bytes; stat reports the size', async () => {
      const data = Buffer.from('hello \u00e9 world');
      await store.put('a/b/c.txt', data);
      assert.deepEqual(await store.get('a/b/c.txt'), data);
      const info = await store.stat('a/b/c.txt');
      assert.equal(info?.key, 'a/b/c.txt');
      assert.equal(info?.size, data.length);
      assert.ok(Math.abs(info!.modified - Date.now()) < 60_000, `modified ${info?.modified}`);
      assert.equal(await store.exists('a/b/c.txt'), true);
    });

    it('overwrite replaces the object', async () => {
      await store.put('over/x', 'one');
      await store.put('over/x', 'two');
      assert.equal((await store.get('over/x')).toString(), 'two');
    });

    it('missing objects: get → NOT_FOUND, stat → null, delete is a no-op', async () => {
      await assert.rejects(store.get('nope/none'), (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND');
      await assert.rejects(store.getStream('nope/none'), (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND');
      assert.equal(await store.stat('nope/none'), null);
      await store.delete('nope/none');
    });

    it('streams in and out', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 7, 7);
      const n = await store.putStream('stream/big.bin', Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
      assert.equal(n, big.length);
      const chunks: Buffer[] = [];
      for await (const c of await store.getStream('stream/big.bin')) chunks.push(Buffer.from(c as Buffer));
      assert.equal(sha256Hex(Buffer.concat(chunks)), sha256Hex(big));
    });

    it('delete removes the object', async () => {
      await store.put('del/me', 'x');
      await store.delete('del/me');
      assert.equal(await store.exists('del/me'), false);
    });

    it('lists by prefix in key order, paged', async () => {
      for (const k of ['list/b', 'list/a', 'list/c/d', 'listx/e', 'other/f']) await store.put(k, k);
      const all = await store.list('list/');
      assert.deepEqual(all.items.map((i) => i.key), ['list/a', 'list/b', 'list/c/d']);
      const p1 = await store.list('list/', { pageSize: 2 });
      assert.deepEqual(p1.items.map((i) => i.key), ['list/a', 'list/b']);
      assert.ok(p1.nextPageToken);
      const p2 = await store.list('list/', { pageSize: 2, pageToken: p1.nextPageToken });
      assert.deepEqual(p2.items.map((i) => i.key), ['list/c/d']);
      assert.equal(p2.nextPageToken, undefined);
    });

    it('refuses traversal, absolute paths, NUL and empty parts in keys', async () => {
      for (const bad of ['../etc/passwd', 'a/../../b', '/abs/path', 'a//b', 'nul\u0000x', '', 'a/./b', 'back\\slash']) {
        await assert.rejects(store.put(bad, 'x'), (e: unknown) => e instanceof AppError && e.code === 'INVALID_INPUT', `key ${JSON.stringify(bad)}`);
        await assert.rejects(store.get(bad), (e: unknown) => e instanceof AppError && e.code === 'INVALID_INPUT');
      }
    });

    it('content-addressed puts are idempotent', async () => {
      const data = Buffer.from('immutable artifact');
      const first = await putContentAddressed(store, 'blobs', data, '.bin');
      const second = await putContentAddressed(store, 'blobs', data, '.bin');
      assert.equal(first.sha256, sha256Hex(data));
      assert.equal(first.key, second.key);
      assert.equal(first.existed, false);
      assert.equal(second.existed, true);
      assert.deepEqual(await store.get(first.key), data);
    });

    it('touch renews the modified time (kept in list and stat); a missing key is NOT_FOUND', async () => {
      await store.put('touch/x.json', '{}', 'application/json');
      const before = (await store.stat('touch/x.json'))!.modified;
      // S3 keeps whole seconds.
      await new Promise((r) => setTimeout(r, 1100));
      await store.touch('touch/x.json');
      const after = await store.stat('touch/x.json');
      assert.ok(after!.modified > before, `${after!.modified} > ${before}`);
      assert.equal((await store.get('touch/x.json')).toString(), '{}', 'the bytes stay');
      const listed = (await store.list('touch/')).items[0]!;
      assert.equal(listed.modified, after!.modified);
      await assert.rejects(store.touch('touch/none'), (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND');
    });

    it('ping answers true', async () => {
      assert.equal(await store.ping(), true);
    });
  });
}
