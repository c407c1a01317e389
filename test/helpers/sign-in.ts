import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testConfig, type Config, type ServiceName } from '../../src/core/config/index.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { freePort } from './process.js';
import { startTestIdp, type TestIdp } from './test-idp.js';

export const SESSION_SECRET = 'test-session-secret-0123456789abcdef-0123456789';
export const ADMIN_KEY = 'xk_test_admin_key_for_the_sign_in_suite_0123456789';
export const ROLE_MAP = 'radiologists=clinician,ml=ml-engineer,it=admin';

/** The platform with auth on and sign-in at a real OIDC provider; the gateway on a port known beforehand (the provider's registered redirect URI). */
export interface SignInPlatform {
  gateway: string;
  idp: TestIdp;
  config: Config;
  running: RunningPlatform;
  gatewayApp: FastifyInstance;
  close(): Promise<void>;
}

export async function startSignInPlatform(overrides: Record<string, string> = {}, idpOptions: { refreshTokenTtlS?: number } = {}): Promise<SignInPlatform> {
  const home = mkdtempSync(path.join(tmpdir(), 'xray-signin-'));
  const port = await freePort();
  const gateway = `http://127.0.0.1:${port}`;
  const idp = await startTestIdp({ redirectUri: `${gateway}/auth/callback`, postLogoutRedirectUri: `${gateway}/`, ...idpOptions });
  const config = testConfig(home, {
    XRAY_AUTH: 'on',
    XRAY_ADMIN_KEY: ADMIN_KEY,
    XRAY_OIDC_ISSUER: idp.issuer,
    XRAY_OIDC_CLIENT_ID: idp.clientId,
    XRAY_OIDC_CLIENT_SECRET: idp.clientSecret,
    XRAY_OIDC_REDIRECT_URL: `${gateway}/auth/callback`,
    XRAY_OIDC_SCOPES: 'openid profile email groups offline_access',
    XRAY_OIDC_ROLE_MAP: ROLE_MAP,
    XRAY_SESSION_SECRET: SESSION_SECRET,
    ...overrides,
  });
  const running = await startPlatform({ config, randomPorts: true, gateway: false });
  const serviceUrls = { ...config.serviceUrls } as Record<ServiceName, string>;
  for (const [name, url] of Object.entries(running.urls)) serviceUrls[name as ServiceName] = url;
  const gatewayApp = await buildGatewayApp({ ...config, serviceUrls }, running.platform.logger, { audit: running.platform.audit, cache: running.platform.cache });
  await gatewayApp.listen({ host: '127.0.0.1', port });
  return {
    gateway,
    idp,
    config,
    running,
    gatewayApp,
    async close() {
      await gatewayApp.close();
      await running.close();
      await idp.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Cookies per host (paths and expiry beyond Max-Age=0 are not needed here). */
export class CookieJar {
  readonly #hosts = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const host = new URL(url).host;
    const jar = this.#hosts.get(host) ?? new Map<string, string>();
    this.#hosts.set(host, jar);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (!value || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a))) jar.delete(name);
      else jar.set(name, value);
    }
  }

  get(url: string, name: string): string | undefined {
    return this.#hosts.get(new URL(url).host)?.get(name);
  }

  set(url: string, name: string, value: string | undefined): void {
    const host = new URL(url).host;
    const jar = this.#hosts.get(host) ?? new Map<string, string>();
    this.#hosts.set(host, jar);
    if (value === undefined) jar.delete(name);
    else jar.set(name, value);
  }

  header(url: string): string {
    return [...(this.#hosts.get(new URL(url).host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** fetch with this jar, never following redirects. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(url, res);
    return res;
  }
}

/**
 * Starts a sign-in at the gateway and completes the provider's login and consent pages as a
 * browser would (form posts, redirects, cookies), up to the redirect back to the gateway's
 * callback — which is returned, not called. `start` is the authorization URL the gateway sent to.
 */
export async function authorizeAtIdp(gateway: string, login: string, jar: CookieJar, returnTo = '/'): Promise<{ callbackUrl: string; authorizationUrl: string }> {
  const first = await jar.fetch(`${gateway}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  if (first.status !== 302) throw new Error(`/auth/login answered ${first.status}: ${await first.text()}`);
  const authorizationUrl = first.headers.get('location')!;
  let url = authorizationUrl;
  let init: RequestInit = {};
  for (let step = 0; step < 20; step++) {
    const res = await jar.fetch(url, init);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href;
      if (next.startsWith(`${gateway}/auth/callback`)) return { callbackUrl: next, authorizationUrl };
      url = next;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`the provider answered ${res.status} at ${url}: ${html.slice(0, 500)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`no interaction form at ${url}: ${html.slice(0, 500)}`);
    const form = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      form.set('login', login);
      form.set('password', 'any password');
    }
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() };
  }
  throw new Error('the provider did not redirect back to the gateway');
}

/** A full sign-in without a browser; returns the callback's answer (the jar holds the session). */
export async function signInWithFetch(gateway: string, login: string, jar: CookieJar, returnTo = '/'): Promise<Response> {
  const { callbackUrl } = await authorizeAtIdp(gateway, login, jar, returnTo);
  return jar.fetch(callbackUrl, { headers: { accept: 'application/json' } });
}
