/**
 * The alert store on both engines: one active alert per fingerprint, kept by the database itself
 * (index alerts_one_active), so replicas raising the same alert at once bump one row; the
 * migration that adds the index first resolves duplicates left from before.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Migrator, type Migration } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/core/db/index.js';
import { isUniqueViolation } from '../../src/core/db/database.js';
import { MIGRATIONS } from '../../src/core/db/migrations/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { SqlAlertStore } from '../../src/monitoring/store/alert-store.js';
import { engineGate, postgresReachable, POSTGRES_URL, tempHome, uniqueName } from '../helpers/engines.js';

interface Engine {
  /** Opens another handle on the same database (a second replica). */
  open(migrate?: boolean): Promise<Database>;
  cleanup(): Promise<void>;
}

const raise = (fingerprint: string, time: number, severity: 'warning' | 'critical' = 'warning') => ({
  fingerprint,
  rule: 'drift',
  model: 'm',
  version: '1',
  severity,
  summary: `drift at ${time}`,
  details: null,
  time,
});

function alertRow(id: string, fingerprint: string, status: string, firstSeen: number) {
  return {
    id,
    fingerprint,
    rule: 'drift',
    model_name: 'm',
    model_version: '1',
    severity: 'warning',
    status,
    summary: id,
    details: null,
    occurrences: 1,
    first_seen: firstSeen,
    last_seen: firstSeen,
    acknowledged_by: null,
    acknowledged_at: null,
    resolved_by: null,
    resolved_at: null,
  };
}

function describeAlertStore(name: string, make: () => Promise<Engine | null>, concurrentReplicas: boolean): void {
  describe(`alert store: ${name}`, () => {
    let engine: Engine | null = null;
    let database: Database;
    let store: SqlAlertStore;
    before(async () => {
      engine = await make();
      if (!engine) return;
      database = await engine.open();
      store = new SqlAlertStore(database);
    });
    after(async () => {
      if (!engine) return;
      await database.close();
      await engine.cleanup();
    });
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (engine ? fn() : t.skip(`${name} unavailable`)));

    it('raising an active fingerprint again bumps it; after resolve a new alert opens', async () => {
      const first = await store.raise(raise('fp-seq', 1));
      const again = await store.raise(raise('fp-seq', 2, 'critical'));
      assert.equal(first.created, true);
      assert.equal(again.created, false);
      assert.equal(again.alert.id, first.alert.id);
      assert.equal(again.alert.occurrences, 2);
      assert.equal(again.alert.severity, 'critical');
      await store.resolve(first.alert.id, 'tester', 3);
      const reopened = await store.raise(raise('fp-seq', 4));
      assert.equal(reopened.created, true);
      assert.notEqual(reopened.alert.id, first.alert.id);
    });

    it('the database refuses a second active alert with the same fingerprint', async () => {
      await database.db.insertInto('alerts').values(alertRow('direct-1', 'fp-direct', 'open', 1)).execute();
      await assert.rejects(database.db.insertInto('alerts').values(alertRow('direct-2', 'fp-direct', 'acknowledged', 2)).execute(), (err) => isUniqueViolation(err));
      // Resolved ones may repeat.
      await database.db.insertInto('alerts').values(alertRow('direct-3', 'fp-direct', 'resolved', 3)).execute();
      await database.db.insertInto('alerts').values(alertRow('direct-4', 'fp-direct', 'resolved', 4)).execute();
    });

    if (concurrentReplicas) {
      it('two replicas raising the same alert at once bump one row', async () => {
        const other = await engine!.open(false);
        try {
          const replicas = [store, new SqlAlertStore(other)];
          const results = await Promise.all(Array.from({ length: 16 }, (_, i) => replicas[i % 2]!.raise(raise('fp-race', 100 + i))));
          assert.equal(results.filter((r) => r.created).length, 1, 'exactly one raise opened the alert');
          const active = await store.active('fp-race');
          assert.equal(active?.occurrences, 16);
          const rows = await database.db.selectFrom('alerts').select('id').where('fingerprint', '=', 'fp-race').execute();
          assert.equal(rows.length, 1);
        } finally {
          await other.close();
        }
      });
    }
  });

  test(`migration 0501 resolves active duplicates before adding the index: ${name}`, async (t) => {
    const fresh = await make();
    if (!fresh) return t.skip(`${name} unavailable`);
    const db = await fresh.open(false);
    try {
      const { '0501-alerts-one-active': _, ...before0501 } = MIGRATIONS;
      const migrator = new Migrator({
        db: db.db,
        provider: { getMigrations: async (): Promise<Record<string, Migration>> => before0501 },
        allowUnorderedMigrations: true,
        ...(db.schema ? { migrationTableSchema: db.schema } : {}),
      });
      const { error } = await migrator.migrateToLatest();
      assert.equal(error, undefined);
      await db.db
        .insertInto('alerts')
        .values([alertRow('old', 'fp-dup', 'open', 1), alertRow('newer', 'fp-dup', 'acknowledged', 5), alertRow('other', 'fp-other', 'open', 2)])
        .execute();
      assert.deepEqual(await migrateToLatest(db), ['0501-alerts-one-active']);
      const rows = await db.db.selectFrom('alerts').select(['id', 'status', 'resolved_by']).orderBy('id').execute();
      assert.deepEqual(
        rows.map((r) => [r.id, r.status, r.resolved_by]),
        [
          ['newer', 'acknowledged', null],
          ['old', 'resolved', 'system:deduplicated'],
          ['other', 'open', null],
        ],
      );
    } finally {
      await db.close();
      await fresh.cleanup();
    }
  });
}

describeAlertStore(
  'SQLite (embedded)',
  async () => {
    const home = tempHome();
    const url = `sqlite:${path.join(home.dir, 'alerts.db')}`;
    return { open: (migrate = true) => openDatabase(url, { migrate }), cleanup: async () => home.cleanup() };
  },
  // One process owns an embedded database; the store serialises its own raises.
  false,
);

describeAlertStore(
  'PostgreSQL (scale)',
  async () => {
    if (!(await engineGate('PostgreSQL', await postgresReachable()))) return null;
    const schema = uniqueName('alerts');
    return { open: (migrate = true) => openDatabase(POSTGRES_URL, { schema, migrate }), cleanup: () => dropPostgresSchema(POSTGRES_URL, schema) };
  },
  true,
);
