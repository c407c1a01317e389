import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../src/core/config/index.js';
import { tempHome } from '../helpers/engines.js';

test('defaults are the embedded engines under XRAY_HOME', () => {
  const c = loadConfig({ XRAY_HOME: '/tmp/xh' });
  assert.equal(c.databaseUrl, 'sqlite:/tmp/xh/xray.db');
  assert.equal(c.objectStoreUrl, 'file:/tmp/xh/objects');
  assert.equal(c.cacheUrl, 'memory:');
  assert.equal(c.queueUrl, 'local:');
  assert.equal(c.eventsUrl, 'memory:');
  assert.equal(c.auth, false);
  assert.deepEqual(c.ports, { 'data-pipeline': 8001, training: 8002, 'model-registry': 8003, deployment: 8004, monitoring: 8005, gateway: 8080 });
  assert.equal(c.serviceUrls['model-registry'], 'http://127.0.0.1:8003');
});

test('scale engines are picked by URL; Redis queue implies Redis events', () => {
  const c = loadConfig({ XRAY_DATABASE_URL: 'postgres://u@db:5432/x', XRAY_QUEUE_URL: 'redis://r:6379/0', XRAY_OBJECT_STORE_URL: 's3://b/p' });
  assert.equal(c.databaseUrl, 'postgres://u@db:5432/x');
  assert.equal(c.eventsUrl, 'redis://r:6379/0');
  assert.equal(c.objectStoreUrl, 's3://b/p');
});

test('the single-process local queue refuses PostgreSQL, where replicas share the database', () => {
  for (const queue of ['local:', 'memory:']) {
    assert.throws(
      () => loadConfig({ XRAY_DATABASE_URL: 'postgres://u@db:5432/x', XRAY_QUEUE_URL: queue }),
      (e: unknown) => e instanceof ConfigError && /XRAY_QUEUE_URL/.test(e.message) && /redis:\/\//.test(e.message),
    );
  }
  assert.throws(() => loadConfig({ XRAY_DATABASE_URL: 'postgres://u@db:5432/x' }), ConfigError, 'the default queue is local:');
  assert.equal(loadConfig({ XRAY_DATABASE_URL: 'sqlite:/tmp/x.db', XRAY_QUEUE_URL: 'local:' }).queueUrl, 'local:');
});

test('a bad value fails with a message naming the variable', () => {
  assert.throws(() => loadConfig({ XRAY_PORT_REGISTRY: 'eighty' }), (e: unknown) => e instanceof ConfigError && /XRAY_PORT_REGISTRY/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_PORT_GATEWAY: '70000' }), (e: unknown) => e instanceof ConfigError && /XRAY_PORT_GATEWAY/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_AUTH: 'maybe' }), (e: unknown) => e instanceof ConfigError && /XRAY_AUTH/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_DATABASE_URL: 'mysql://x' }), (e: unknown) => e instanceof ConfigError && /XRAY_DATABASE_URL/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_SERVICE_URLS: 'nope=http://x' }), (e: unknown) => e instanceof ConfigError && /XRAY_SERVICE_URLS/.test(e.message));
});

test('a JSON config file is read; environment variables win over it', () => {
  const home = tempHome();
  const file = path.join(home.dir, 'xray.json');
  writeFileSync(file, JSON.stringify({ XRAY_PORT_DATA: 9001, XRAY_PORT_TRAINING: 9002 }));
  const c = loadConfig({ XRAY_CONFIG_FILE: file, XRAY_PORT_TRAINING: '9102' });
  assert.equal(c.ports['data-pipeline'], 9001);
  assert.equal(c.ports.training, 9102);
  writeFileSync(file, '{not json');
  assert.throws(() => loadConfig({ XRAY_CONFIG_FILE: file }), (e: unknown) => e instanceof ConfigError && /XRAY_CONFIG_FILE/.test(e.message));
  home.cleanup();
});

test('every secret setting can come from a <NAME>_FILE (Kubernetes secret, Vault agent file)', () => {
  const h = tempHome();
  try {
    const file = (name: string, text: string) => {
      const p = path.join(h.dir, name);
      writeFileSync(p, text);
      return p;
    };
    const c = loadConfig({
      XRAY_HOME: h.dir,
      XRAY_ADMIN_KEY_FILE: file('admin', 'xk_from_a_file\n'),
      XRAY_DATABASE_URL_FILE: file('db', 'postgres://app:s3cret@db:5432/xray\n'),
      XRAY_QUEUE_URL: 'redis://redis:6379/0',
      XRAY_S3_SECRET_ACCESS_KEY_FILE: file('s3', 'abc/def'),
      XRAY_METRICS_TOKEN_FILE: file('metrics', 'scrape-token\n'),
      XRAY_SERVICE_TOKEN_SECRET_FILE: file('svc', `${'s'.repeat(40)}\n`),
      XRAY_ALERT_SMTP_URL_FILE: file('smtp', 'smtp://u:p@mail:587\n'),
    });
    assert.equal(c.adminKey, 'xk_from_a_file', 'one trailing newline dropped');
    assert.equal(c.databaseUrl, 'postgres://app:s3cret@db:5432/xray');
    assert.equal(c.s3.secretAccessKey, 'abc/def');
    assert.equal(c.metricsToken, 'scrape-token');
    assert.equal(c.serviceTokenSecret, 's'.repeat(40));
    assert.equal(c.monitoring.XRAY_ALERT_SMTP_URL, 'smtp://u:p@mail:587');
    assert.throws(() => loadConfig({ XRAY_ADMIN_KEY: 'x', XRAY_ADMIN_KEY_FILE: file('a2', 'y') }), (e: unknown) => e instanceof ConfigError && /both set/.test(e.message));
    assert.throws(() => loadConfig({ XRAY_METRICS_TOKEN_FILE: path.join(h.dir, 'missing') }), (e: unknown) => e instanceof ConfigError && /XRAY_METRICS_TOKEN_FILE: cannot read .*ENOENT/.test(e.message));
    assert.throws(() => loadConfig({ XRAY_METRICS_TOKEN_FILE: file('empty', '') }), (e: unknown) => e instanceof ConfigError && /is empty/.test(e.message));
  } finally {
    h.cleanup();
  }
});

test('encryption at rest settings: S3 SSE values, a KMS key only with aws:kms, an existing object key file', () => {
  const c = loadConfig({ XRAY_S3_SSE: 'aws:kms', XRAY_S3_SSE_KMS_KEY_ID: 'alias/xray' });
  assert.equal(c.s3.sse, 'aws:kms');
  assert.equal(c.s3.sseKmsKeyId, 'alias/xray');
  assert.throws(() => loadConfig({ XRAY_S3_SSE: 'DES' }), (e: unknown) => e instanceof ConfigError && /XRAY_S3_SSE/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_S3_SSE: 'AES256', XRAY_S3_SSE_KMS_KEY_ID: 'k' }), (e: unknown) => e instanceof ConfigError && /needs XRAY_S3_SSE=aws:kms/.test(e.message));
  assert.throws(() => loadConfig({ XRAY_OBJECT_KEY_FILE: '/nonexistent/key' }), (e: unknown) => e instanceof ConfigError && /XRAY_OBJECT_KEY_FILE/.test(e.message));
});
