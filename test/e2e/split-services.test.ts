import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES, type ServiceName } from '../../src/core/config/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { generateDataset } from '../../src/core/imaging/index.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, redisReachable, startS3Server, tempHome, uniqueName, type S3Server } from '../helpers/engines.js';
import { freePort, PROJECT_ROOT, spawnNode, waitForHttp, type Spawned } from '../helpers/process.js';
import { torchOrSkip } from '../training/helpers.js';
import { api, PER_CLASS, runPipeline } from './pipeline-scenario.js';

/**
 * The same pipeline as pipeline.test.ts with every service in its own process (`xray serve
 * <service>`), each with its own home folder, talking to the others only over HTTP through their
 * clients (XRAY_SERVICE_URLS, service tokens) and sharing nothing but PostgreSQL, an S3-protocol
 * server (s3rver) and Redis — the scaled topology without the load balancer.
 */

const PORT_KEYS: Record<ServiceName, string> = {
  'data-pipeline': 'XRAY_PORT_DATA',
  training: 'XRAY_PORT_TRAINING',
  'model-registry': 'XRAY_PORT_REGISTRY',
  deployment: 'XRAY_PORT_DEPLOYMENT',
  monitoring: 'XRAY_PORT_MONITORING',
};

/** Shared objects mapped into a process (its native libraries), from /proc (Linux). */
function mappedLibraries(pid: number): string {
  return readFileSync(`/proc/${pid}/maps`, 'utf8');
}

describe('end to end with each service in its own process (PostgreSQL, S3, Redis; HTTP between services)', { skip: process.env.XRAY_FAST === '1' ? 'XRAY_FAST=1 (real training)' : false }, () => {
  const home = tempHome('xray-split-');
  const schema = uniqueName('split');
  let s3: S3Server | null = null;
  let engines = false;
  const procs = new Map<ServiceName, Spawned>();
  const urls = {} as Record<ServiceName, string>;

  before(async () => {
    engines = (await engineGate('PostgreSQL (split services)', await postgresReachable())) && (await engineGate('Redis (split services)', await redisReachable()));
    if (!engines) return;
    s3 = await startS3Server();
    const importRoot = path.join(home.dir, 'import');
    await generateDataset(path.join(importRoot, 'incoming', 'chest_xray'), { perClass: PER_CLASS, seed: 21, size: 64, format: 'png', imagesPerPatient: [1, 2] });
    const ports = Object.fromEntries(await Promise.all(SERVICE_NAMES.map(async (s) => [s, await freePort()] as const))) as Record<ServiceName, number>;
    for (const s of SERVICE_NAMES) urls[s] = `http://127.0.0.1:${ports[s]}`;
    const common: Record<string, string> = {
      XRAY_HOST: '127.0.0.1',
      XRAY_LOG_LEVEL: 'warn',
      XRAY_DATABASE_URL: POSTGRES_URL,
      XRAY_DATABASE_SCHEMA: schema,
      XRAY_OBJECT_STORE_URL: `s3://${uniqueName('split').replace(/_/g, '-')}/platform`,
      XRAY_S3_ENDPOINT: s3.endpoint,
      XRAY_S3_ACCESS_KEY_ID: 'S3RVER',
      XRAY_S3_SECRET_ACCESS_KEY: 'S3RVER',
      XRAY_CACHE_URL: REDIS_URL,
      XRAY_QUEUE_URL: REDIS_URL,
      XRAY_REDIS_NAMESPACE: schema,
      XRAY_SERVICE_URLS: SERVICE_NAMES.map((s) => `${s}=${urls[s]}`).join(','),
      XRAY_SERVICE_TOKEN_SECRET: 'split-services-shared-secret-0123456789',
      XRAY_SEED_MODEL: 'off',
      XRAY_TRAINER_CONCURRENCY: '1',
      XRAY_DRAIN_S: '0',
      ...Object.fromEntries(SERVICE_NAMES.map((s) => [PORT_KEYS[s], String(ports[s])])),
    };
    // The registry migrates the empty schema first; the others then start together.
    const start = (service: ServiceName) => {
      const own = path.join(home.dir, service);
      mkdirSync(own, { recursive: true });
      const env = { ...common, XRAY_HOME: own, ...(service === 'data-pipeline' ? { XRAY_IMPORT_ROOT: importRoot } : {}) };
      procs.set(service, spawnNode(['--import', 'tsx', path.join(PROJECT_ROOT, 'src/cli/index.ts'), 'serve', service], env));
      return waitForHttp(`${urls[service]}/ready`, 90_000).catch((err: unknown) => {
        throw new Error(`${service} did not become ready: ${String(err)}\n${procs.get(service)!.output().slice(-3000)}`);
      });
    };
    await start('model-registry');
    await Promise.all(SERVICE_NAMES.filter((s) => s !== 'model-registry').map(start));
  });

  after(async () => {
    await Promise.all(
      [...procs.values()].map(async (p) => {
        if (p.child.exitCode === null) p.child.kill('SIGTERM');
        const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
        await p.exited;
        clearTimeout(t);
      }),
    );
    if (engines) await dropPostgresSchema(POSTGRES_URL, schema).catch(() => {});
    await s3?.close();
    home.cleanup();
  });

  test('the pipeline runs with every service in its own process', async (t) => {
    if (!engines) return t.skip('engines unavailable');
    if (!(await torchOrSkip(t))) return;
    const result = await runPipeline(api((service) => urls[service as ServiceName]));
    assert.equal(result.modelVersion, 1);

    // Models run in the deployment (and the registry inspects uploads); monitoring asked the
    // deployment for its explanation and never loaded ONNX Runtime.
    const deploymentMaps = mappedLibraries(procs.get('deployment')!.child.pid!);
    assert.match(deploymentMaps, /onnxruntime/, 'the deployment process has ONNX Runtime loaded (the check can see it)');
    for (const s of ['monitoring', 'data-pipeline'] as const) {
      assert.doesNotMatch(mappedLibraries(procs.get(s)!.child.pid!), /onnxruntime/, `${s} does not load ONNX Runtime`);
    }
    for (const [s, p] of procs) assert.equal(p.child.exitCode, null, `${s} is still running:\n${p.output().slice(-2000)}`);
  });
});
