import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../../src/core/config/index.js';
import { LOGIN_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, deriveSessionKeys, signLoginState } from '../../src/core/auth/session.js';
import { IDP_USERS } from '../helpers/test-idp.js';
import { CookieJar, SESSION_SECRET, authorizeAtIdp, signInWithFetch, startSignInPlatform, type SignInPlatform } from '../helpers/sign-in.js';

// Sign-in for people against a real OpenID Connect provider (oidc-provider), at the API level:
// the provider's login and consent pages are completed with plain HTTP form posts.

const keys = deriveSessionKeys(SESSION_SECRET);

function cookieLine(res: Response, name: string): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
}

async function errorOf(res: Response): Promise<{ code: string; message: string; details?: { reason?: string } }> {
  const body = (await res.json()) as { error: { code: string; message: string; details?: { reason?: string } } };
  assert.ok(body.error?.code, 'typed error envelope');
  return body.error;
}

describe('sign-in with OIDC (authorization code + PKCE) — API level', () => {
  let p: SignInPlatform;

  before(async () => {
    p = await startSignInPlatform();
  });
  after(async () => {
    await p?.close();
  });

  test('GET /auth/config says sign-in is on; /auth/login redirects with S256 PKCE, state and nonce kept in a signed HttpOnly cookie', async () => {
    assert.deepEqual(await (await fetch(`${p.gateway}/auth/config`)).json(), { auth: true, oidc: true });
    const res = await fetch(`${p.gateway}/auth/login?return_to=/models`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.origin, p.idp.issuer);
    assert.equal(location.searchParams.get('response_type'), 'code');
    assert.equal(location.searchParams.get('client_id'), p.idp.clientId);
    assert.equal(location.searchParams.get('redirect_uri'), `${p.gateway}/auth/callback`);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.match(location.searchParams.get('code_challenge') ?? '', /^[\w-]{43}$/);
    assert.ok((location.searchParams.get('state') ?? '').length >= 20);
    assert.ok((location.searchParams.get('nonce') ?? '').length >= 20);
    const cookie = cookieLine(res, LOGIN_COOKIE)!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\/auth\/callback/);
    assert.match(cookie, /Max-Age=600/);
    assert.doesNotMatch(cookie, new RegExp(location.searchParams.get('state')!), 'the state is inside a signed token, not the plain value');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  test('a clinician signs in: session cookie (HttpOnly, SameSite=Strict), /auth/me, role checks through the gateway and at a service directly', async () => {
    const jar = new CookieJar();
    const res = await signInWithFetch(p.gateway, 'alice', jar, '/models');
    assert.equal(res.status, 302, await res.clone().text());
    assert.equal(res.headers.get('location'), '/models');
    const session = cookieLine(res, SESSION_COOKIE)!;
    assert.match(session, /; Path=\/; Max-Age=900; HttpOnly; SameSite=Strict$/, 'not Secure: plain http on loopback');
    assert.match(cookieLine(res, REFRESH_COOKIE)!, /Path=\/auth; .*HttpOnly; SameSite=Strict/);
    assert.match(cookieLine(res, LOGIN_COOKIE)!, /Max-Age=0/, 'the login state is used once');
    assert.equal(p.idp.seen.grants.authorization_code, 1);

    const me = await jar.fetch(`${p.gateway}/auth/me`);
    assert.equal(me.status, 200);
    const body = (await me.json()) as { user: { id: string; name: string; role: string; groups: string[]; email: string }; expires_at: string };
    assert.deepEqual(body.user, { id: 'oidc:alice', name: 'alice', email: 'alice@hospital.test', role: 'clinician', groups: ['radiologists'] });
    const ttl = (Date.parse(body.expires_at) - Date.now()) / 1000;
    assert.ok(ttl > 880 && ttl <= 900, `session lives XRAY_SESSION_TTL_S (${ttl})`);

    // A viewer route answers; an ml-engineer route is forbidden to a clinician.
    assert.equal((await jar.fetch(`${p.gateway}/api/model-registry/models`)).status, 200);
    const create = await jar.fetch(`${p.gateway}/api/data-pipeline/version/create`, { method: 'POST', headers: { origin: p.gateway, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(create.status, 403);
    assert.equal((await errorOf(create)).code, 'FORBIDDEN');
    // The service verifies the cookie itself (no header from the gateway is trusted).
    const direct = await fetch(`${p.running.urls['model-registry']}/models`, { headers: { cookie: `${SESSION_COOKIE}=${jar.get(p.gateway, SESSION_COOKIE)}` } });
    assert.equal(direct.status, 200);
    // A service calling on the person's behalf forwards the session as a bearer.
    const bearer = await fetch(`${p.running.urls['model-registry']}/models`, { headers: { authorization: `Bearer ${jar.get(p.gateway, SESSION_COOKIE)}` } });
    assert.equal(bearer.status, 200);
    // Without any credential the same route is 401.
    assert.equal((await fetch(`${p.gateway}/api/model-registry/models`)).status, 401);
  });

  test('an ml-engineer passes the role check the clinician failed; state changes by cookie need an Origin, and a foreign one is refused', async () => {
    const jar = new CookieJar();
    assert.equal((await signInWithFetch(p.gateway, 'bob', jar)).status, 302);
    const url = `${p.gateway}/api/data-pipeline/version/create`;
    const init = { method: 'POST', body: '{}' };
    const ok = await jar.fetch(url, { ...init, headers: { origin: p.gateway, 'content-type': 'application/json' } });
    assert.equal(ok.status, 400, 'past the role check, the empty body is invalid');
    assert.equal((await errorOf(ok)).code, 'INVALID_INPUT');
    const noOrigin = await jar.fetch(url, { ...init, headers: { 'content-type': 'application/json' } });
    assert.equal(noOrigin.status, 403);
    assert.match((await errorOf(noOrigin)).message, /Origin/);
    const foreign = await jar.fetch(url, { ...init, headers: { origin: 'http://evil.example', 'content-type': 'application/json' } });
    assert.equal(foreign.status, 403);
    assert.match((await errorOf(foreign)).message, /cross-origin/);
  });

  test('tampered, forged, expired and unsigned session cookies are 401 at the gateway and at the services', async () => {
    const jar = new CookieJar();
    await signInWithFetch(p.gateway, 'alice', jar);
    const good = jar.get(p.gateway, SESSION_COOKIE)!;
    const [h, payload, sig] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const elevated = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ ...claims, exp: now - 60, iat: now - 1000 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(keys.session);
    const forged = await new SignJWT({ ...claims, role: 'admin' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${elevated}.`;
    const cases: Record<string, string> = {
      'payload edited (role admin)': `${h}.${elevated}.${sig}`,
      'signature flipped': `${h}.${payload}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`,
      'signed with another secret': forged,
      expired,
      'alg none': unsigned,
    };
    for (const [what, token] of Object.entries(cases)) {
      for (const url of [`${p.gateway}/api/model-registry/models`, `${p.running.urls.deployment}/models`, `${p.gateway}/auth/me`]) {
        const res = await fetch(url, { headers: { cookie: `${SESSION_COOKIE}=${token}` } });
        assert.equal(res.status, 401, `${what} at ${url}`);
        const err = await errorOf(res);
        assert.equal(err.code, 'UNAUTHENTICATED');
        if (what === 'expired') assert.match(err.message, /expired/);
      }
    }
    assert.equal((await fetch(`${p.gateway}/api/model-registry/models`, { headers: { cookie: `${SESSION_COOKIE}=${good}` } })).status, 200, 'the untouched cookie works');
  });

  test('a person in no mapped group is refused: 403 with a clear message (JSON or a page), no session', async () => {
    const jar = new CookieJar();
    const res = await signInWithFetch(p.gateway, 'visitor', jar);
    assert.equal(res.status, 403);
    const err = await errorOf(res);
    assert.equal(err.code, 'FORBIDDEN');
    assert.equal(err.details?.reason, 'NO_MAPPED_GROUP');
    assert.match(err.message, /visitor .* no group that gives access.*radiologists, ml, it/);
    assert.equal(cookieLine(res, SESSION_COOKIE), undefined);
    assert.equal(jar.get(p.gateway, SESSION_COOKIE), undefined);
    assert.equal((await jar.fetch(`${p.gateway}/auth/me`)).status, 401);

    const browserJar = new CookieJar();
    const { callbackUrl } = await authorizeAtIdp(p.gateway, 'visitor', browserJar);
    const page = await browserJar.fetch(callbackUrl, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 403);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.match(html, /Sign-in refused/);
    assert.match(html, /no group that gives access/);
    assert.doesNotMatch(html, /<script/i);
  });

  test('state mismatch, a callback without its login cookie and an error from the provider are refused', async () => {
    const jar = new CookieJar();
    const { callbackUrl } = await authorizeAtIdp(p.gateway, 'alice', jar);
    const grantsBefore = p.idp.seen.grants.authorization_code ?? 0;

    const wrongState = new URL(callbackUrl);
    wrongState.searchParams.set('state', 'attacker-chosen-state-value');
    const r1 = await jar.fetch(wrongState.href, { headers: { accept: 'application/json' } });
    assert.equal(r1.status, 401);
    const e1 = await errorOf(r1);
    assert.equal(e1.details?.reason, 'CALLBACK_REFUSED');
    assert.match(e1.message, /state/i);
    assert.equal(cookieLine(r1, SESSION_COOKIE), undefined);

    // Another browser (no login cookie) presenting the code.
    const r2 = await fetch(callbackUrl, { headers: { accept: 'application/json' }, redirect: 'manual' });
    assert.equal(r2.status, 400);
    assert.equal((await errorOf(r2)).details?.reason, 'LOGIN_STATE_MISSING');

    // A login state from another sign-in (its own state) does not match this answer.
    const other = new CookieJar();
    await other.fetch(`${p.gateway}/auth/login`);
    const r3 = await fetch(callbackUrl, { headers: { accept: 'application/json', cookie: `${LOGIN_COOKIE}=${other.get(p.gateway, LOGIN_COOKIE)}` }, redirect: 'manual' });
    assert.equal(r3.status, 401);
    // A tampered login cookie is no login state at all.
    const r4 = await fetch(callbackUrl, { headers: { accept: 'application/json', cookie: `${LOGIN_COOKIE}=${other.get(p.gateway, LOGIN_COOKIE)}x` }, redirect: 'manual' });
    assert.equal(r4.status, 400);

    const denied = await fetch(`${p.gateway}/auth/callback?error=access_denied&error_description=the+user+said+no`, { headers: { accept: 'application/json' }, redirect: 'manual' });
    assert.equal(denied.status, 401);
    assert.match((await errorOf(denied)).message, /access_denied \(the user said no\)/);
    assert.equal(p.idp.seen.grants.authorization_code ?? 0, grantsBefore, 'no code was exchanged');
  });

  test('PKCE: the code is only exchanged with the verifier of its challenge (the provider refuses another)', async () => {
    const jar = new CookieJar();
    const { callbackUrl, authorizationUrl } = await authorizeAtIdp(p.gateway, 'alice', jar);
    const auth = new URL(authorizationUrl);
    // A login state with the right state and nonce but another verifier, signed with the real key.
    const swapped = await signLoginState(keys.login, { state: auth.searchParams.get('state')!, nonce: auth.searchParams.get('nonce')!, codeVerifier: 'x'.repeat(43), returnTo: '/' });
    const res = await fetch(callbackUrl, { headers: { accept: 'application/json', cookie: `${LOGIN_COOKIE}=${swapped}` }, redirect: 'manual' });
    assert.equal(res.status, 401);
    const err = await errorOf(res);
    assert.equal(err.details?.reason, 'CALLBACK_REFUSED');
    assert.match(err.message, /invalid_grant/);
    assert.equal(cookieLine(res, SESSION_COOKIE), undefined);
  });

  test('refresh rotates the session at the provider and maps the role afresh; logout clears, revokes and offers RP-initiated logout', async () => {
    const jar = new CookieJar();
    await signInWithFetch(p.gateway, 'bob', jar);
    const first = jar.get(p.gateway, SESSION_COOKIE)!;
    const firstRefresh = jar.get(p.gateway, REFRESH_COOKIE)!;
    const refreshGrants = p.idp.seen.grants.refresh_token ?? 0;

    const noOrigin = await jar.fetch(`${p.gateway}/auth/refresh`, { method: 'POST' });
    assert.equal(noOrigin.status, 403);
    const r = await jar.fetch(`${p.gateway}/auth/refresh`, { method: 'POST', headers: { origin: p.gateway } });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(((await r.json()) as { user: { role: string } }).user.role, 'ml-engineer');
    const second = jar.get(p.gateway, SESSION_COOKIE)!;
    assert.notEqual(second, first, 'a new session token');
    assert.notEqual(jar.get(p.gateway, REFRESH_COOKIE), firstRefresh, 'a new refresh cookie');
    assert.equal(p.idp.seen.grants.refresh_token, refreshGrants + 1, 'the provider was asked');
    assert.equal((await jar.fetch(`${p.gateway}/api/model-registry/models`)).status, 200);
    // The same sign-in (sid) across the refresh.
    const sid = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).sid;
    assert.equal(sid(second), sid(first));
    // No refresh cookie: nothing to renew.
    const none = await fetch(`${p.gateway}/auth/refresh`, { method: 'POST', headers: { origin: p.gateway } });
    assert.equal(none.status, 401);
    assert.equal((await errorOf(none)).code, 'UNAUTHENTICATED');

    const revocations = p.idp.seen.revocations;
    const refreshBeforeLogout = jar.get(p.gateway, REFRESH_COOKIE)!;
    const out = await jar.fetch(`${p.gateway}/auth/logout`, { method: 'POST', headers: { origin: p.gateway } });
    assert.equal(out.status, 200);
    const body = (await out.json()) as { signed_out: boolean; logout_url: string };
    assert.match(cookieLine(out, SESSION_COOKIE)!, /Max-Age=0/);
    assert.match(cookieLine(out, REFRESH_COOKIE)!, /Max-Age=0/);
    assert.equal(jar.get(p.gateway, SESSION_COOKIE), undefined);
    assert.equal((await jar.fetch(`${p.gateway}/auth/me`)).status, 401);
    assert.equal(p.idp.seen.revocations, revocations + 1, 'the refresh token was revoked at the provider');
    const logoutUrl = new URL(body.logout_url);
    assert.equal(logoutUrl.origin, p.idp.issuer);
    assert.equal(logoutUrl.searchParams.get('post_logout_redirect_uri'), `${p.gateway}/`);
    assert.ok(logoutUrl.searchParams.get('id_token_hint'));
    // The revoked refresh token no longer renews anything.
    const stale = await fetch(`${p.gateway}/auth/refresh`, { method: 'POST', headers: { origin: p.gateway, cookie: `${REFRESH_COOKIE}=${refreshBeforeLogout}` } });
    assert.equal(stale.status, 401);
    assert.match((await errorOf(stale)).message, /identity provider ended this sign-in/);
  });

  test('a person removed from their group loses access at the next refresh', async () => {
    const jar = new CookieJar();
    IDP_USERS.carol = { name: 'Carol', email: 'carol@hospital.test', groups: ['it'] };
    try {
      await signInWithFetch(p.gateway, 'carol', jar);
      assert.equal(((await (await jar.fetch(`${p.gateway}/auth/me`)).json()) as { user: { role: string } }).user.role, 'admin');
      IDP_USERS.carol.groups = ['visitors'];
      const r = await jar.fetch(`${p.gateway}/auth/refresh`, { method: 'POST', headers: { origin: p.gateway } });
      assert.equal(r.status, 403);
      assert.equal((await errorOf(r)).details?.reason, 'NO_MAPPED_GROUP');
      assert.equal(jar.get(p.gateway, SESSION_COOKIE), undefined, 'the session cookie is cleared');
      assert.equal(jar.get(p.gateway, REFRESH_COOKIE), undefined);
    } finally {
      delete IDP_USERS.carol;
    }
  });

  test('sign-ins, refused sign-ins and sign-outs are in the audit trail: who, role, session id and reason — never a token or the provider\'s text', async () => {
    await p.running.platform.audit.flush();
    const rows = (await p.running.platform.audit.query({ pageSize: 1000 })).items.filter((r) => r.action === 'auth.sign_in' || r.action === 'auth.sign_out');
    const alice = rows.find((r) => r.action === 'auth.sign_in' && r.outcome === 'success' && r.actor === 'alice');
    assert.ok(alice, 'alice signing in is recorded');
    assert.equal(alice.resource, 'user:oidc:alice');
    assert.equal(alice.details?.role, 'clinician');
    assert.match(String(alice.details?.sid), /^[0-9a-f-]{36}$/);
    const refusals = rows.filter((r) => r.action === 'auth.sign_in' && r.outcome !== 'success');
    const reasons = new Set(refusals.map((r) => r.details?.reason));
    for (const reason of ['NO_MAPPED_GROUP', 'CALLBACK_REFUSED', 'LOGIN_STATE_MISSING']) assert.ok(reasons.has(reason), `a refused sign-in (${reason}) is recorded: ${[...reasons].join(', ')}`);
    assert.equal(refusals.find((r) => r.details?.reason === 'NO_MAPPED_GROUP')?.outcome, 'denied');
    assert.ok(refusals.every((r) => typeof r.details?.count_in_window === 'number'), 'refusals carry their count in the window');
    assert.ok(rows.some((r) => r.action === 'auth.sign_out' && r.actor === 'bob' && r.resource === 'user:oidc:bob'), 'bob signing out is recorded');
    const text = JSON.stringify(rows);
    assert.doesNotMatch(text, /eyJ[\w-]+\.[\w-]+/, 'no JWT (session, ID token) in the audit trail');
    assert.doesNotMatch(text, /the user said no/, "the provider's error text (an attacker can write it) is not recorded");
  });

  test('API keys still work for machines next to sessions', async () => {
    const { ADMIN_KEY } = await import('../helpers/sign-in.js');
    assert.equal((await fetch(`${p.gateway}/api/monitoring/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status, 200);
    assert.equal((await fetch(`${p.gateway}/api/monitoring/keys`, { headers: { authorization: 'Bearer wrong-key' } })).status, 401);
  });
});

describe('sign-in settings', () => {
  const base = {
    XRAY_HOME: '/tmp/xray-signin-config',
    XRAY_AUTH: 'on',
    XRAY_OIDC_ISSUER: 'https://idp.hospital.test/realms/xray',
    XRAY_OIDC_CLIENT_ID: 'xray',
    XRAY_OIDC_ROLE_MAP: 'radiologists=clinician,it=admin',
    XRAY_SESSION_SECRET: SESSION_SECRET,
  };

  test('a complete configuration: defaults derived from the gateway', () => {
    const c = loadConfig(base);
    assert.equal(c.oidc?.redirectUrl, 'http://127.0.0.1:8080/auth/callback');
    assert.equal(c.oidc?.roleClaim, 'groups');
    assert.deepEqual(c.oidc?.roleMap, { radiologists: 'clinician', it: 'admin' });
    assert.equal(c.oidc?.secureCookies, false);
    assert.equal(c.session?.ttlSeconds, 900);
    assert.equal(loadConfig({ ...base, XRAY_OIDC_REDIRECT_URL: 'https://xray.hospital.test/auth/callback' }).oidc?.secureCookies, true);
    assert.equal(loadConfig({ XRAY_HOME: '/tmp/x' }).oidc, null);
  });

  test('each missing or bad piece is a ConfigError naming the variable', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ XRAY_AUTH: 'off' }, /XRAY_AUTH=on/],
      [{ XRAY_SESSION_SECRET: '' }, /XRAY_SESSION_SECRET/],
      [{ XRAY_SESSION_SECRET: 'short' }, /XRAY_SESSION_SECRET must be at least 32/],
      [{ XRAY_OIDC_CLIENT_ID: '' }, /XRAY_OIDC_CLIENT_ID/],
      [{ XRAY_OIDC_ROLE_MAP: '' }, /XRAY_OIDC_ROLE_MAP/],
      [{ XRAY_OIDC_ROLE_MAP: 'radiologists=doctor' }, /XRAY_OIDC_ROLE_MAP: 'radiologists=doctor'/],
      [{ XRAY_OIDC_ISSUER: 'http://idp.hospital.test' }, /must be https/],
      [{ XRAY_OIDC_SCOPES: 'profile email' }, /must include openid/],
      [{ XRAY_OIDC_REDIRECT_URL: 'https://xray.hospital.test/callback' }, /ending in \/auth\/callback/],
      [{ XRAY_OIDC_REDIRECT_URL: 'http://xray.hospital.test/auth/callback' }, /plain http on a non-loopback host/],
      [{ XRAY_HOST: '0.0.0.0' }, /XRAY_OIDC_REDIRECT_URL must be set/],
      [{ XRAY_OIDC_ISSUER: '', XRAY_OIDC_CLIENT_ID: 'x' }, /XRAY_OIDC_ISSUER is empty/],
    ];
    for (const [change, message] of bad) {
      assert.throws(() => loadConfig({ ...base, ...change }), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(change));
    }
  });
});
