import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Agent, fetch as tlsFetch } from 'undici';
import { testConfig, ConfigError, loadConfig } from '../../src/core/config/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { HttpDeploymentClient } from '../../src/deployment/client/index.js';
import { ServiceTransport } from '../../src/core/http/service-transport.js';
import { signServiceToken } from '../../src/core/auth/service-token.js';
import { tempHome } from '../helpers/engines.js';
import { TestCa } from '../helpers/tls-certs.js';

const SECRET = 'a-test-service-token-secret-of-48-characters-xxx';

/** The serial of the certificate a TLS server presents on a new connection. */
function servedSerial(url: string, ca: Buffer): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

describe('TLS: HTTPS on the gateway and services, mTLS between services, certificates reloaded', () => {
  const home = tempHome();
  let ca: TestCa;
  let rogue: TestCa;
  let server: ReturnType<TestCa['issue']>;
  let next: ReturnType<TestCa['issue']>;
  let registryCert: ReturnType<TestCa['issue']>;
  let rogueClient: ReturnType<TestCa['issue']>;
  let running: RunningPlatform;
  let trustOnly: Agent;
  let asRegistry: Agent;
  let asRogue: Agent;
  let asPlatform: Agent;
  const tlsFiles = () => ({ cert: path.join(home.dir, 'tls', 'tls.crt'), key: path.join(home.dir, 'tls', 'tls.key') });

  before(async () => {
    const dir = path.join(home.dir, 'tls');
    (await import('node:fs')).mkdirSync(dir, { recursive: true });
    ca = new TestCa(dir, 'ca');
    rogue = new TestCa(dir, 'rogue-ca');
    server = ca.issue('server-1', 'xray');
    next = ca.issue('server-2', 'xray');
    registryCert = ca.issue('registry', 'model-registry');
    rogueClient = rogue.issue('rogue-client', 'model-registry');
    copyFileSync(server.cert, tlsFiles().cert);
    copyFileSync(server.key, tlsFiles().key);
    const config = testConfig(home.dir, {
      XRAY_TLS_CERT_FILE: tlsFiles().cert,
      XRAY_TLS_KEY_FILE: tlsFiles().key,
      XRAY_TLS_CA_FILE: ca.cert,
      XRAY_SERVICE_TOKEN_SECRET: SECRET,
      XRAY_WEB_DIR: path.join(home.dir, 'no-web'),
    });
    running = await startPlatform({ config, randomPorts: true, gateway: true });
    trustOnly = new Agent({ connect: { ca: ca.pem() } });
    asRegistry = new Agent({ connect: { ca: ca.pem(), cert: readFileSync(registryCert.cert), key: readFileSync(registryCert.key) } });
    asRogue = new Agent({ connect: { ca: ca.pem(), cert: readFileSync(rogueClient.cert), key: readFileSync(rogueClient.key) } });
    asPlatform = new Agent({ connect: { ca: ca.pem(), cert: readFileSync(server.cert), key: readFileSync(server.key) } });
  });
  after(async () => {
    await Promise.all([trustOnly, asRegistry, asRogue, asPlatform].map((a) => a?.close()));
    await running?.close();
    home.cleanup();
  });

  test('the gateway and every service listen on HTTPS only, with HSTS; plain HTTP gets no answer', async () => {
    for (const [name, url] of Object.entries(running.urls)) assert.match(url, /^https:\/\//, name);
    const res = await tlsFetch(`${running.urls.gateway}/health`, { dispatcher: trustOnly });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('strict-transport-security')), /max-age=31536000/);
    const plain = running.urls.gateway!.replace('https://', 'http://');
    await assert.rejects(fetch(`${plain}/health`, { signal: AbortSignal.timeout(5000) }));
    // A client that does not trust the platform CA refuses the connection.
    await assert.rejects(fetch(`${running.urls.gateway}/health`));
  });

  test('services require a client certificate signed by the platform CA (probes exempt); typed 401 otherwise', async () => {
    const deployment = running.urls.deployment!;
    assert.equal((await tlsFetch(`${deployment}/health`, { dispatcher: trustOnly })).status, 200, 'liveness probes need no certificate');
    assert.equal((await tlsFetch(`${deployment}/ready`, { dispatcher: trustOnly })).status, 200);

    const none = await tlsFetch(`${deployment}/models`, { dispatcher: trustOnly });
    assert.equal(none.status, 401);
    const noneBody = (await none.json()) as { error: { code: string; message: string } };
    assert.equal(noneBody.error.code, 'UNAUTHENTICATED');
    assert.match(noneBody.error.message, /no client certificate/);

    const bad = await tlsFetch(`${deployment}/models`, { dispatcher: asRogue });
    assert.equal(bad.status, 401);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /not trusted/);

    assert.equal((await tlsFetch(`${deployment}/models`, { dispatcher: asRegistry })).status, 200);
  });

  test('the gateway reaches the services over mTLS (proxy and service list)', async () => {
    const gw = running.urls.gateway!;
    const models = await tlsFetch(`${gw}/api/deployment/models`, { dispatcher: trustOnly });
    assert.equal(models.status, 200, await models.clone().text());
    const services = (await (await tlsFetch(`${gw}/api/services`, { dispatcher: trustOnly })).json()) as { services: { name: string; ready: boolean }[] };
    assert.deepEqual(services.services.map((s) => s.ready), [true, true, true, true, true]);
  });

  test('internal routes: only a service token or a service client certificate passes; never through the gateway', async () => {
    const deployment = running.urls.deployment!;
    const canary = (dispatcher: Agent, headers: Record<string, string> = {}, base = deployment) =>
      tlsFetch(`${base}/models/canary`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'nope', version: '1' }) });

    // The platform's shared certificate (CN=xray) is not a service identity; no token: 403.
    const anonymous = await canary(asPlatform);
    assert.equal(anonymous.status, 403);
    assert.match(((await anonymous.json()) as { error: { message: string } }).error.message, /internal: only another platform service/);

    // A client certificate whose CN names a service: passes identity (the model does not exist: 404).
    assert.equal((await canary(asRegistry)).status, 404);

    // A service token for the deployment: passes. One for another service, expired, or signed with another secret: 403.
    const secret = Buffer.from(SECRET);
    const good = await signServiceToken(secret, { caller: 'model-registry', audience: 'deployment' });
    assert.equal((await canary(asPlatform, { 'x-service-token': good })).status, 404);
    const wrongAudience = await signServiceToken(secret, { caller: 'model-registry', audience: 'monitoring' });
    const r1 = await canary(asPlatform, { 'x-service-token': wrongAudience });
    assert.equal(r1.status, 403);
    assert.match(((await r1.json()) as { error: { message: string } }).error.message, /not for this service/);
    const expired = await signServiceToken(secret, { caller: 'model-registry', audience: 'deployment' }, -120);
    const r2 = await canary(asPlatform, { 'x-service-token': expired });
    assert.match(((await r2.json()) as { error: { message: string } }).error.message, /expired/);
    const forged = await signServiceToken(Buffer.from('x'.repeat(48)), { caller: 'model-registry', audience: 'deployment' });
    assert.equal((await canary(asPlatform, { 'x-service-token': forged })).status, 403);

    // Through the gateway a valid token is stripped: people cannot reach internal routes.
    const viaGateway = await canary(trustOnly, { 'x-service-token': good }, `${running.urls.gateway}/api/deployment`);
    assert.equal(viaGateway.status, 403);
  });

  test('another process with the shared secret reaches the internal route through its HTTP client; a wrong secret is refused', async () => {
    const config = running.platform.config;
    const sameSecret = new ServiceTransport({ tls: config.tls, tokenSecret: Buffer.from(SECRET) });
    const otherSecret = new ServiceTransport({ tls: config.tls, tokenSecret: Buffer.from('y'.repeat(48)) });
    try {
      const ok = new HttpDeploymentClient(running.urls.deployment!, { transport: sameSecret });
      await assert.rejects(ok.canary('pneumonia', 7), (err: { code?: string }) => err.code === 'NOT_FOUND' || err.code === 'MODEL_NOT_FOUND');
      const refused = new HttpDeploymentClient(running.urls.deployment!, { transport: otherSecret });
      await assert.rejects(refused.canary('pneumonia', 7), (err: { code?: string; message: string }) => err.code === 'FORBIDDEN' && /not valid/.test(err.message));
      // Without a transport there is neither the CA nor a client certificate: no connection.
      await assert.rejects(new HttpDeploymentClient(running.urls.deployment!, { timeoutMs: 3000 }).canary('pneumonia', 7), (err: { code?: string }) => err.code === 'SERVICE_UNAVAILABLE');
    } finally {
      await Promise.all([sameSecret.close(), otherSecret.close()]);
    }
  });

  test('a renewed certificate is served on new connections without a restart', async () => {
    const caPem = ca.pem();
    assert.equal(await servedSerial(running.urls.gateway!, caPem), server.serial);
    assert.equal(await servedSerial(running.urls.deployment!, caPem), server.serial);
    // Replace both files atomically, the way cert-manager or a Vault agent does.
    const { cert, key } = tlsFiles();
    copyFileSync(next.key, `${key}.new`);
    copyFileSync(next.cert, `${cert}.new`);
    renameSync(`${key}.new`, key);
    renameSync(`${cert}.new`, cert);
    for (const url of [running.urls.gateway!, running.urls.deployment!]) {
      let serial = '';
      for (let i = 0; i < 100 && serial !== next.serial; i++) {
        serial = await servedSerial(url, caPem);
        if (serial !== next.serial) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(serial, next.serial, `${url} serves the renewed certificate`);
    }
    // Service-to-service calls still work on the renewed certificate.
    const res = await tlsFetch(`${running.urls.gateway}/api/deployment/models`, { dispatcher: trustOnly });
    assert.equal(res.status, 200);
  });

  test('configuration: half a TLS pair, a missing file or a short token secret stop the start', () => {
    const dir = path.join(home.dir, 'tls');
    assert.throws(() => loadConfig({ XRAY_TLS_CERT_FILE: server.cert }), (e: unknown) => e instanceof ConfigError && /XRAY_TLS_KEY_FILE/.test(e.message));
    assert.throws(() => loadConfig({ XRAY_TLS_CERT_FILE: server.cert, XRAY_TLS_KEY_FILE: path.join(dir, 'missing.key') }), (e: unknown) => e instanceof ConfigError && /XRAY_TLS_KEY_FILE: file/.test(e.message));
    assert.throws(() => loadConfig({ XRAY_SERVICE_TOKEN_SECRET: 'short' }), (e: unknown) => e instanceof ConfigError && /at least 32/.test(e.message));
    const c = loadConfig({ XRAY_TLS_CERT_FILE: server.cert, XRAY_TLS_KEY_FILE: server.key });
    assert.equal(c.hsts, true);
    assert.match(c.serviceUrls.deployment, /^https:\/\/127\.0\.0\.1:8004$/);
    assert.equal(c.tls?.clientCertFile, server.cert, 'the server certificate doubles as the client certificate');
  });
});
