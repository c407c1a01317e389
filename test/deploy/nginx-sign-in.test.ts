import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVICE_NAMES, testConfig, type ServiceName } from '../../src/core/config/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { SESSION_COOKIE } from '../../src/core/auth/session.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, redisReachable, uniqueName } from '../helpers/engines.js';
import { startNginx, nginxMissing, type RunningNginx } from '../helpers/nginx.js';
import { freePort, PROJECT_ROOT, spawnNode, waitForHttp, type Spawned } from '../helpers/process.js';
import { ADMIN_KEY, CookieJar, ROLE_MAP, SESSION_SECRET, signInWithFetch } from '../helpers/sign-in.js';
import { startTestIdp, type TestIdp } from '../helpers/test-idp.js';

// Sign-in in the scaled shape: NGINX (deploy/nginx, unchanged but for addresses) in front; `/auth/*`
// goes to `xray serve gateway` (its own process), `/api/<service>/` to the services, which verify the
// session cookie themselves. The services share PostgreSQL and Redis with the sign-in process, whose
// audit records (sign-in, sign-out) land in the same trail.

describe('sign-in behind NGINX: `xray serve gateway` on /auth/, the services on /api/', () => {
  let skip: string | null = nginxMissing();
  let nginx: RunningNginx | null = null;
  let idp: TestIdp | null = null;
  let services: RunningPlatform | null = null;
  let signin: Spawned | null = null;
  let schema = '';
  let home = '';
  let base = '';

  before(async () => {
    if (skip) {
      if (process.env.CI) throw new Error(`CI: ${skip}`);
      return;
    }
    if (!(await engineGate('PostgreSQL (sign-in behind NGINX)', await postgresReachable())) || !(await engineGate('Redis (sign-in behind NGINX)', await redisReachable()))) {
      skip = 'PostgreSQL or Redis unreachable';
      return;
    }
    home = mkdtempSync(path.join(tmpdir(), 'xray-nginx-signin-'));
    schema = uniqueName('signin');
    const [publicPort, signinPort] = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${publicPort}`;
    idp = await startTestIdp({ redirectUri: `${base}/auth/callback`, postLogoutRedirectUri: `${base}/` });
    const shared: Record<string, string> = {
      XRAY_HOST: '127.0.0.1',
      XRAY_AUTH: 'on',
      XRAY_ADMIN_KEY: ADMIN_KEY,
      XRAY_SESSION_SECRET: SESSION_SECRET,
      XRAY_DATABASE_URL: POSTGRES_URL,
      XRAY_DATABASE_SCHEMA: schema,
      XRAY_CACHE_URL: REDIS_URL,
      XRAY_QUEUE_URL: REDIS_URL,
      XRAY_REDIS_NAMESPACE: schema,
      XRAY_SEED_MODEL: 'off',
    };
    services = await startPlatform({ config: testConfig(path.join(home, 'services'), shared), randomPorts: true, gateway: false });
    signin = spawnNode(['--import', 'tsx', path.join(PROJECT_ROOT, 'src/cli/index.ts'), 'serve', 'gateway'], {
      ...shared,
      XRAY_HOME: path.join(home, 'signin'),
      XRAY_LOG_LEVEL: 'warn',
      XRAY_PORT_GATEWAY: String(signinPort),
      XRAY_SERVICE_URLS: SERVICE_NAMES.map((s) => `${s}=${services!.urls[s]}`).join(','),
      XRAY_OIDC_ISSUER: idp.issuer,
      XRAY_OIDC_CLIENT_ID: idp.clientId,
      XRAY_OIDC_CLIENT_SECRET: idp.clientSecret,
      XRAY_OIDC_REDIRECT_URL: `${base}/auth/callback`,
      XRAY_OIDC_SCOPES: 'openid profile email groups offline_access',
      XRAY_OIDC_ROLE_MAP: ROLE_MAP,
    });
    await waitForHttp(`http://127.0.0.1:${signinPort}/health`, 60_000).catch((err: unknown) => {
      throw new Error(`xray serve gateway did not start: ${String(err)}\n${signin!.output().slice(-3000)}`);
    });
    const ports: Record<ServiceName, number> = { 'data-pipeline': 8001, training: 8002, 'model-registry': 8003, deployment: 8004, monitoring: 8005 };
    const servers: Record<string, string> = { 'signin:8080': `127.0.0.1:${signinPort}` };
    for (const s of SERVICE_NAMES) servers[`${s}:${ports[s]}`] = new URL(services.urls[s]!).host;
    nginx = await startNginx({ port: publicPort, servers });
  });

  after(async () => {
    await nginx?.stop();
    if (signin && signin.child.exitCode === null) {
      signin.child.kill('SIGTERM');
      await signin.exited;
    }
    await services?.close();
    await idp?.close();
    if (schema) await dropPostgresSchema(POSTGRES_URL, schema).catch(() => {});
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('a clinician signs in through NGINX; the session works on /api/ replicas behind it; sign-out ends it; both are audited', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await (await fetch(`${base}/auth/config`)).json(), { auth: true, oidc: true }, '/auth/* reaches the sign-in process, not the UI fallback');
    const jar = new CookieJar();
    const callback = await signInWithFetch(base, 'alice', jar, '/models');
    assert.equal(callback.status, 302, await callback.clone().text());
    assert.equal(callback.headers.get('location'), '/models');
    assert.ok(jar.get(base, SESSION_COOKIE), 'session cookie set for the public address');

    const me = (await (await jar.fetch(`${base}/auth/me`)).json()) as { user: { name: string; role: string } };
    assert.deepEqual([me.user.name, me.user.role], ['alice', 'clinician']);
    // The services behind NGINX verify the cookie themselves: a viewer route answers, an ml-engineer route is forbidden.
    assert.equal((await jar.fetch(`${base}/api/model-registry/models`)).status, 200);
    const create = await jar.fetch(`${base}/api/data-pipeline/version/create`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(create.status, 403);
    assert.equal((await fetch(`${base}/api/model-registry/models`)).status, 401, 'no cookie, no access');

    const out = await jar.fetch(`${base}/auth/logout`, { method: 'POST', headers: { origin: base } });
    assert.ok(out.status < 400, `logout through NGINX: ${out.status} ${await out.clone().text()}`);
    assert.equal(jar.get(base, SESSION_COOKIE), undefined, 'the session cookie is cleared');
    assert.equal((await jar.fetch(`${base}/api/model-registry/models`)).status, 401);

    // The sign-in process wrote to the shared trail; read it as an admin through NGINX.
    let rows: { action: string; actor: string; outcome: string }[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${base}/api/monitoring/audit?page_size=200`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(res.status, 200);
      rows = ((await res.json()) as { items: typeof rows }).items;
      if (rows.some((r) => r.action === 'auth.sign_out')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(rows.some((r) => r.action === 'auth.sign_in' && r.actor === 'alice' && r.outcome === 'success'), 'sign-in audited');
    assert.ok(rows.some((r) => r.action === 'auth.sign_out' && r.actor === 'alice'), 'sign-out audited');
  });
});
