import http from 'node:http';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { testConfig, SERVICE_NAMES } from '../src/core/config/index.js';
import { startPlatform, type RunningPlatform } from '../src/main.js';
import { openDatabase } from '../src/core/db/index.js';
import { AuditLog } from '../src/core/audit/index.js';
import { tempHome } from './helpers/engines.js';
import { freePort, spawnNode, waitForHttp } from './helpers/process.js';

describe('all five services and the gateway in one process', () => {
  let running: RunningPlatform;
  const home = tempHome();
  before(async () => {
    running = await startPlatform({ config: testConfig(home.dir), randomPorts: true, gateway: true });
  });
  after(async () => {
    await running.close();
    home.cleanup();
  });

  test('each service answers /health, /ready and serves an OpenAPI document', async () => {
    for (const name of SERVICE_NAMES) {
      const base = running.urls[name]!;
      assert.equal((await fetch(`${base}/health`)).status, 200, `${name} /health`);
      const ready = await fetch(`${base}/ready`);
      assert.equal(ready.status, 200, `${name} /ready`);
      const doc = await (await fetch(`${base}/docs/json`)).json();
      assert.equal(doc.openapi, '3.0.3', `${name} /docs/json`);
      assert.match(await (await fetch(`${base}/metrics`)).text(), /xray_http_requests_total|xray_process/);
    }
  });

  test('the gateway proxies /api/<service>/… with bodies and status codes, and lists services', async () => {
    const gw = running.urls.gateway!;
    const health = await (await fetch(`${gw}/api/model-registry/health`)).json();
    assert.equal(health.service, 'model-registry');
    const bad = await fetch(`${gw}/api/training/health`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    assert.ok(bad.status === 400 || bad.status === 404, `status ${bad.status}`);
    assert.ok((await bad.json()).error.code);
    const unknown = await fetch(`${gw}/api/nosuch/health`);
    assert.equal(unknown.status, 404);
    const services = await (await fetch(`${gw}/api/services`)).json();
    assert.deepEqual(services.services.map((s: { name: string }) => s.name), [...SERVICE_NAMES]);
    assert.ok(services.services.every((s: { ready: boolean }) => s.ready));
  });

  test('a large upload sent with `Expect: 100-continue` (curl does above 1 MiB) reaches the service through the gateway', async () => {
    const boundary = 'xray-boundary-0123456789';
    const file = Buffer.alloc(2 * 1024 * 1024, 7); // not an ONNX model: the registry itself must say so
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="name"\r\n\r\nbig\r\n--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="model.onnx"\r\ncontent-type: application/octet-stream\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const url = new URL(`${running.urls.gateway!}/api/model-registry/models/register`);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { expect: '100-continue', 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } });
      req.on('continue', () => req.end(body));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
    });
    assert.equal(status, 422, text);
    assert.match(text, /not a loadable ONNX model/);
  });
});

describe('processes', () => {
  test('`xray serve model-registry` runs that one service alone and stops on SIGTERM', async () => {
    const home = tempHome();
    const port = await freePort();
    const p = spawnNode(['bin/xray.js', 'serve', 'model-registry'], { XRAY_HOME: home.dir, XRAY_PORT_REGISTRY: String(port), XRAY_SEED_MODEL: 'off' });
    try {
      const health = await (await waitForHttp(`http://127.0.0.1:${port}/health`)).json();
      assert.equal(health.service, 'model-registry');
      p.child.kill('SIGTERM');
      const { code } = await p.exited;
      assert.equal(code, 0, p.output());
    } finally {
      p.child.kill('SIGKILL');
      home.cleanup();
    }
  });

  test('SIGTERM drains: /ready turns 503 at once, requests are still served for XRAY_DRAIN_S, then exit 0', async () => {
    const home = tempHome();
    const port = await freePort();
    const p = spawnNode(['bin/xray.js', 'serve', 'model-registry'], { XRAY_HOME: home.dir, XRAY_PORT_REGISTRY: String(port), XRAY_SEED_MODEL: 'off', XRAY_DRAIN_S: '2' });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${base}/ready`);
      const signalled = Date.now();
      p.child.kill('SIGTERM');
      let ready = 200;
      for (let i = 0; i < 50 && ready === 200; i++) {
        ready = (await fetch(`${base}/ready`)).status;
        if (ready === 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(ready, 503, '/ready says not ready while draining');
      const body = await (await fetch(`${base}/ready`)).json();
      assert.equal(body.checks.accepting, false);
      assert.equal((await fetch(`${base}/health`)).status, 200, 'still alive');
      const during = await fetch(`${base}/models`);
      assert.equal(during.status, 200, 'and still serving requests during the drain');
      assert.equal(during.headers.get('connection'), 'close', 'each answer closes its connection: the load balancer keeps no idle one to reuse as the replica closes');
      const { code } = await p.exited;
      assert.equal(code, 0, p.output());
      assert.ok(Date.now() - signalled >= 1900, 'it served for the drain period before closing');
    } finally {
      p.child.kill('SIGKILL');
      home.cleanup();
    }
  });

  test('a bad configuration value stops the start with a message naming the variable', async () => {
    const p = spawnNode(['bin/xray.js', 'serve', 'monitoring'], { XRAY_PORT_MONITORING: 'not-a-port' });
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.output(), /XRAY_PORT_MONITORING/);
  });

  test('Ctrl-C (SIGINT) on the whole platform flushes pending writes and closes cleanly', async () => {
    const home = tempHome();
    const ports = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
    const env = {
      XRAY_HOME: home.dir,
      XRAY_SEED_MODEL: 'off',
      XRAY_AUTH: 'on',
      XRAY_PORT_DATA: String(ports[0]),
      XRAY_PORT_TRAINING: String(ports[1]),
      XRAY_PORT_REGISTRY: String(ports[2]),
      XRAY_PORT_DEPLOYMENT: String(ports[3]),
      XRAY_PORT_MONITORING: String(ports[4]),
      XRAY_PORT_GATEWAY: String(ports[5]),
    };
    const p = spawnNode(['--import', 'tsx', 'src/main.ts'], env);
    try {
      await waitForHttp(`http://127.0.0.1:${ports[5]}/health`, 60000);
      // A denied request queues an audit record; stop at once so it is still pending.
      const denied = await fetch(`http://127.0.0.1:${ports[4]}/audit`);
      assert.ok(denied.status === 401 || denied.status === 404);
      p.child.kill('SIGINT');
      const { code } = await p.exited;
      assert.equal(code, 0, p.output());
      const db = await openDatabase(`sqlite:${path.join(home.dir, 'xray.db')}`);
      const audit = new AuditLog(db);
      if (denied.status === 401) {
        const { items } = await audit.query({ action: 'access.denied' });
        assert.equal(items.length, 1);
      }
      assert.equal((await audit.verify()).ok, true);
      await db.close();
    } finally {
      p.child.kill('SIGKILL');
      home.cleanup();
    }
  });
});
