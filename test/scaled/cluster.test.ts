/**
 * The scaled platform on several hosts (issue 16 items 5-6): network namespaces, real PostgreSQL,
 * Redis, s3rver and NGINX, replicas started with `xray serve` (see harness.ts). Every client call
 * goes through NGINX. Each scenario prints its figure. Slow: CI runs it as root; elsewhere it skips
 * loudly when not root or a tool is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Agent } from 'undici';
import { generateChestXray, generateDataset } from '../../src/core/imaging/index.js';
import { findPython } from '../../src/training/runner/python.js';
import { ScaledCluster, scaledGate, type Replica } from './harness.js';
import { api, authFetch, closedLoop, poll, registerTiny, sleep, statusCounts, type Api, type LoadResult } from './client.js';

const run = scaledGate('scaled multi-host suite');
const MODEL = 'pneumonia';

function figure(name: string, value: unknown): void {
  console.log(`[scaled] ${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}

describe('scaled platform behind NGINX on network namespaces', { skip: !run, timeout: 900_000 }, () => {
  let cluster: ScaledCluster;
  let http: Api;
  const images: Buffer[] = [];
  let failed = false;

  const predict = (i: number) =>
    http.raw('/deployment/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(images[i % images.length]!) });

  /** The version each deployment replica serves as the default of MODEL (asked directly, not via NGINX). */
  const served = async (r: Replica): Promise<string | null> => {
    const res = await authFetch(`${r.url}/models`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { models: { name: string; version: string; is_default?: boolean; alias?: string | null }[] };
    const m = body.models.find((x) => x.name === MODEL && x.alias === 'production');
    return m?.version ?? null;
  };

  before(async () => {
    cluster = new ScaledCluster({ env: { XRAY_DRIFT_INTERVAL_MIN: '0.1', XRAY_DRIFT_MIN_ROWS: '2', XRAY_DRIFT_REFERENCE_SIZE: '10' } });
    try {
      const started = Date.now();
      await cluster.start();
      figure('cluster up', `${cluster.replicas.length} replicas + PostgreSQL, Redis, s3rver, NGINX in ${cluster.hosts.length} namespaces, ${((Date.now() - started) / 1000).toFixed(1)} s`);
      http = api(`${cluster.gateway}/api`);
      for (let i = 0; i < 24; i++) images.push(await generateChestXray({ seed: `scaled-${i}`, size: 64, pneumonia: i % 2 === 1 }));
    } catch (err) {
      console.error(cluster.logs());
      await cluster.close();
      throw err;
    }
  });

  after(async () => {
    if (failed) console.error(cluster?.logs());
    await cluster?.close();
  });

  /** A production version served by every replica (scenarios may run alone: --test-name-pattern). */
  const ensureProduction = async (): Promise<string> => {
    const now = await served(cluster.of('deployment')[0]!).catch(() => null);
    if (now) return now;
    const v = await registerTiny(http, MODEL, 0.9);
    await http.post(`/model-registry/models/${MODEL}/stage`, { version: v, stage: 'Production', force: true, reason: 'scaled suite: a production model' }, 200);
    for (const r of cluster.of('deployment')) await poll(`${r.name} serves v${v}`, async () => ((await served(r)) === String(v) ? true : null), 30_000);
    return String(v);
  };

  const scenario = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });

  scenario('the pipeline end to end through NGINX: import → version → train → register → promote → predict → drift → audit', async () => {
    await generateDataset(path.join(cluster.importRoot, 'chest_xray'), { perClass: 8, seed: 4, size: 64, format: 'png', imagesPerPatient: [1, 2] });
    const started = Date.now();
    const { job_id: importId } = await http.post('/data-pipeline/import', { path: 'chest_xray' }, 202);
    const imported = await poll('import', async () => {
      const s = await http.get(`/data-pipeline/import/${importId}`);
      if (s.state === 'failed') throw new Error(`import failed: ${s.error}`);
      return s.state === 'completed' ? s : null;
    }, 120_000, 250);
    assert.equal(imported.ingested, 16, JSON.stringify(imported));
    const { version } = await http.post('/data-pipeline/version/create', { name: 'scaled', val_fraction: 0.3, test_fraction: 0, seed: 5, preprocessing: { size: 32, mode: 'letterbox' } }, 201);

    let modelVersion: number;
    let torch = true;
    await findPython(process.env.XRAY_PYTHON ?? '').catch((err: unknown) => {
      if (process.env.CI) throw new Error(`CI: the training worker runtime is required: ${String(err)}`);
      torch = false;
      process.stderr.write(`\n*** SKIPPING THE TRAINING STEP of the scaled pipeline: ${(err as Error).message}; registering the tiny fixture model instead ***\n`);
    });
    if (torch) {
      const submitted = await http.post(
        '/training/train',
        { dataset_version: version.id, model: 'compact_cnn', input_size: 32, seed: 3, experiment: 'scaled', hyperparameters: { epochs: 1, batch_size: 8, max_train_batches: 2, warmup_epochs: 0, early_stopping_patience: null } },
        202,
      );
      const job = await poll('training', async () => {
        const j = await http.get(`/training/train/${submitted.job_id}`);
        return ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(j.state) ? j : null;
      }, 300_000, 500);
      assert.equal(job.state, 'succeeded', job.error);
      const reg = await http.post(`/training/train/${submitted.job_id}/register`, { name: MODEL }, 201);
      modelVersion = reg.registered.version;
    } else {
      modelVersion = await registerTiny(http, MODEL, 0.9);
    }
    const promoted = await http.post(`/model-registry/models/${MODEL}/stage`, { version: modelVersion, stage: 'Production', force: !torch || undefined, reason: torch ? undefined : 'scaled suite without torch' }, 200);
    assert.equal(promoted.model_version.stage, 'Production');
    for (const r of cluster.of('deployment')) await poll(`${r.name} serves v${modelVersion}`, async () => ((await served(r)) === String(modelVersion) ? true : null), 30_000);

    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await predict(i);
      const body = (await res.json()) as any;
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.deepEqual(body.model, { name: MODEL, version: String(modelVersion) });
      ids.push(body.prediction_id);
    }
    const reference = await http.post('/monitoring/drift/reference', { model: MODEL, version: String(modelVersion), prediction_ids: ids.slice(0, 6) }, 201);
    const report = await http.post('/monitoring/drift/detect', { model: MODEL, version: String(modelVersion), reference_id: reference.id, window: { last_n: 6 }, options: { min_rows: 5 } }, 200);
    assert.ok(['drift', 'no_drift'].includes(report.verdict), report.verdict);

    const audit = await auditOf(http, {});
    const has = (action: string, resource: string) => audit.some((a) => a.action === action && a.resource === resource && a.outcome === 'success');
    assert.ok(has('data.import', `import:${importId}`), 'import audited');
    assert.ok(has('data.version.create', `dataset:${version.id}`), 'version audited');
    assert.ok(has('model.register', `model:${MODEL}/${modelVersion}`), 'registration audited');
    assert.ok(has('model.stage', `model:${MODEL}/${modelVersion}`), 'promotion audited');
    for (const id of ids) assert.ok(has('prediction.create', `prediction:${id}`), `prediction ${id} audited`);
    assert.ok(audit.some((a) => a.action === 'drift.check'), 'drift check audited');
    figure('pipeline end to end', `${((Date.now() - started) / 1000).toFixed(1)} s (training ${torch ? 'real, 1 epoch' : 'SKIPPED: no torch'})`);
  });

  scenario('a promotion reaches every deployment replica within 5 s', async () => {
    const before = await ensureProduction();
    const next = await registerTiny(http, MODEL, 0.95);
    const t0 = Date.now();
    // Forced: the trained version's validation AUC may be higher than the fixture's.
    await http.post(`/model-registry/models/${MODEL}/stage`, { version: next, stage: 'Production', force: true, reason: 'scaled suite: convergence' }, 200);
    const times: Record<string, number> = {};
    await Promise.all(
      cluster.of('deployment').map(async (r) => {
        await poll(`${r.name} serves v${next}`, async () => ((await served(r)) === String(next) ? true : null), 5000, 25);
        times[r.name] = Date.now() - t0;
      }),
    );
    figure('promotion convergence (ms after the stage call answered)', { from: before, to: String(next), ...times });
    // Every replica answers with the new version (asked directly).
    for (const r of cluster.of('deployment')) {
      const res = await authFetch(`${r.url}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(images[0]!) });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as any).model.version, String(next), r.name);
    }
  });

  scenario('cluster-wide model state: a load through NGINX reaches every replica; GET /models on any replica says what all serve', async () => {
    const deployments = cluster.of('deployment');
    const production = await ensureProduction();
    const pinned = await registerTiny(http, MODEL, 0.9);
    const t0 = Date.now();
    const load = await http.post('/deployment/models/load', { name: MODEL, version: String(pinned), default: false }, 200);
    assert.equal(load.version, String(pinned));
    const times: Record<string, number> = {};
    await Promise.all(
      deployments.map(async (r) => {
        await poll(`${r.name} loads v${pinned}`, async () => {
          const body = (await (await authFetch(`${r.url}/models`, { signal: AbortSignal.timeout(2000) })).json()) as { models: { name: string; version: string }[] };
          return body.models.some((m) => m.name === MODEL && m.version === String(pinned)) ? true : null;
        }, 5000, 25);
        times[r.name] = Date.now() - t0;
      }),
    );
    // Any replica, asked directly, reports both replicas converged on {production default, the pinned load}.
    const view = await poll('every replica reports convergence', async () => {
      const v = (await api(deployments[1]!.url).get('/models')).cluster;
      return v?.converged && v.replicas.length === deployments.length ? v : null;
    }, 20_000, 250);
    figure('pinned load convergence (ms after POST /models/load answered)', { ...times, replicas_in_view: view.replicas.length, desired: view.desired.map((d: any) => `${d.version}${d.default ? '*' : ''} (${d.reason})`) });
    assert.deepEqual(view.desired.map((d: any) => d.version).sort(), [production, String(pinned)].sort());
    const unload = await http.post('/deployment/models/unload', { name: MODEL, version: String(pinned) }, 200);
    assert.deepEqual(unload.unloaded, [String(pinned)]);
    for (const r of deployments) {
      await poll(`${r.name} unloads v${pinned}`, async () => {
        const body = (await (await authFetch(`${r.url}/models`)).json()) as { models: { version: string }[] };
        return body.models.some((m) => m.version === String(pinned)) ? null : true;
      }, 5000, 50);
    }
  });

  scenario('kill -9 one deployment replica under 8 closed-loop clients: failures ≤ in flight, none after it is marked down, it rejoins', async () => {
    await ensureProduction();
    const victim = cluster.of('deployment')[0]!;
    const load = closedLoop(8, predict);
    await sleep(3000);
    victim.proc!.signal('SIGKILL');
    await victim.proc!.exited;
    // What was in flight when it died (on either replica: the client cannot tell which holds what).
    const killedAt = Date.now();
    const inFlight = load.inFlight().length;
    await sleep(6000);
    const results = await load.stop();
    const failures = results.filter((r) => r.status !== 200);
    const late = failures.filter((r) => r.start >= killedAt);
    figure('kill -9 under load', { requests: results.length, statuses: statusCounts(results), in_flight_at_kill: inFlight, failures: failures.length, failures_sent_after_death: late.length });
    assert.ok(failures.length <= inFlight, `failures ${failures.length} > in flight ${inFlight}: ${JSON.stringify(failures.slice(0, 3))}`);
    assert.deepEqual(late, [], 'no failure among requests sent after it died');
    assert.ok(results.filter((r) => r.start >= killedAt && r.status === 200).length > 0, 'the other replica kept answering');

    // Restart: the replica rejoins (NGINX retries it after fail_timeout) and answers again through NGINX.
    await cluster.startReplica(victim.name);
    const since = cluster.nginxAccessLog().length;
    const load2 = closedLoop(4, predict);
    try {
      await poll(`${victim.name} serves through NGINX again`, async () => (cluster.nginxAccessLog().slice(since).includes(`"upstream":"${victim.host.address}:8004"`) ? true : null), 40_000, 250);
    } finally {
      const after2 = await load2.stop();
      assert.deepEqual(after2.filter((r) => r.status !== 200).map((r) => r.error), [], 'no failure while it rejoins');
    }
  });

  scenario('rolling SIGTERM restart of every deployment and registry replica under load: 0 failures', async () => {
    await ensureProduction();
    // A new connection to NGINX per request: a graceful NGINX reload closes idle client keep-alive
    // connections, and a client that reuses one at that instant fails its POST — a property of
    // NGINX and the client, not of the replicas under test (clients keeping connections to the
    // gateway should retry such a failure; see docs/DEPLOY.md).
    const fresh = new Agent({ pipelining: 0 });
    const noReuse = { dispatcher: fresh } as unknown as RequestInit;
    const load = closedLoop(8, (i) => http.raw('/deployment/predict', { ...noReuse, method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(images[i % images.length]!) }));
    const reads = closedLoop(2, () => http.raw(`/model-registry/models/${MODEL}`, noReuse));
    const started = Date.now();
    const steps: string[] = [];
    try {
      for (const r of [...cluster.of('deployment'), ...cluster.of('model-registry')]) {
        // As a rollout behind NGINX open source does (no active health checks): out of the
        // upstream first (graceful reload), then SIGTERM at once — requests already sent to it
        // finish during its drain; back in the upstream once it is ready.
        const peers = cluster.of(r.service).map((x) => x.name);
        await cluster.route(r.service, peers.filter((n) => n !== r.name), 0);
        steps.push(`${Date.now() - started} ms: ${r.name} out of the upstream, SIGTERM`);
        await r.proc!.stop('SIGTERM', 30_000);
        steps.push(`${Date.now() - started} ms: ${r.name} exited`);
        const exit = await r.proc!.exited;
        assert.equal(exit.code, 0, `${r.name} exits 0 after its drain: ${JSON.stringify(exit)}\n${r.proc!.log()}`);
        const logAt = cluster.nginxAccessLog().length;
        await cluster.startReplica(r.name);
        steps.push(`${Date.now() - started} ms: ${r.name} ready`);
        await cluster.route(r.service, peers, 0);
        // One by one: the next goes down once NGINX routes to this one again.
        await cluster.waitRouted(r, logAt);
        steps.push(`${Date.now() - started} ms: ${r.name} back in NGINX's rotation`);
      }
    } finally {
      const results = [...(await load.stop()), ...(await reads.stop())];
      await fresh.close();
      const failures = results.filter((r) => r.status !== 200);
      if (failures.length) {
        console.log(failures.slice(0, 20).map((f) => `${f.start - started}..${f.end - started} ms ${f.status}`).join('\n'));
        console.log(cluster.nginxAccessLog().split('\n').filter((l) => /"status":5\d\d/.test(l)).slice(0, 15).join('\n'));
      }
      figure('rolling restart under load', { seconds: Math.round((Date.now() - started) / 1000), requests: results.length, statuses: statusCounts(results), failures: failures.length });
      console.log(steps.map((x) => `[scaled]   ${x}`).join('\n'));
      assert.deepEqual(failures.map((f) => `${f.status} ${f.error}`), []);
    }
  });

  scenario('PostgreSQL stopped for 10 s under load: 503 not 500, no hang, recovers by itself, no answered prediction loses its audit record', async () => {
    await ensureProduction();
    const load = closedLoop(4, predict, 30_000);
    await sleep(2000);
    const stoppedAt = Date.now();
    await cluster.stopPostgres();
    await sleep(10_000);
    await cluster.startPostgres();
    const restartedAt = Date.now();
    // Recovers by itself: a successful prediction after the restart, with no action on the platform.
    await poll('predictions succeed again', async () => (load.results.some((r) => r.start > restartedAt && r.status === 200) ? true : null), 60_000, 200);
    await sleep(1000);
    const results = await load.stop();
    const during = results.filter((r) => r.start >= stoppedAt && r.start < restartedAt);
    const bad = results.filter((r) => r.status !== 200 && r.status !== 503);
    figure('PostgreSQL down 10 s under load', { requests: results.length, statuses: statusCounts(results), during_outage: statusCounts(during), recovered_ms_after_restart: Math.min(...results.filter((r) => r.start > restartedAt && r.status === 200).map((r) => r.end - restartedAt)) });
    assert.deepEqual(bad.map((r) => `${r.status} ${r.error}`), [], 'every failure is a 503 (no 500, no timeout)');
    assert.ok(during.some((r) => r.status === 503), 'requests that need the database were refused with 503 during the outage');
    await assertAudited(http, results);
  });

  scenario('Redis stopped for 10 s: the cache degrades to misses, a queued import resumes, a load made meanwhile reaches every replica by the periodic reconcile', async () => {
    await generateDataset(path.join(cluster.importRoot, 'redis_outage'), { perClass: 30, seed: 9, size: 96, format: 'png', imagesPerPatient: [1, 1] });
    await ensureProduction();
    const pinned = await registerTiny(http, MODEL, 0.9);
    const { job_id: importId } = await http.post('/data-pipeline/import', { path: 'redis_outage' }, 202);
    const load = closedLoop(4, predict, 30_000);
    await sleep(500);
    const stoppedAt = Date.now();
    await cluster.stopRedis();
    // A load made while Redis is down: its event is lost, the other replica gets it from the
    // database at its next reconcile (every 15 s).
    const loadedAt = Date.now();
    await http.post('/deployment/models/load', { name: MODEL, version: String(pinned), default: false }, 200);
    const healed: Record<string, number> = { load_answered: Date.now() - loadedAt };
    const converging = Promise.all(
      cluster.of('deployment').map(async (r) => {
        await poll(`${r.name} converges on the load made during the outage`, async () => {
          const body = (await (await authFetch(`${r.url}/models`, { signal: AbortSignal.timeout(2000) })).json()) as { models: { version: string }[] };
          return body.models.some((m) => m.version === String(pinned)) ? true : null;
        }, 40_000, 100);
        healed[r.name] = Date.now() - loadedAt;
      }),
    );
    await sleep(Math.max(0, 10_000 - (Date.now() - stoppedAt)));
    await cluster.startRedis();
    const restartedAt = Date.now();
    await converging;
    await sleep(3000);
    const results = await load.stop();
    const during = results.filter((r) => r.start >= stoppedAt && r.start < restartedAt);
    const imported = await poll('the import resumes and completes', async () => {
      const s = await http.get(`/data-pipeline/import/${importId}`);
      if (s.state === 'failed') throw new Error(`import failed: ${JSON.stringify(s)}`);
      return s.state === 'completed' ? s : null;
    }, 180_000, 500);
    figure('Redis down 10 s', {
      predictions: results.length,
      statuses: statusCounts(results),
      during_outage: statusCounts(during),
      import: { ingested: imported.ingested, duplicates: imported.duplicates, failed: imported.failed },
      load_during_outage_served_ms: healed,
    });
    await http.post('/deployment/models/unload', { name: MODEL, version: String(pinned) }, 200);
    assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error}`), [], 'predictions are answered without the cache');
    assert.ok(during.length > 0, 'requests were made during the outage');
    assert.equal((imported.ingested ?? 0) + (imported.duplicates ?? 0), 60, JSON.stringify(imported));
    await assertAudited(http, results);
  });

  scenario('two monitoring replicas: one alert per fingerprint, one scheduled drift check per interval', async () => {
    // Drift between bright and dark images, detected by both replicas at once (asked directly).
    const version = await served(cluster.of('deployment')[1]!);
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const image = await generateChestXray({ seed: `drift-${i}`, size: 64, pneumonia: i % 2 === 1, ...(i >= 12 ? { exposure: 0.35 } : {}) });
      const res = await http.raw('/deployment/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(image) });
      ids.push(((await res.json()) as any).prediction_id);
    }
    const reference = await http.post('/monitoring/drift/reference', { model: MODEL, version, prediction_ids: ids.slice(0, 12) }, 201);
    const monitors = cluster.of('monitoring');
    const reports = await Promise.all(
      monitors.map((m) => api(m.url).post('/drift/detect', { model: MODEL, version, reference_id: reference.id, window: { last_n: 12 }, options: { min_rows: 5 } }, 200)),
    );
    assert.ok(reports.every((r) => r.verdict === 'drift'), `both detect drift: ${reports.map((r) => r.verdict)}`);
    const alerts = (await http.get(`/monitoring/alerts?status=active&model=${MODEL}&page_size=1000`)).items.filter((a: any) => a.version === version && /drift/.test(a.rule));
    const byFingerprint = new Map<string, number>();
    for (const a of alerts) byFingerprint.set(a.fingerprint, (byFingerprint.get(a.fingerprint) ?? 0) + 1);
    figure('alerts after two replicas detected the same drift at once', { alerts: alerts.length, fingerprints: byFingerprint.size, occurrences: alerts.map((a: any) => `${a.rule}×${a.occurrences}`) });
    assert.ok(alerts.length > 0, 'a drift alert was raised');
    assert.ok([...byFingerprint.values()].every((n) => n === 1), 'one active alert per fingerprint');

    // Scheduled checks: both replicas tick every XRAY_DRIFT_INTERVAL_MIN (6 s here) while predictions
    // flow; a replica runs a pass only when it wins the interval's claim, so scheduled checks of one
    // version are an interval apart — two replicas each running their own would give pairs close together.
    const since = Date.now();
    const trickle = closedLoop(1, async (i) => {
      await sleep(300);
      return predict(i + Math.floor(Math.random() * 24));
    });
    await sleep(25_000);
    await trickle.stop();
    const scheduled = (await auditOf(http, { action: 'drift.check' }))
      .filter((a) => a.details?.trigger === 'schedule' && a.time >= since && a.details?.model === MODEL && a.details?.version === version)
      .map((a) => a.time as number)
      .sort((a, b) => a - b);
    const gaps = scheduled.slice(1).map((t, i) => t - scheduled[i]!);
    figure('scheduled drift checks of one version in 25 s at a 6 s interval (gaps in ms)', { checks: scheduled.length, gaps });
    assert.ok(scheduled.length >= 2, 'the schedule ran');
    assert.ok(gaps.every((g) => g >= 3000), `no two scheduled checks within one interval: ${gaps}`);
  });
});

async function auditOf(http: Api, filter: { action?: string }): Promise<any[]> {
  const out: any[] = [];
  let token = '';
  do {
    const q = new URLSearchParams({ page_size: '1000', ...(filter.action ? { action: filter.action } : {}), ...(token ? { page_token: token } : {}) });
    const page = await http.get(`/monitoring/audit?${q}`);
    out.push(...page.items);
    token = page.next_page_token ?? '';
  } while (token);
  return out;
}

/** Every answered prediction has its audit record. */
async function assertAudited(http: Api, results: LoadResult[]): Promise<void> {
  const answered = results.filter((r) => r.status === 200).map((r) => r.body.prediction_id as string);
  const audited = new Set((await auditOf(http, { action: 'prediction.create' })).map((a) => a.resource));
  const lost = answered.filter((id) => !audited.has(`prediction:${id}`));
  figure('answered predictions without an audit record', `${lost.length} of ${answered.length}`);
  assert.deepEqual(lost, []);
}
