import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { generateChestXray, generateDataset } from '../../src/core/imaging/index.js';
import { POSTGRES_URL, REDIS_URL, engineGate, postgresReachable, uniqueName } from '../helpers/engines.js';
import { form, openPipeline, waitForImport, type Pipeline } from './helpers.js';

async function importAndVersion(p: Pipeline, dataset: string): Promise<{ id: string; created: boolean; again: string }> {
  const res = await p.app.inject({ method: 'POST', url: '/import', payload: { path: dataset } });
  assert.equal(res.statusCode, 202, res.body);
  const status = await waitForImport(p.app, res.json().job_id);
  assert.equal(status.state, 'completed', status.error);
  assert.equal(status.rejected, 0);
  const body = { name: 'engines', val_fraction: 0.2, test_fraction: 0.1, seed: 3, preprocessing: { size: 64 } };
  const first = (await p.app.inject({ method: 'POST', url: '/version/create', payload: body })).json();
  const again = (await p.app.inject({ method: 'POST', url: '/version/create', payload: body })).json();
  return { id: first.version.id, created: first.created, again: again.version.id };
}

test('PostgreSQL: the same images and seed give the same version id as on SQLite', async (t) => {
  if (!(await engineGate('PostgreSQL', await postgresReachable()))) return t.skip('PostgreSQL not reachable');
  const data = mkdtempSync(path.join(tmpdir(), 'xray-dp-pg-data-'));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  await generateDataset(path.join(data, 'set'), { perClass: 6, seed: 21, size: 128 });

  const schema = uniqueName('dp');
  const pg = await openPipeline({ XRAY_DATABASE_URL: POSTGRES_URL, XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: schema, XRAY_IMPORT_ROOT: data }, { schema });
  t.after(async () => {
    await pg.close();
    await dropPostgresSchema(POSTGRES_URL, schema);
  });
  const lite = await openPipeline({ XRAY_IMPORT_ROOT: data });
  t.after(() => lite.close());

  const onPg = await importAndVersion(pg, 'set');
  const onLite = await importAndVersion(lite, 'set');
  assert.equal(onPg.created, true);
  assert.equal(onPg.again, onPg.id);
  assert.equal(onPg.id, onLite.id, 'version ids agree across engines');

  // Label conflicts, paging and validation on PostgreSQL.
  const png = await generateChestXray({ seed: 99, size: 128 });
  for (const label of ['NORMAL', 'PNEUMONIA']) {
    await pg.app.inject({ method: 'POST', url: '/ingest', payload: form({ label }, [{ name: 'c.png', bytes: png }]) });
  }
  const report = (await pg.app.inject({ method: 'GET', url: '/validate' })).json();
  assert.equal(report.summary.label_conflicts, 1);
  const page1 = (await pg.app.inject({ method: 'GET', url: '/images?page_size=5' })).json();
  const page2 = (await pg.app.inject({ method: 'GET', url: `/images?page_size=5&page_token=${page1.next_page_token}` })).json();
  assert.equal(page1.items.length, 5);
  assert.ok(page2.items[0].hash > page1.items[4].hash);
  const listed = (await pg.app.inject({ method: 'GET', url: '/versions?page_size=1' })).json();
  assert.equal(listed.items[0].id, onPg.id);
});
