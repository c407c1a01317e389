import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backupsToKeep, pruneBackups, type BackupManifest } from '../../../src/core/backup/index.js';
import { openObjectStore } from '../../../src/core/objects/index.js';
import { tempHome } from '../../helpers/engines.js';

function manifest(id: string, created: string, objects: string[]): BackupManifest {
  return {
    format: 'xray-backup/1',
    id,
    created_at: created,
    platform_version: 't',
    schema_version: null,
    engine: 'sqlite',
    database: { key: `backups/${id}/database.sqlite`, sha256: '0'.repeat(64), bytes: 1 },
    tables: {},
    objects: objects.map((key) => ({ key, sha256: '0'.repeat(64), bytes: 1 })),
    copied: 0,
  };
}

describe('backup retention', () => {
  // Two a day for ten days (2026-11-20 … 11-29).
  const all = Array.from({ length: 20 }, (_, i) => {
    const day = 20 + (i >> 1);
    return manifest(`202611${day}T${i % 2 ? '18' : '06'}0000Z-00000${i % 10}`, `2026-11-${day}T${i % 2 ? '18' : '06'}:00:00.000Z`, [`k${i}`]);
  });

  test('keeps the newest of each of the last N days and M ISO weeks, and always the newest', () => {
    const keep = backupsToKeep(all, { daily: 3, weekly: 2 });
    const days = [...keep].map((id) => all.find((m) => m.id === id)!.created_at).sort();
    // Daily: 11-29, 11-28, 11-27 (their 18:00 backups); weekly: week of 11-23..29 → 11-29, week 11-16..22 → 11-22 18:00.
    assert.deepEqual(days, ['2026-11-22T18:00:00.000Z', '2026-11-27T18:00:00.000Z', '2026-11-28T18:00:00.000Z', '2026-11-29T18:00:00.000Z']);
    assert.deepEqual([...backupsToKeep(all, { daily: 0, weekly: 0 })], [all[19]!.id], 'the newest backup is never pruned');
  });

  test('prune deletes the other backups and only the objects no kept backup lists', async () => {
    const dir = tempHome('xray-retention-');
    const target = await openObjectStore(`file:${dir.dir}`);
    try {
      const a = manifest('20261120T060000Z-000001', '2026-11-20T06:00:00.000Z', ['shared', 'old-only']);
      const b = manifest('20261129T060000Z-000002', '2026-11-29T06:00:00.000Z', ['shared', 'new-only']);
      for (const m of [a, b]) {
        await target.put(m.database.key, 'db');
        await target.put(`backups/${m.id}/manifest.json`, JSON.stringify(m));
      }
      for (const k of ['shared', 'old-only', 'new-only']) await target.put(`objects/${k}`, k);
      const r = await pruneBackups(target, { daily: 1, weekly: 0 });
      assert.deepEqual(r, { removed: [a.id], objectsRemoved: 1 });
      assert.equal(await target.exists(`backups/${a.id}/manifest.json`), false);
      assert.equal(await target.exists(a.database.key), false);
      assert.equal(await target.exists('objects/old-only'), false);
      assert.equal(await target.exists('objects/shared'), true, 'an object a kept backup lists stays');
      assert.equal(await target.exists('objects/new-only'), true);
    } finally {
      await target.close();
      dir.cleanup();
    }
  });
});
