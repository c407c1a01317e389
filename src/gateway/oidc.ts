import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import * as oidc from 'openid-client';
import type { Logger } from 'pino';
import type { Config, OidcSettings, SessionSettings } from '../core/config/index.js';
import { AppError } from '../core/errors.js';
import type { AuthConfig, LogoutResult, SessionInfo } from './auth-schemas.js';
import { toErrorBody } from '../core/http/error-handler.js';
import type { Role } from '../core/auth/roles.js';
import { isAuditedCount } from '../core/auth/auth-guard.js';
import type { AuditLog } from '../core/audit/index.js';
import type { Cache } from '../core/cache/index.js';
import {
  LOGIN_COOKIE,
  LOGIN_STATE_TTL_S,
  REFRESH_COOKIE,
  SESSION_COOKIE,
  deriveSessionKeys,
  openRefreshState,
  readCookie,
  sealRefreshState,
  serializeCookie,
  signLoginState,
  signSession,
  verifyLoginState,
  verifySession,
  type SessionKeys,
  type SessionUser,
} from '../core/auth/session.js';

/**
 * Sign-in for people (OpenID Connect authorization code + PKCE, openid-client) on the gateway:
 *
 * - `GET /auth/login` sends the browser to the identity provider with state, nonce and a PKCE
 *   challenge; the state, nonce and verifier wait in a signed, HttpOnly cookie on /auth/callback
 *   (SameSite=Lax: it must come back on the provider's top-level redirect) for 10 minutes.
 * - `GET /auth/callback` lets openid-client check state and issuer, exchange the code with the
 *   verifier and validate the ID token (signature, issuer, audience, nonce, expiry); the role is
 *   the highest one XRAY_OIDC_ROLE_MAP gives the groups in XRAY_OIDC_ROLE_CLAIM (from the ID
 *   token, else from userinfo). No mapped group: 403, nobody is signed in.
 * - The session is a signed JWT (HS256, XRAY_SESSION_TTL_S) in `xray_session` (HttpOnly,
 *   SameSite=Strict, Secure behind TLS), verified by every service itself. The provider's refresh
 *   and ID tokens never reach page scripts or the services: they are encrypted (A256GCM) into the
 *   `xray_refresh` cookie, sent only to /auth. Nothing is stored server-side, so replicas need
 *   only the shared secret.
 * - `POST /auth/refresh` asks the provider again (refresh token grant; a role is mapped afresh,
 *   so a person removed from a group loses it at the next refresh) and rotates both cookies;
 *   `POST /auth/logout` clears them, revokes the refresh token where the provider can, and
 *   answers the provider's end-session URL for RP-initiated logout; `GET /auth/me` says who is
 *   signed in.
 */
export interface SignInOptions {
  config: Config;
  logger: Logger;
  /** Sign-ins (success and refusal) and sign-outs are recorded here: who, role, session id — never a token. */
  audit?: AuditLog;
  /** Counts refused sign-ins per address, so a flood of them is a few audit rows (the 1st, 10th, 100th …). */
  cache?: Cache;
}

const ROLE_ORDER: Role[] = ['admin', 'ml-engineer', 'clinician', 'viewer'];

/** A same-origin path to land on after signing in; anything else becomes '/'. */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 512) return '/';
  if (!value.startsWith('/') || value.startsWith('//') || value.includes('\\') || [...value].some((c) => c.charCodeAt(0) < 0x20)) return '/';
  if (value.startsWith('/auth/')) return '/';
  return value;
}

/** The claim at `path`: the exact claim name first (URL-like names hold dots), then a dotted path. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** The groups in a claim value: a list of strings, or one string of space/comma separated names. */
export function groupsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** The highest role the groups map to, and the groups that did; null when none maps. */
export function roleFor(groups: string[], roleMap: Readonly<Record<string, Role>>): { role: Role; groups: string[] } | null {
  const mapped = groups.filter((g) => Object.hasOwn(roleMap, g));
  if (mapped.length === 0) return null;
  const role = ROLE_ORDER.find((r) => mapped.some((g) => roleMap[g] === r))!;
  return { role, groups: mapped };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function wantsHtml(req: FastifyRequest): boolean {
  return /text\/html/.test(String(req.headers.accept ?? ''));
}

/** A refusal on a browser route: a small page for a browser (no script), the JSON envelope otherwise. */
function refuse(req: FastifyRequest, reply: FastifyReply, err: AppError): FastifyReply {
  const { status, body } = toErrorBody(err);
  void reply.header('cache-control', 'no-store');
  if (!wantsHtml(req)) return reply.status(status).send(body);
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in refused · xray-mlops</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Sign-in refused</h1><p data-testid="sign-in-error" data-code="${escapeHtml(body.error.code)}">${escapeHtml(body.error.message)}</p>
<p><a href="/auth/login">Try again</a> · <a href="/">Back to xray-mlops</a></p></main></body></html>`;
  return reply.status(status).type('text/html; charset=utf-8').send(page);
}

class SignIn {
  readonly #oidc: OidcSettings;
  readonly #session: SessionSettings;
  readonly #keys: SessionKeys;
  readonly #logger: Logger;
  #discovered: Promise<oidc.Configuration> | null = null;

  constructor(settings: OidcSettings, session: SessionSettings, logger: Logger) {
    this.#oidc = settings;
    this.#session = session;
    this.#keys = deriveSessionKeys(session.secret);
    this.#logger = logger;
  }

  get settings(): OidcSettings {
    return this.#oidc;
  }

  /** The provider's metadata, discovered at first use (retried after a failure, not cached). */
  async provider(): Promise<oidc.Configuration> {
    this.#discovered ??= oidc
      .discovery(
        new URL(this.#oidc.issuer),
        this.#oidc.clientId,
        { redirect_uris: [this.#oidc.redirectUrl], response_types: ['code'] },
        this.#oidc.clientSecret ? oidc.ClientSecretBasic(this.#oidc.clientSecret) : oidc.None(),
        { timeout: 10, execute: this.#oidc.allowHttp ? [oidc.allowInsecureRequests] : [] },
      )
      .catch((err: unknown) => {
        this.#discovered = null;
        this.#logger.warn({ err }, 'OIDC discovery failed');
        throw new AppError('SERVICE_UNAVAILABLE', `the identity provider at ${this.#oidc.issuer} cannot be reached; try again shortly`);
      });
    return this.#discovered;
  }

  cookie(name: string, value: string, path: string, maxAge: number, sameSite: 'Strict' | 'Lax' = 'Strict'): string {
    return serializeCookie(name, value, { path, maxAge, sameSite, secure: this.#oidc.secureCookies });
  }

  cleared(): string[] {
    return [this.cookie(SESSION_COOKIE, '', '/', 0), this.cookie(REFRESH_COOKIE, '', '/auth', 0)];
  }

  async loginRedirect(returnTo: string): Promise<{ url: string; cookie: string }> {
    const provider = await this.provider();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(provider, {
      redirect_uri: this.#oidc.redirectUrl,
      scope: this.#oidc.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const token = await signLoginState(this.#keys.login, { state, nonce, codeVerifier, returnTo });
    return { url: url.href, cookie: this.cookie(LOGIN_COOKIE, token, '/auth/callback', LOGIN_STATE_TTL_S, 'Lax') };
  }

  /** Maps the provider's claims (ID token, else userinfo) to a user, or refuses with 403. */
  async #user(provider: oidc.Configuration, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, previous: { sub: string; sid: string; authTime: number } | null): Promise<SessionUser> {
    const idClaims = tokens.claims() as Record<string, unknown> | undefined;
    const sub = String(idClaims?.sub ?? previous?.sub ?? '');
    if (!sub) throw new AppError('UNAUTHENTICATED', 'the identity provider returned no ID token subject');
    let claims: Record<string, unknown> = idClaims ?? {};
    if ((!idClaims || claimAt(idClaims, this.#oidc.roleClaim) === undefined) && tokens.access_token && provider.serverMetadata().userinfo_endpoint) {
      const info = (await oidc.fetchUserInfo(provider, tokens.access_token, sub)) as Record<string, unknown>;
      claims = { ...info, ...claims, [this.#oidc.roleClaim]: claimAt(info, this.#oidc.roleClaim) };
    }
    const name = [claims.preferred_username, claims.email, claims.name].find((v): v is string => typeof v === 'string' && v.length > 0) ?? sub;
    const mapped = roleFor(groupsOf(claimAt(claims, this.#oidc.roleClaim)), this.#oidc.roleMap);
    if (!mapped) {
      this.#logger.warn({ user: name }, 'sign-in refused: no group maps to a role');
      throw new AppError(
        'FORBIDDEN',
        `${name} is signed in at the identity provider but is in no group that gives access to this platform (claim '${this.#oidc.roleClaim}'; groups with access: ${Object.keys(this.#oidc.roleMap).join(', ')}). Ask the platform's administrators.`,
        { reason: 'NO_MAPPED_GROUP' },
      );
    }
    return {
      id: `oidc:${sub}`,
      name,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      role: mapped.role,
      groups: mapped.groups,
      sid: previous?.sid || randomUUID(),
      authTime: previous?.authTime || (typeof claims.auth_time === 'number' ? claims.auth_time : Math.floor(Date.now() / 1000)),
    };
  }

  /** Session + refresh cookies for a user and the provider's latest tokens. */
  async #issue(user: SessionUser, refreshToken: string, idToken: string): Promise<{ cookies: string[]; expiresAt: number }> {
    const endOfSignIn = user.authTime + this.#session.maxAgeSeconds;
    const now = Math.floor(Date.now() / 1000);
    const ttl = Math.max(1, Math.min(this.#session.ttlSeconds, endOfSignIn - now));
    const { token, expiresAt } = await signSession(this.#keys.session, user, ttl);
    const sealed = await sealRefreshState(this.#keys.refresh, { refreshToken, idToken, sub: user.id.replace(/^oidc:/, ''), sid: user.sid, authTime: user.authTime }, endOfSignIn);
    return { cookies: [this.cookie(SESSION_COOKIE, token, '/', ttl), this.cookie(REFRESH_COOKIE, sealed, '/auth', endOfSignIn - now)], expiresAt };
  }

  async callback(req: FastifyRequest): Promise<{ user: SessionUser; cookies: string[]; returnTo: string; expiresAt: number }> {
    const stateCookie = readCookie(req.headers.cookie, LOGIN_COOKIE);
    const login = stateCookie ? await verifyLoginState(this.#keys.login, stateCookie) : null;
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const params = new URLSearchParams(query);
    if (params.get('error')) {
      const description = params.get('error_description');
      throw new AppError('UNAUTHENTICATED', `the identity provider did not sign you in: ${params.get('error')}${description ? ` (${description.slice(0, 300)})` : ''}`);
    }
    if (!login) throw new AppError('BAD_REQUEST', 'this sign-in was not started in this browser or took longer than 10 minutes; start again', { reason: 'LOGIN_STATE_MISSING' });
    const provider = await this.provider();
    const current = new URL(this.#oidc.redirectUrl);
    current.search = query;
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(provider, current, { pkceCodeVerifier: login.codeVerifier, expectedState: login.state, expectedNonce: login.nonce, idTokenExpected: true });
    } catch (err) {
      const e = err as Error & { code?: string; error?: string; error_description?: string; cause?: unknown };
      const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
      const why = e.error ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}` : `${e.message}${cause}`;
      this.#logger.warn({ err: { message: e.message, code: e.code, error: e.error, why } }, 'OIDC callback refused');
      throw new AppError('UNAUTHENTICATED', `the sign-in answer was refused (${why}); start again`, { reason: 'CALLBACK_REFUSED' });
    }
    const user = await this.#user(provider, tokens, null);
    const issued = await this.#issue(user, tokens.refresh_token ?? '', tokens.id_token ?? '');
    this.#logger.info({ user: user.name, role: user.role, sid: user.sid }, 'signed in');
    return { user, cookies: [...issued.cookies, this.cookie(LOGIN_COOKIE, '', '/auth/callback', 0, 'Lax')], returnTo: login.returnTo, expiresAt: issued.expiresAt };
  }

  async refresh(req: FastifyRequest): Promise<{ user: SessionUser; cookies: string[]; expiresAt: number }> {
    const sealed = readCookie(req.headers.cookie, REFRESH_COOKIE);
    const state = sealed ? await openRefreshState(this.#keys.refresh, sealed) : null;
    if (!state) throw new AppError('UNAUTHENTICATED', 'no sign-in to renew (or it is older than XRAY_SESSION_MAX_AGE_S); sign in again');
    if (!state.refreshToken) throw new AppError('UNAUTHENTICATED', 'the identity provider issued no refresh token for this sign-in; sign in again');
    const provider = await this.provider();
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.refreshTokenGrant(provider, state.refreshToken);
    } catch (err) {
      const e = err as Error & { error?: string };
      this.#logger.info({ err: { message: e.message, error: e.error } }, 'OIDC refresh refused');
      throw new AppError('UNAUTHENTICATED', `the identity provider ended this sign-in (${e.error ?? e.message}); sign in again`);
    }
    const idClaims = tokens.claims();
    if (idClaims && idClaims.sub !== state.sub) throw new AppError('UNAUTHENTICATED', 'the identity provider answered for another person; sign in again');
    const user = await this.#user(provider, tokens, state);
    const issued = await this.#issue(user, tokens.refresh_token ?? state.refreshToken, tokens.id_token ?? state.idToken);
    return { user, ...issued };
  }

  /** Clears the cookies; revokes the refresh token and returns the end-session URL where the provider has them. */
  async logout(req: FastifyRequest): Promise<{ cookies: string[]; logoutUrl: string | null; who: { id: string; name: string; sid: string } | null }> {
    const sealed = readCookie(req.headers.cookie, REFRESH_COOKIE);
    const state = sealed ? await openRefreshState(this.#keys.refresh, sealed) : null;
    const session = await this.me(req).catch(() => null);
    const who = session ? { id: session.user.id, name: session.user.name, sid: session.user.sid } : state ? { id: `oidc:${state.sub}`, name: `oidc:${state.sub}`, sid: state.sid } : null;
    let logoutUrl: string | null = null;
    if (state) {
      const provider = await this.provider().catch(() => null);
      const meta = provider?.serverMetadata();
      if (provider && state.refreshToken && meta?.revocation_endpoint) {
        await oidc.tokenRevocation(provider, state.refreshToken, { token_type_hint: 'refresh_token' }).catch((err: unknown) => this.#logger.warn({ err }, 'could not revoke the refresh token at the identity provider'));
      }
      if (provider && meta?.end_session_endpoint) {
        const params: Record<string, string> = { post_logout_redirect_uri: `${new URL(this.#oidc.redirectUrl).origin}/`, client_id: this.#oidc.clientId };
        if (state.idToken) params.id_token_hint = state.idToken;
        logoutUrl = oidc.buildEndSessionUrl(provider, params).href;
      }
    }
    return { cookies: this.cleared(), logoutUrl, who };
  }

  async me(req: FastifyRequest): Promise<{ user: SessionUser; expiresAt: number }> {
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (!token) throw new AppError('UNAUTHENTICATED', 'not signed in');
    const verified = await verifySession(this.#keys.session, token);
    if ('problem' in verified) throw new AppError('UNAUTHENTICATED', verified.problem);
    return verified;
  }
}

function userBody(user: SessionUser, expiresAt: number): SessionInfo {
  return { user: { id: user.id, name: user.name, email: user.email ?? null, role: user.role, groups: user.groups }, expires_at: new Date(expiresAt * 1000).toISOString() };
}

/** A state-changing /auth request carried by cookies must come from a page of ours (Origin present; a foreign one was refused already). */
function requireOrigin(req: FastifyRequest): void {
  if (req.headers.origin === undefined) throw new AppError('FORBIDDEN', 'this request must carry an Origin header (send it from the web UI)');
}

/** /auth/* on the gateway. Without XRAY_OIDC_ISSUER only GET /auth/config answers (oidc: false). */
async function signInRoutes(app: FastifyInstance, { config, logger, audit, cache }: SignInOptions): Promise<void> {
  const signIn = config.oidc && config.session ? new SignIn(config.oidc, config.session, logger.child({ component: 'sign-in' })) : null;
  const windowS = config.authGuard.windowSeconds;
  // The provider's error text comes from the query string (anyone can write it): only our own codes are recorded.
  const auditRefusal = async (req: FastifyRequest, err: unknown) => {
    const code = err instanceof AppError ? err.code : 'INTERNAL';
    const reason = err instanceof AppError ? ((err.details as { reason?: string } | undefined)?.reason ?? code) : code;
    const n = cache ? await cache.increment(`signin:fail:${req.ip}:${reason}`, windowS).catch(() => 1) : 1;
    if (!isAuditedCount(n)) return;
    audit?.record({ actor: 'anonymous', action: 'auth.sign_in', resource: 'oidc', outcome: code === 'FORBIDDEN' ? 'denied' : 'failure', requestId: req.id, service: 'gateway', details: { reason, code, ip: req.ip, count_in_window: n, window_s: windowS } });
  };
  const noStore = async (_req: FastifyRequest, reply: FastifyReply) => {
    void reply.header('cache-control', 'no-store');
  };
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/auth/')) await noStore(req, reply);
  });

  app.get('/auth/config', async (): Promise<AuthConfig> => ({ auth: config.auth, oidc: signIn !== null }));
  const need = (): SignIn => {
    if (!signIn) throw new AppError('NOT_FOUND', 'sign-in with an identity provider is not configured here (XRAY_OIDC_ISSUER); use an API key');
    return signIn;
  };

  app.get('/auth/login', async (req, reply) => {
    try {
      const s = need();
      const returnTo = safeReturnPath((req.query as Record<string, unknown>).return_to);
      // The callback's cookies belong to the redirect URL's host: start there.
      const canonical = new URL(s.settings.redirectUrl);
      if (req.headers.host && req.headers.host.toLowerCase() !== canonical.host.toLowerCase()) {
        return reply.redirect(`${canonical.origin}/auth/login?return_to=${encodeURIComponent(returnTo)}`, 302);
      }
      const { url, cookie } = await s.loginRedirect(returnTo);
      return reply.header('set-cookie', cookie).redirect(url, 302);
    } catch (err) {
      return refuse(req, reply, err instanceof AppError ? err : new AppError('INTERNAL', (err as Error).message));
    }
  });

  app.get('/auth/callback', async (req, reply) => {
    try {
      const result = await need().callback(req);
      const { user } = result;
      audit?.record({ actor: user.name, action: 'auth.sign_in', resource: `user:${user.id}`, outcome: 'success', requestId: req.id, service: 'gateway', details: { role: user.role, groups: user.groups, sid: user.sid, ip: req.ip } });
      return reply.header('set-cookie', result.cookies).redirect(result.returnTo, 302);
    } catch (err) {
      await auditRefusal(req, err);
      if (!(err instanceof AppError)) logger.error({ err }, 'sign-in callback failed');
      // A refused callback also drops its login state: a second try must start again.
      void reply.header('set-cookie', signIn ? signIn.cookie(LOGIN_COOKIE, '', '/auth/callback', 0, 'Lax') : []);
      return refuse(req, reply, err instanceof AppError ? err : new AppError('INTERNAL', 'sign-in failed'));
    }
  });

  app.post('/auth/refresh', async (req, reply) => {
    requireOrigin(req);
    const s = need();
    try {
      const result = await s.refresh(req);
      return reply.header('set-cookie', result.cookies).send(userBody(result.user, result.expiresAt));
    } catch (err) {
      // Ended at the provider, or no longer in a mapped group: the browser keeps nothing.
      if (err instanceof AppError && (err.code === 'UNAUTHENTICATED' || err.code === 'FORBIDDEN')) void reply.header('set-cookie', s.cleared());
      throw err;
    }
  });

  app.post('/auth/logout', async (req, reply) => {
    requireOrigin(req);
    const { cookies, logoutUrl, who } = await need().logout(req);
    if (who) audit?.record({ actor: who.name, action: 'auth.sign_out', resource: `user:${who.id}`, outcome: 'success', requestId: req.id, service: 'gateway', details: { sid: who.sid, ip: req.ip } });
    return reply.header('set-cookie', cookies).send({ signed_out: true, logout_url: logoutUrl } satisfies LogoutResult);
  });

  app.get('/auth/me', async (req) => {
    const { user, expiresAt } = await need().me(req);
    return userBody(user, expiresAt);
  });
}

export const signInPlugin = fp(signInRoutes, { name: 'gateway-sign-in', fastify: '5.x' });
