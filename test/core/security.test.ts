import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../../src/core/http/index.js';
import { safeContentType, storedBytesHeaders } from '../../src/core/http/safe-content.js';
import { tempHome } from '../helpers/engines.js';

const demo: FastifyPluginAsync<ServicePluginOptions> = async (app) => {
  app.post('/upload', { config: { role: 'ml-engineer' } }, async (req) => {
    let n = 0;
    for await (const part of req.parts()) if (part.type === 'file') n += (await part.toBuffer()).length;
    return { bytes: n };
  });
  app.get('/stored/:name', { config: { role: 'viewer' } }, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    const type = name.endsWith('.html') ? 'text/html' : name.endsWith('.svg') ? 'image/svg+xml' : 'image/jpeg';
    void storedBytesHeaders(reply, type, name);
    return reply.send(Buffer.from('\xff\xd8\xff<html><script>alert(1)</script></html>', 'latin1'));
  });
  app.get('/raw-html', { config: { role: 'viewer' } }, async (_req, reply) => reply.type('text/html').send('<script>alert(1)</script>'));
};

describe('security: headers, origin check, stored bytes, multipart errors', () => {
  let app: FastifyInstance;
  let platform: Platform;
  let home: ReturnType<typeof tempHome>;
  before(async () => {
    home = tempHome();
    platform = await openPlatform(testConfig(home.dir, { XRAY_CORS_ORIGINS: 'https://ui.example.org' }));
    app = await createServiceApp({ name: 'demo', title: 'demo', description: 'demo', platform, plugin: demo });
  });
  after(async () => (await app.close(), await platform.close(), home.cleanup()));

  test('every route of the route table answers with nosniff, a CSP with frame-ancestors none, X-Frame-Options and no-referrer', async () => {
    const urls = ['/health', '/ready', '/metrics', '/nope', '/stored/a.jpg', '/raw-html'];
    for (const url of urls) {
      const res = await app.inject(url);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, url);
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', url);
      assert.equal(res.headers['strict-transport-security'], undefined, 'no HSTS without TLS');
    }
  });

  test('stored bytes never come back as HTML or SVG; a JPEG/HTML polyglot is an attachment under a sandbox CSP', async () => {
    for (const [name, type] of [['evil.html', 'application/octet-stream'], ['evil.svg', 'application/octet-stream'], ['poly.jpg', 'image/jpeg']] as const) {
      const res = await app.inject(`/stored/${name}`);
      assert.equal(res.headers['content-type'], type, name);
      assert.match(String(res.headers['content-disposition']), /^attachment/, name);
      assert.match(String(res.headers['content-security-policy']), /sandbox/, name);
    }
    const raw = await app.inject('/raw-html');
    assert.equal(raw.headers['content-type'], 'application/octet-stream', 'active content from any route is neutralised');
    assert.equal(safeContentType('model/onnx'), 'application/octet-stream');
    assert.equal(safeContentType('application/dicom'), 'application/dicom');
    assert.equal(safeContentType('IMAGE/PNG; x=1'), 'image/png');
  });

  test('a state-changing request with a foreign Origin is refused with 403; no Origin, same origin and allowed origins pass', async () => {
    const body = '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc\r\n--b--\r\n';
    const headers = { 'content-type': 'multipart/form-data; boundary=b', host: 'localhost:8001' };
    const foreign = await app.inject({ method: 'POST', url: '/upload', headers: { ...headers, origin: 'https://evil.example.com' }, payload: body });
    assert.equal(foreign.statusCode, 403);
    assert.equal(foreign.json().error.code, 'FORBIDDEN');
    assert.equal((await app.inject({ method: 'POST', url: '/upload', headers, payload: body })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: '/upload', headers: { ...headers, origin: 'http://localhost:8001' }, payload: body })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: '/upload', headers: { ...headers, origin: 'https://ui.example.org' }, payload: body })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: '/upload', headers: { ...headers, origin: 'null' }, payload: body })).statusCode, 403);
    assert.equal((await app.inject({ url: '/health', headers: { origin: 'https://evil.example.com' } })).statusCode, 200, 'reads are not refused');
  });

  test('an unterminated multipart body and multipart without a boundary are 400 INVALID_INPUT, not 500', async () => {
    const unterminated = await app.inject({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
      payload: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc',
    });
    assert.equal(unterminated.statusCode, 400, unterminated.body);
    assert.equal(unterminated.json().error.code, 'INVALID_INPUT');
    const noBoundary = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': 'multipart/form-data' }, payload: 'x' });
    assert.equal(noBoundary.statusCode, 400, noBoundary.body);
    assert.equal(noBoundary.json().error.code, 'INVALID_INPUT');
  });
});

describe('request logs carry the path, never the query string', () => {
  test('an identifier or key in a query string does not reach the log', async () => {
    const home = tempHome();
    const lines: string[] = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const platform = await openPlatform(testConfig(home.dir, { XRAY_LOG_LEVEL: 'info' }), { logger });
    const app = await createServiceApp({ name: 'demo', title: 'demo', description: 'demo', platform, plugin: demo });
    try {
      await app.inject('/health?patient=Jane%20Doe&api_key=xk_secret_123');
      await app.inject('/nope?mrn=MRN-0042');
      const all = lines.join('');
      assert.match(all, /"url":"\/health"/, 'the path is logged');
      assert.match(all, /"url":"\/nope"/);
      for (const secret of ['Jane', 'xk_secret_123', 'MRN-0042', 'patient=']) assert.ok(!all.includes(secret), `${secret} leaked into the log`);
    } finally {
      await app.close();
      await platform.close();
      home.cleanup();
    }
  });
});

describe('safe by default: exposure and the metrics token', () => {
  test('auth off on an interface other hosts reach is refused unless acknowledged; loopback is fine', async () => {
    const { checkExposure, loadConfig, isLoopbackHost } = await import('../../src/core/config/index.js');
    const { startPlatform } = await import('../../src/main.js');
    for (const h of ['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'xray.hospital.org']) assert.equal(isLoopbackHost(h), false, h);
    assert.throws(() => checkExposure(loadConfig({ XRAY_HOST: '0.0.0.0' })), /XRAY_HOST=0\.0\.0\.0 lets other hosts reach the platform, but XRAY_AUTH is off/);
    assert.doesNotThrow(() => checkExposure(loadConfig({ XRAY_HOST: '0.0.0.0', XRAY_AUTH: 'on' })));
    assert.doesNotThrow(() => checkExposure(loadConfig({ XRAY_HOST: '0.0.0.0', XRAY_INSECURE: 'on' })));
    const home = tempHome();
    try {
      await assert.rejects(startPlatform({ config: testConfig(home.dir, { XRAY_HOST: '0.0.0.0' }), services: ['monitoring'], randomPorts: true }), /XRAY_AUTH is off/);
    } finally {
      home.cleanup();
    }
  });

  test('XRAY_METRICS_TOKEN: /metrics needs the bearer token', async () => {
    const home = tempHome();
    const platform = await openPlatform(testConfig(home.dir, { XRAY_METRICS_TOKEN: 'scrape-token-123' }));
    const app = await createServiceApp({ name: 'demo', title: 'demo', description: 'demo', platform, plugin: demo });
    try {
      assert.equal((await app.inject('/metrics')).statusCode, 401);
      assert.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
      const ok = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer scrape-token-123' } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /xray_http_request_duration_seconds/);
      assert.equal((await app.inject('/health')).statusCode, 200, 'health stays open');
    } finally {
      await app.close();
      await platform.close();
      home.cleanup();
    }
  });
});
