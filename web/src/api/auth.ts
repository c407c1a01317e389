import type { AuthConfig, LogoutResult, SessionInfo } from '../../../src/gateway/auth-schemas.js';

/**
 * Sign-in with the hospital's identity provider, through the gateway's /auth/* routes
 * (src/gateway/oidc.ts). The session lives in an HttpOnly cookie page scripts never see; this
 * module only knows who is signed in (GET /auth/me), renews the session (POST /auth/refresh,
 * once for any number of requests that got 401 at the same time) and signs out.
 */

export type { AuthConfig, SessionInfo };

let config: AuthConfig | null = null;
let session: SessionInfo | null = null;
const listeners = new Set<() => void>();

function publish(next: SessionInfo | null): void {
  session = next;
  for (const fn of listeners) fn();
}

export function getSession(): SessionInfo | null {
  return session;
}

/** Called when the signed-in person changes (sign-in, renewal, sign-out). */
export function onSessionChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether sign-in with an identity provider is configured (fetched once). */
export async function loadAuthConfig(): Promise<AuthConfig> {
  if (config) return config;
  try {
    const res = await fetch('/auth/config', { headers: { accept: 'application/json' } });
    config = res.ok ? ((await res.json()) as AuthConfig) : { auth: false, oidc: false };
  } catch {
    config = { auth: false, oidc: false };
  }
  return config;
}

/** True once /auth/config said sign-in is configured. */
export function sessionsEnabled(): boolean {
  return config?.oidc === true;
}

/** Who is signed in (null: nobody, or the session ended). */
export async function loadSession(): Promise<SessionInfo | null> {
  const res = await fetch('/auth/me', { headers: { accept: 'application/json' } }).catch(() => null);
  publish(res?.ok ? ((await res.json()) as SessionInfo) : null);
  return session;
}

let renewing: Promise<boolean> | null = null;

/** Renews the session at the identity provider; true when a new session cookie was set. */
export function renewSession(): Promise<boolean> {
  renewing ??= (async () => {
    try {
      const res = await fetch('/auth/refresh', { method: 'POST', headers: { accept: 'application/json' } });
      publish(res.ok ? ((await res.json()) as SessionInfo) : null);
      return res.ok;
    } catch {
      return false;
    } finally {
      setTimeout(() => {
        renewing = null;
      }, 0);
    }
  })();
  return renewing;
}

/** Where the "Sign in with your hospital account" link goes: back to `returnTo` afterwards. */
export function signInUrl(returnTo: string): string {
  return `/auth/login?return_to=${encodeURIComponent(returnTo)}`;
}

/**
 * Ends the session here, then sends the browser to the identity provider to end its session too
 * (RP-initiated logout; it comes back to the platform's start page) or, without one, to '/'.
 */
export async function signOut(): Promise<void> {
  const res = await fetch('/auth/logout', { method: 'POST', headers: { accept: 'application/json' } }).catch(() => null);
  publish(null);
  const body = res?.ok ? ((await res.json()) as LogoutResult) : null;
  window.location.assign(body?.logout_url ?? '/');
}
