import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { migrateToLatest, type Database } from '../../src/core/db/index.js';
import { AuditLog } from '../../src/core/audit/index.js';
import { ApiKeyStore } from '../../src/core/auth/index.js';
import { AppError } from '../../src/core/errors.js';
import type { Fixture } from './object-store.contract.js';

/** The relational store contract (migrations, audit chain, API keys), run on SQLite and PostgreSQL. */
export function describeDatabaseContract(name: string, make: () => Promise<Fixture<Database> | null>): void {
  describe(`Database contract: ${name}`, () => {
    let fx: Fixture<Database> | null;
    let database: Database;
    before(async () => {
      fx = await make();
      if (fx) database = fx.value;
    });
    after(async () => fx?.cleanup());
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (fx ? fn() : t.skip(`${name} unavailable`)));

    it('migrations ran and re-running them is a no-op', async () => {
      assert.deepEqual(await migrateToLatest(database), []);
      assert.equal(await database.ping(), true);
    });

    it('bigint columns come back as numbers', async () => {
      const now = Date.now();
      await database.db.insertInto('api_keys').values({ id: 'n1', name: 'n', key_hash: 'h-n1', role: 'viewer', created_at: now }).execute();
      const row = await database.db.selectFrom('api_keys').select('created_at').where('id', '=', 'n1').executeTakeFirstOrThrow();
      assert.equal(row.created_at, now);
      assert.equal(typeof row.created_at, 'number');
    });

    it('audit log chains records, filters them and verifies the chain', async () => {
      const audit = new AuditLog(database);
      audit.record({ actor: 'alice', action: 'model.promote', resource: 'model:pneumonia/1', details: { stage: 'Production' } });
      audit.record({ actor: 'bob', action: 'data.ingest', resource: 'image:abc' });
      await audit.append({ actor: 'alice', action: 'prediction.create', resource: 'prediction:1', requestId: 'req-1' });
      const all = await audit.query();
      assert.equal(all.items.length, 3);
      assert.equal(all.items[0]!.action, 'prediction.create');
      assert.equal(all.items[0]!.prevHash, all.items[1]!.hash);
      const alice = await audit.query({ actor: 'alice' });
      assert.equal(alice.items.length, 2);
      const page = await audit.query({ pageSize: 2 });
      assert.equal(page.items.length, 2);
      const rest = await audit.query({ pageSize: 2, pageToken: page.nextPageToken });
      assert.equal(rest.items.length, 1);
      assert.deepEqual(await audit.verify(), { ok: true, checked: 3 });
    });

    it('concurrent appends from two writers keep one unbroken chain', async () => {
      const a = new AuditLog(database);
      const b = new AuditLog(database);
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append({ actor: 'w', action: 'x', resource: `r${i}` })));
      const v = await a.verify();
      assert.equal(v.ok, true, v.reason);
    });

    it('verify finds a record altered directly in the database', async () => {
      const audit = new AuditLog(database);
      const { items } = await audit.query({ action: 'data.ingest' });
      const target = items[0]!;
      await sql`update audit_log set actor = ${'mallory'} where seq = ${target.seq}`.execute(database.db);
      const v = await audit.verify();
      assert.equal(v.ok, false);
      assert.equal(v.firstBrokenSeq, target.seq);
      await sql`update audit_log set actor = ${target.actor} where seq = ${target.seq}`.execute(database.db);
      assert.equal((await audit.verify()).ok, true);
    });

    it('API keys are stored hashed, resolve to a role, and can be revoked', async () => {
      const keys = new ApiKeyStore(database);
      const { key, info } = await keys.create('ci', 'ml-engineer');
      const rows = await database.db.selectFrom('api_keys').selectAll().execute();
      assert.ok(!JSON.stringify(rows).includes(key), 'the plain key must not be stored');
      assert.equal((await keys.resolve(key))?.role, 'ml-engineer');
      assert.equal(await keys.resolve('xk_wrong'), null);
      await keys.revoke(info.id);
      assert.equal(await keys.resolve(key), null);
      await assert.rejects(keys.revoke('nope'), (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND');
      await assert.rejects(keys.create('x', 'root' as never), (e: unknown) => e instanceof AppError && e.code === 'INVALID_INPUT');
    });
  });
}
