import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClusterSchedule } from '../../../src/core/db/cluster-schedule.js';
import { openDatabase, type Database } from '../../../src/core/db/index.js';
import { dropPostgresSchema } from '../../../src/core/db/postgres.js';
import { engineGate, POSTGRES_URL, postgresReachable, tempHome, uniqueName } from '../../helpers/engines.js';

// Two replicas = two connections to one database; the claim is what makes a job run once.

async function replicas(engine: 'sqlite' | 'postgres'): Promise<{ a: Database; b: Database; close(): Promise<void> } | null> {
  if (engine === 'sqlite') {
    const home = tempHome('xray-sched-');
    const url = `sqlite:${path.join(home.dir, 'x.db')}`;
    const a = await openDatabase(url);
    const b = await openDatabase(url);
    return { a, b, close: async () => (await a.close(), await b.close(), home.cleanup()) };
  }
  if (!(await engineGate('PostgreSQL (cluster schedule)', await postgresReachable()))) return null;
  const schema = uniqueName('sched');
  const a = await openDatabase(POSTGRES_URL, { schema });
  const b = await openDatabase(POSTGRES_URL, { schema });
  return { a, b, close: async () => (await a.close(), await b.close(), await dropPostgresSchema(POSTGRES_URL, schema)) };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`ClusterSchedule on ${engine}: once per interval across replicas`, () => {
    const closers: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of closers) await c();
    });

    test('concurrent ticks of two replicas: one runs each due interval, windows follow each other', async (t) => {
      const r = await replicas(engine);
      if (!r) return t.skip('PostgreSQL unreachable');
      closers.push(r.close);
      const minute = 60_000;
      const sa = new ClusterSchedule(r.a, 'drift');
      const sb = new ClusterSchedule(r.b, 'drift');
      const t0 = 1_800_000_000_000;
      const won: (number | null)[][] = [];
      for (const now of [t0, t0 + 10_000, t0 + minute, t0 + minute + 1, t0 + 3 * minute]) {
        won.push(await Promise.all([sa.claim(now, minute, now - minute), sb.claim(now, minute, now - minute)]));
      }
      const winners = won.map((pair) => pair.filter((x) => x !== null).length);
      assert.deepEqual(winners, [1, 0, 1, 0, 1], `exactly one replica runs each due interval: ${JSON.stringify(won)}`);
      const sinces = won.map((pair) => pair.find((x) => x !== null) ?? null).filter((x) => x !== null);
      assert.deepEqual(sinces, [t0 - minute, t0, t0 + minute], 'each window starts where the previous run was');
    });
  });
}
