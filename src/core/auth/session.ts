import { hkdfSync, randomUUID } from 'node:crypto';
import { EncryptJWT, SignJWT, jwtDecrypt, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { ROLES, type Role } from './roles.js';

/**
 * Sessions of people signed in through the hospital's identity provider (the gateway's /auth/*).
 * A session is a short-lived HS256 JWT in the `xray_session` cookie (HttpOnly, SameSite=Strict,
 * Secure behind TLS). The gateway signs it after the OIDC callback; every service verifies it
 * itself with a key derived from XRAY_SESSION_SECRET, so a browser cannot forge a session and no
 * header set by the gateway is trusted. Three keys are derived from the one secret (HKDF-SHA256),
 * one per purpose, so a login-state cookie can never pass as a session or the other way round.
 */

export const SESSION_COOKIE = 'xray_session';
/** The encrypted refresh cookie (Path=/auth): the identity provider's refresh and ID tokens. */
export const REFRESH_COOKIE = 'xray_refresh';
/** The signed login-state cookie (Path=/auth/callback): state, nonce, PKCE verifier. */
export const LOGIN_COOKIE = 'xray_login';

const SESSION_ISSUER = 'xray-gateway';
const SESSION_AUDIENCE = 'xray-platform';

export interface SessionKeys {
  /** Signs and verifies session JWTs (gateway and services). */
  readonly session: Uint8Array;
  /** Signs the login-state cookie (gateway only). */
  readonly login: Uint8Array;
  /** Encrypts the refresh cookie (gateway only). */
  readonly refresh: Uint8Array;
}

/** Derives the purpose keys from XRAY_SESSION_SECRET. */
export function deriveSessionKeys(secret: string): SessionKeys {
  const derive = (info: string) => new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), info, 32));
  return Object.freeze({ session: derive('xray session v1'), login: derive('xray login state v1'), refresh: derive('xray refresh cookie v1') });
}

/** Who a session is for. */
export interface SessionUser {
  /** `oidc:<subject at the identity provider>`. */
  id: string;
  name: string;
  email?: string;
  role: Role;
  /** The groups that gave the role (informational). */
  groups: string[];
  /** One id per sign-in, kept across refreshes (audit correlation). */
  sid: string;
  /** When the person signed in at the identity provider (epoch seconds); refresh stops after XRAY_SESSION_MAX_AGE_S. */
  authTime: number;
}

/** Signs a session for `ttlSeconds`; a fresh `jti` each time, so a refresh always rotates it. */
export async function signSession(key: Uint8Array, user: SessionUser, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ name: user.name, email: user.email, role: user.role, groups: user.groups, sid: user.sid, auth_time: user.authTime })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(SESSION_ISSUER)
    .setAudience(SESSION_AUDIENCE)
    .setSubject(user.id)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(key);
  return { token, expiresAt: now + ttlSeconds };
}

/**
 * Verifies a session JWT: HS256 only, issuer, audience, expiry (5 s clock tolerance), a known role.
 * Returns the user and expiry, or why it is refused.
 */
export async function verifySession(key: Uint8Array, token: string): Promise<{ user: SessionUser; expiresAt: number } | { problem: string }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: SESSION_ISSUER, audience: SESSION_AUDIENCE, clockTolerance: 5, requiredClaims: ['exp', 'iat', 'sub'] }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { problem: 'the session has expired; sign in again' };
    return { problem: 'the session is not valid; sign in again' };
  }
  const role = payload.role;
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return { problem: 'the session carries no valid role' };
  return {
    user: {
      id: String(payload.sub),
      name: typeof payload.name === 'string' ? payload.name : String(payload.sub),
      email: typeof payload.email === 'string' ? payload.email : undefined,
      role: role as Role,
      groups: Array.isArray(payload.groups) ? payload.groups.map(String) : [],
      sid: typeof payload.sid === 'string' ? payload.sid : '',
      authTime: typeof payload.auth_time === 'number' ? payload.auth_time : Number(payload.iat),
    },
    expiresAt: Number(payload.exp),
  };
}

/** What the callback needs to finish a sign-in, kept in the signed login cookie for 10 minutes. */
export interface LoginState {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Same-origin path to land on after signing in. */
  returnTo: string;
}

export const LOGIN_STATE_TTL_S = 600;

export async function signLoginState(key: Uint8Array, state: LoginState): Promise<string> {
  return new SignJWT({ state: state.state, nonce: state.nonce, cv: state.codeVerifier, rt: state.returnTo })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(SESSION_ISSUER)
    .setAudience('xray-login')
    .setIssuedAt()
    .setExpirationTime(`${LOGIN_STATE_TTL_S}s`)
    .sign(key);
}

export async function verifyLoginState(key: Uint8Array, token: string): Promise<LoginState | null> {
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: SESSION_ISSUER, audience: 'xray-login' });
    if (typeof payload.state !== 'string' || typeof payload.nonce !== 'string' || typeof payload.cv !== 'string') return null;
    return { state: payload.state, nonce: payload.nonce, codeVerifier: payload.cv, returnTo: typeof payload.rt === 'string' ? payload.rt : '/' };
  } catch {
    return null;
  }
}

/** The identity provider's tokens the gateway keeps for refresh and logout, encrypted in the refresh cookie. */
export interface RefreshState {
  /** The IdP refresh token ('' = none was issued: sessions end at their TTL). */
  refreshToken: string;
  /** The last ID token (id_token_hint for RP-initiated logout). */
  idToken: string;
  /** The session's user as last mapped (kept to carry sid and authTime over). */
  sub: string;
  sid: string;
  authTime: number;
}

/** Encrypts (A256GCM, direct key) the refresh state; expires `maxAge` seconds after signing in. */
export async function sealRefreshState(key: Uint8Array, state: RefreshState, expiresAt: number): Promise<string> {
  return new EncryptJWT({ rt: state.refreshToken, idt: state.idToken, sid: state.sid, auth_time: state.authTime })
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setIssuer(SESSION_ISSUER)
    .setAudience('xray-refresh')
    .setSubject(state.sub)
    .setIssuedAt()
    .setExpirationTime(expiresAt)
    .encrypt(key);
}

export async function openRefreshState(key: Uint8Array, token: string): Promise<RefreshState | null> {
  try {
    const { payload } = await jwtDecrypt(token, key, { issuer: SESSION_ISSUER, audience: 'xray-refresh', keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    return {
      refreshToken: typeof payload.rt === 'string' ? payload.rt : '',
      idToken: typeof payload.idt === 'string' ? payload.idt : '',
      sub: String(payload.sub ?? ''),
      sid: typeof payload.sid === 'string' ? payload.sid : '',
      authTime: typeof payload.auth_time === 'number' ? payload.auth_time : 0,
    };
  } catch {
    return null;
  }
}

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  if (!header) return null;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value || null;
    }
  }
  return null;
}

export interface CookieOptions {
  path: string;
  maxAge: number;
  sameSite: 'Strict' | 'Lax';
  secure: boolean;
}

/** A Set-Cookie value: always HttpOnly; Max-Age 0 deletes it. */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  return `${name}=${value}; Path=${opts.path}; Max-Age=${Math.max(0, Math.floor(opts.maxAge))}; HttpOnly; SameSite=${opts.sameSite}${opts.secure ? '; Secure' : ''}`;
}

/** A session JWT's shape (three base64url parts, a JSON header): an Authorization bearer like this is a session, not an API key. */
export function looksLikeJwt(value: string): boolean {
  return /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(value);
}
