/**
 * Backups from the monitoring service: the admin route (POST /backups → 202 job → the backup in
 * GET /backups, audited under the caller; viewers refused; one at a time) and the schedule (once
 * per cluster through the database claim, retention after each run), on SQLite and fs objects.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupKey, listBackups, openBackupTarget, verifyBackup } from '../../src/core/backup/index.js';
import { ClusterSchedule } from '../../src/core/db/cluster-schedule.js';
import { loadConfig } from '../../src/core/config/index.js';
import { BackupService } from '../../src/monitoring/service/backup-service.js';
import { startMonitoring, type Harness } from './helpers.js';

const KEY = 'backup-route-test-key-0123456789abcdef';

describe('POST /backups and GET /backups (admin)', () => {
  let h: Harness;
  let target: string;
  let admin: string;
  let viewer: string;

  before(async () => {
    target = mkdtempSync(path.join(tmpdir(), 'xray-backup-route-'));
    process.env.XRAY_BACKUP_KEY = KEY;
    h = await startMonitoring({ XRAY_AUTH: 'on', XRAY_BACKUP_TARGET: `file:${target}`, XRAY_BACKUP_INTERVAL_H: '12', XRAY_BACKUP_KEEP_DAILY: '3', XRAY_BACKUP_KEEP_WEEKLY: '0' });
    admin = (await h.platform.keys.create('ops-admin', 'admin')).key;
    viewer = (await h.platform.keys.create('ward-viewer', 'viewer')).key;
    await h.platform.objects.put('data/images/ab/abcdef.png', Buffer.from('not really a png, but bytes to back up'));
  });
  after(async () => {
    await h?.close();
    delete process.env.XRAY_BACKUP_KEY;
    rmSync(target, { recursive: true, force: true });
  });

  const call = (method: 'GET' | 'POST', url: string, key?: string) => h.app.inject({ method, url, headers: key ? { authorization: `Bearer ${key}` } : {} });

  test('viewers and anonymous callers are refused with the error envelope', async () => {
    const anonymous = await call('POST', '/backups');
    assert.equal(anonymous.statusCode, 401, anonymous.body);
    const denied = await call('POST', '/backups', viewer);
    assert.equal(denied.statusCode, 403, denied.body);
    assert.equal(typeof denied.json().error.code, 'string');
    assert.equal((await call('GET', '/backups', viewer)).statusCode, 403);
  });

  test('an admin starts a backup (202, a job), follows it to the backup, which is listed, verifies and is audited', async () => {
    const started = await call('POST', '/backups', admin);
    assert.equal(started.statusCode, 202, started.body);
    const job = started.json();
    assert.equal(job.status, 'running');
    assert.equal(job.trigger, 'api');
    assert.equal(job.actor, 'ops-admin');
    assert.equal(job.target, `file:${target}`);

    let done = job;
    for (let i = 0; i < 200 && done.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      done = (await call('GET', `/backups/jobs/${job.id}`, admin)).json();
    }
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.backup.objects, 1);
    assert.equal(done.backup.engine, 'sqlite');
    assert.ok(done.backup.rows > 0 && done.finished_at >= done.started_at, JSON.stringify(done));

    const list = await call('GET', '/backups', admin);
    assert.equal(list.statusCode, 200, list.body);
    const body = list.json();
    assert.equal(body.target, `file:${target}`);
    assert.deepEqual(body.schedule, { interval_h: 12, keep_daily: 3, keep_weekly: 0 });
    assert.deepEqual(body.items.map((b: { id: string }) => b.id), [done.backup.id]);

    const store = await openBackupTarget(h.platform.config, `file:${target}`);
    try {
      const report = await verifyBackup(store, done.backup.id, { key: backupKey(h.platform.config, false) });
      assert.ok(report.ok, JSON.stringify(report.checks));
    } finally {
      await store.close();
    }
    const audit = await h.platform.audit.query({ action: 'backup.create', pageSize: 10 });
    assert.equal(audit.items.length, 1);
    assert.equal(audit.items[0]!.actor, 'ops-admin');
    assert.equal(audit.items[0]!.resource, `backup:${done.backup.id}`);
    assert.equal(audit.items[0]!.service, 'monitoring');
  });

  test('one backup at a time: a second POST while one runs is 409; an unknown job is 404', async () => {
    const [a, b] = await Promise.all([call('POST', '/backups', admin), call('POST', '/backups', admin)]);
    const codes = [a.statusCode, b.statusCode].sort();
    assert.deepEqual(codes, [202, 409], `${a.body} ${b.body}`);
    const conflict = a.statusCode === 409 ? a : b;
    assert.equal(conflict.json().error.code, 'CONFLICT');
    const missing = await call('GET', '/backups/jobs/no-such-job', admin);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error.code, 'NOT_FOUND');
  });
});

describe('scheduled backups', () => {
  let h: Harness;
  let target: string;

  before(async () => {
    target = mkdtempSync(path.join(tmpdir(), 'xray-backup-schedule-'));
    h = await startMonitoring({ XRAY_BACKUP_KEY: KEY });
    await h.platform.objects.put('data/images/cd/cdef01.png', Buffer.from('image bytes'));
  });
  after(async () => {
    await h?.close();
    rmSync(target, { recursive: true, force: true });
  });

  test('off by default: no target, no schedule', async () => {
    assert.equal(h.platform.config.backup.target, '');
    const res = await h.app.inject({ method: 'GET', url: '/backups' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().schedule, null);
    assert.equal(res.json().target, `file:${path.join(h.home, 'backups')}`);
  });

  test('two replicas tick: one backup per interval across the cluster, retention after each', async () => {
    const HOUR = 3_600_000;
    const replica = () =>
      new BackupService({ platform: h.platform, scheduledTarget: `file:${target}`, intervalMs: HOUR, keep: { daily: 1, weekly: 0 }, schedule: new ClusterSchedule(h.platform.database, 'test.backup') });
    const [r1, r2] = [replica(), replica()];
    const t0 = Date.now();
    const first = await Promise.all([r1.tick(t0), r2.tick(t0)]);
    assert.equal(first.filter(Boolean).length, 1, 'exactly one replica takes the due backup');
    const job1 = first.find(Boolean)!;
    assert.equal(job1.status, 'succeeded', JSON.stringify(job1.error));
    assert.equal(job1.trigger, 'schedule');

    assert.deepEqual(await Promise.all([r1.tick(t0 + HOUR / 2), r2.tick(t0 + HOUR / 2)]), [null, null], 'not due within the interval');

    const second = await Promise.all([r2.tick(t0 + HOUR + 1), r1.tick(t0 + HOUR + 1)]);
    assert.equal(second.filter(Boolean).length, 1);
    const job2 = second.find(Boolean)!;
    assert.equal(job2.status, 'succeeded', JSON.stringify(job2.error));
    // Both backups are from today: keeping the newest of 1 day removes the first.
    assert.deepEqual(job2.pruned?.removed, [job1.manifest!.id]);
    const store = await openBackupTarget(h.platform.config, `file:${target}`);
    try {
      assert.deepEqual((await listBackups(store)).map((m) => m.id), [job2.manifest!.id]);
    } finally {
      await store.close();
    }
    const creates = await h.platform.audit.query({ action: 'backup.create', pageSize: 10 });
    assert.deepEqual(creates.items.map((r) => [r.actor, r.resource]), [['monitoring', `backup:${job2.manifest!.id}`], ['monitoring', `backup:${job1.manifest!.id}`]]);
    assert.equal((await h.platform.audit.query({ action: 'backup.prune', pageSize: 10 })).items.length, 1);
    await Promise.all([r1.stop(), r2.stop()]);
  });

  test('a target that is not file: or s3: is a configuration error', () => {
    assert.throws(() => loadConfig({ XRAY_HOME: h.home, XRAY_BACKUP_TARGET: 'ftp://backups.example/x' }), /XRAY_BACKUP_TARGET: 'ftp:\/\/backups\.example\/x' has an unknown scheme/);
  });
});
