import { ConfigError } from './errors.js';
import type { RawConfig } from './schema.js';
import { ROLES, type Role } from '../auth/roles.js';

/** Sessions of people signed in through the web UI (XRAY_SESSION_*): verified by the gateway and every service. */
export interface SessionSettings {
  /** Shared secret the session keys are derived from (>= 32 characters). */
  readonly secret: string;
  readonly ttlSeconds: number;
  /** Sessions are renewed at most this long after signing in. */
  readonly maxAgeSeconds: number;
}

/** Sign-in at the hospital's identity provider (XRAY_OIDC_*): authorization code + PKCE on the gateway. */
export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** '' = a public client (PKCE only). */
  readonly clientSecret: string;
  readonly redirectUrl: string;
  readonly scopes: string;
  /** Claim (dotted path) holding groups or roles. */
  readonly roleClaim: string;
  /** Identity-provider group → platform role. */
  readonly roleMap: Readonly<Record<string, Role>>;
  /** Plain http to the identity provider is allowed (loopback issuers only, for tests). */
  readonly allowHttp: boolean;
  /** Cookies get Secure: the browser reaches the gateway over https. */
  readonly secureCookies: boolean;
}

const LOOPBACK = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i;

/** `group=role,…` → a map; every role must be one of the platform's. */
export function parseRoleMap(value: string): Record<string, Role> {
  const map: Record<string, Role> = {};
  for (const pair of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.lastIndexOf('=');
    const group = eq > 0 ? pair.slice(0, eq).trim() : '';
    const role = eq > 0 ? pair.slice(eq + 1).trim() : '';
    if (!group || !(ROLES as readonly string[]).includes(role)) {
      throw new ConfigError(`XRAY_OIDC_ROLE_MAP: '${pair}' is not group=role with role one of ${ROLES.join(', ')}`);
    }
    map[group] = role as Role;
  }
  return map;
}

export function sessionSettings(raw: RawConfig): SessionSettings | null {
  if (!raw.XRAY_SESSION_SECRET) return null;
  if (raw.XRAY_SESSION_SECRET.length < 32) throw new ConfigError('XRAY_SESSION_SECRET must be at least 32 characters (e.g. openssl rand -base64 48)');
  if (raw.XRAY_SESSION_MAX_AGE_S < raw.XRAY_SESSION_TTL_S) throw new ConfigError('XRAY_SESSION_MAX_AGE_S must not be shorter than XRAY_SESSION_TTL_S');
  return Object.freeze({ secret: raw.XRAY_SESSION_SECRET, ttlSeconds: raw.XRAY_SESSION_TTL_S, maxAgeSeconds: raw.XRAY_SESSION_MAX_AGE_S });
}

/**
 * The OIDC settings, or null when XRAY_OIDC_ISSUER is empty.
 * @throws ConfigError naming the variable to fix.
 */
export function oidcSettings(raw: RawConfig, opts: { tls: boolean; hsts: boolean }): OidcSettings | null {
  if (!raw.XRAY_OIDC_ISSUER) {
    for (const name of ['XRAY_OIDC_CLIENT_ID', 'XRAY_OIDC_CLIENT_SECRET', 'XRAY_OIDC_ROLE_MAP', 'XRAY_OIDC_REDIRECT_URL'] as const) {
      if (raw[name]) throw new ConfigError(`${name} is set but XRAY_OIDC_ISSUER is empty; set the issuer to turn on sign-in`);
    }
    return null;
  }
  let issuer: URL;
  try {
    issuer = new URL(raw.XRAY_OIDC_ISSUER);
  } catch {
    throw new ConfigError(`XRAY_OIDC_ISSUER: '${raw.XRAY_OIDC_ISSUER}' is not a URL`);
  }
  const allowHttp = issuer.protocol === 'http:' && LOOPBACK.test(issuer.hostname);
  if (issuer.protocol !== 'https:' && !allowHttp) throw new ConfigError(`XRAY_OIDC_ISSUER: '${raw.XRAY_OIDC_ISSUER}' must be https (plain http only on loopback, for tests)`);
  if (!raw.XRAY_AUTH) throw new ConfigError('XRAY_OIDC_ISSUER needs XRAY_AUTH=on: with auth off every caller is already the local admin, so signing in would protect nothing');
  if (!raw.XRAY_OIDC_CLIENT_ID) throw new ConfigError('XRAY_OIDC_ISSUER needs XRAY_OIDC_CLIENT_ID (the client registered at the identity provider)');
  if (!raw.XRAY_SESSION_SECRET) throw new ConfigError('XRAY_OIDC_ISSUER needs XRAY_SESSION_SECRET (>= 32 characters, the same on the gateway and every service) to sign sessions');
  const roleMap = parseRoleMap(raw.XRAY_OIDC_ROLE_MAP);
  if (Object.keys(roleMap).length === 0) throw new ConfigError('XRAY_OIDC_ISSUER needs XRAY_OIDC_ROLE_MAP (e.g. "radiologists=clinician,ml=ml-engineer,it=admin"); without it nobody could sign in');
  if (!raw.XRAY_OIDC_SCOPES.split(/\s+/).includes('openid')) throw new ConfigError(`XRAY_OIDC_SCOPES: '${raw.XRAY_OIDC_SCOPES}' must include openid`);
  let redirect: URL;
  const given = raw.XRAY_OIDC_REDIRECT_URL;
  if (given) {
    try {
      redirect = new URL(given);
    } catch {
      throw new ConfigError(`XRAY_OIDC_REDIRECT_URL: '${given}' is not a URL`);
    }
  } else {
    if (raw.XRAY_HOST === '0.0.0.0' || raw.XRAY_HOST === '::') {
      throw new ConfigError(`XRAY_OIDC_REDIRECT_URL must be set when XRAY_HOST=${raw.XRAY_HOST}: the address browsers use for the gateway, + /auth/callback`);
    }
    const host = raw.XRAY_HOST.includes(':') ? `[${raw.XRAY_HOST}]` : raw.XRAY_HOST;
    redirect = new URL(`${opts.tls ? 'https' : 'http'}://${host}:${raw.XRAY_PORT_GATEWAY}/auth/callback`);
  }
  if ((redirect.protocol !== 'https:' && redirect.protocol !== 'http:') || !redirect.pathname.endsWith('/auth/callback') || redirect.search || redirect.hash) {
    throw new ConfigError(`XRAY_OIDC_REDIRECT_URL: '${redirect.href}' must be an http(s) URL ending in /auth/callback, without query or fragment`);
  }
  if (redirect.protocol === 'http:' && !LOOPBACK.test(redirect.hostname) && !opts.hsts) {
    throw new ConfigError(`XRAY_OIDC_REDIRECT_URL: '${redirect.href}' is plain http on a non-loopback host; session cookies would cross the network in clear. Use https (XRAY_TLS_CERT_FILE or a TLS proxy with XRAY_HSTS=on)`);
  }
  return Object.freeze({
    // The issuer identifier is compared exactly with the provider's (trailing slash included).
    issuer: raw.XRAY_OIDC_ISSUER,
    clientId: raw.XRAY_OIDC_CLIENT_ID,
    clientSecret: raw.XRAY_OIDC_CLIENT_SECRET,
    redirectUrl: redirect.href,
    scopes: raw.XRAY_OIDC_SCOPES.split(/\s+/).filter(Boolean).join(' '),
    roleClaim: raw.XRAY_OIDC_ROLE_CLAIM,
    roleMap: Object.freeze(roleMap),
    allowHttp,
    secureCookies: opts.tls || opts.hsts || redirect.protocol === 'https:',
  });
}
