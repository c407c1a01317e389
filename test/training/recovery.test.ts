import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { INSTALL_COMMAND } from '../../src/training/runner/index.js';
import { KyselyTrainingStore } from '../../src/training/store/training-store.js';
import { jobRecord, openTraining, waitForJob, writeExport } from './helpers.js';

const NO_PYTHON = { XRAY_PYTHON: '/nonexistent/bin/python3' };

/** A pid that certainly belongs to no process any more. */
function deadPid(): number {
  const child = spawnSync('true');
  return child.pid;
}


describe('without a Python that has torch', () => {
  test('the platform starts and POST /train answers TRAINER_RUNTIME_MISSING with the install command', async (t) => {
    const h = await openTraining(NO_PYTHON);
    t.after(() => h.close());
    const health = await h.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200);
    const dir = await writeExport(path.join(h.home, 'ds'), { train: 2, val: 2 });
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_dir: dir, model: 'compact_cnn', hyperparameters: { epochs: 1 } } });
    assert.equal(res.statusCode, 503);
    const body = res.json();
    assert.equal(body.error.code, 'TRAINER_RUNTIME_MISSING');
    assert.ok(body.error.message.includes(INSTALL_COMMAND), body.error.message);
    const runtime = (await h.app.inject({ method: 'GET', url: '/train/runtime' })).json();
    assert.equal(runtime.available, false);
    assert.match(runtime.error, /apt-get install/);
    const list = (await h.app.inject({ method: 'GET', url: '/train' })).json();
    assert.deepEqual(list.jobs, [], 'nothing was queued');
  });

  test('bad requests are refused before anything is queued', async (t) => {
    const h = await openTraining(NO_PYTHON);
    t.after(() => h.close());
    const cases: [unknown, number, string][] = [
      [{ model: 'compact_cnn' }, 400, 'INVALID_INPUT'], // no dataset
      [{ dataset_dir: '/etc', model: 'compact_cnn' }, 400, 'INVALID_INPUT'], // outside the allowed roots
      [{ dataset_version: 'f'.repeat(64), model: 'compact_cnn' }, 404, 'NOT_FOUND'],
      [{ dataset_version: 'x', model: 'vgg16' }, 400, 'INVALID_INPUT'],
      [{ dataset_version: 'x', hyperparameters: { epoch: 3 } }, 400, 'INVALID_INPUT'], // typo: strict schema
      [{ dataset_version: 'x', hyperparameters: { lr: -1 } }, 400, 'INVALID_INPUT'],
    ];
    for (const [payload, status, code] of cases) {
      const res = await h.app.inject({ method: 'POST', url: '/train', payload: payload as object });
      assert.equal(res.statusCode, status, `${JSON.stringify(payload)} → ${res.body}`);
      assert.equal(res.json().error.code, code);
    }
    assert.equal((await h.app.inject({ method: 'GET', url: '/train/t-nothere1-000000' })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'GET', url: '/train/..%2F..%2Fetc' })).statusCode, 400);
    assert.equal((await h.app.inject({ method: 'POST', url: '/train/t-nothere1-000000/resume' })).statusCode, 404);
  });
});

describe('restart recovery', () => {
  test('a running job whose worker is gone becomes interrupted; a lost queue entry is re-queued', async (t) => {
    const first = await openTraining(NO_PYTHON);
    const store = new KyselyTrainingStore(first.platform.database);
    const orphan = jobRecord({
      state: 'running',
      attempt: 1,
      workerHost: hostname(),
      workerPid: deadPid(),
      ownerPid: deadPid(),
      heartbeatAt: Date.now(),
      lastCheckpoint: { epoch: 3, step: 0, path: '/gone/last.pt', attempt: 1 },
    });
    const stale = jobRecord({ state: 'running', attempt: 1, workerHost: 'another-host', workerPid: 1, heartbeatAt: Date.now() - 10 * 60_000 });
    const alive = jobRecord({ state: 'running', attempt: 1, workerHost: 'another-host', workerPid: 1, heartbeatAt: Date.now() });
    // Another replica on this host whose worker has exited while it stores the artifacts: its service process lives.
    const finishing = jobRecord({ state: 'running', attempt: 1, workerHost: hostname(), workerPid: deadPid(), ownerPid: process.ppid, heartbeatAt: Date.now() });
    const datasetDir = await writeExport(path.join(first.home, 'ds'), { train: 2, val: 2 });
    const lost = jobRecord({ state: 'queued', queueJobId: randomUUID(), datasetDir, createdAt: Date.now() - 30_000 });
    // Two more lost entries, created later: they go back on the queue after it, oldest first (listings are newest first).
    const later = [jobRecord({ state: 'queued', queueJobId: randomUUID(), datasetDir, createdAt: Date.now() - 20_000 }), jobRecord({ state: 'queued', queueJobId: randomUUID(), datasetDir, createdAt: Date.now() - 10_000 })];
    for (const j of [orphan, stale, alive, finishing, later[1]!, lost, later[0]!]) await store.createJob(j);
    await first.stop();

    const h = await openTraining(NO_PYTHON, first.home);
    t.after(() => h.close());
    const get = async (id: string) => (await h.app.inject({ method: 'GET', url: `/train/${id}` })).json();
    const o = await get(orphan.id);
    assert.equal(o.state, 'interrupted');
    assert.match(o.error, /resume/);
    assert.deepEqual(o.last_checkpoint, { epoch: 3, step: 0, attempt: 1, stored: false });
    assert.equal((await get(stale.id)).state, 'interrupted', 'a job without a heartbeat for minutes is orphaned');
    assert.equal((await get(alive.id)).state, 'running', 'a job another live replica runs is left alone');
    assert.equal((await get(finishing.id)).state, 'running', 'a job whose worker exited is left to its live service process on this host');
    const audit = await h.platform.audit.query({ action: 'training.interrupted' });
    assert.deepEqual(audit.items.map((a) => a.resource).sort(), [`training-job:${orphan.id}`, `training-job:${stale.id}`].sort());

    // The lost queued job was handed to the queue again; with no runtime its attempt fails, saying why.
    const failed = await waitForJob(h.app, lost.id, (j) => j.state === 'failed', 20_000);
    assert.match(failed.error, /TRAINER_RUNTIME_MISSING|no Python with PyTorch/);
    assert.equal(failed.attempt, 1);
    const finished = new Map<string, number>();
    for (const j of [lost, ...later]) finished.set(j.id, Date.parse((await waitForJob(h.app, j.id, (x) => x.state === 'failed', 20_000)).finished_at as string));
    const byFinish = [...finished].sort((a, b) => a[1] - b[1]);
    assert.ok(byFinish[0]![1] < byFinish[1]![1] && byFinish[1]![1] < byFinish[2]![1], `distinct finish times: ${JSON.stringify(byFinish)}`);
    assert.deepEqual(byFinish.map(([id]) => id), [lost.id, later[0]!.id, later[1]!.id], 're-queued oldest first');

    // Resuming needs the runtime too.
    const res = await h.app.inject({ method: 'POST', url: `/train/${orphan.id}/resume` });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'TRAINER_RUNTIME_MISSING');
    // Cancelling an interrupted job is a conflict.
    assert.equal((await h.app.inject({ method: 'DELETE', url: `/train/${orphan.id}` })).statusCode, 409);
  });
});
