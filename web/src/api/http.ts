/**
 * The one HTTP helper every service client uses: relative `/api/<service>/…` URLs (the gateway
 * proxies them), the API key from session storage as `Authorization: Bearer` — or, signed in with
 * the hospital account, the session cookie the browser sends itself (renewed once on a 401) — and
 * the platform's error envelope `{ error: { code, message, details } }` turned into an {@link ApiError}.
 */
import { readErrorEnvelope } from '../../../src/core/http/error-envelope.js';
import { renewSession, sessionsEnabled } from './auth.js';

export type ServiceName = 'data-pipeline' | 'training' | 'model-registry' | 'deployment' | 'monitoring';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KEY_STORAGE = 'xray.apiKey';

export function getApiKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lives for this page only */
  }
  for (const fn of keyListeners) fn();
}

const unauthorizedListeners = new Set<(err: ApiError) => void>();
const keyListeners = new Set<() => void>();

/** Called whenever any API answers 401 (the app shows the login screen). */
export function onUnauthorized(fn: (err: ApiError) => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

/** Called when the stored API key changes (sign in / sign out). */
export function onApiKeyChange(fn: () => void): () => void {
  keyListeners.add(fn);
  return () => keyListeners.delete(fn);
}

export type QueryValue = string | number | boolean | null | undefined;

export function apiPath(service: ServiceName, path: string, query?: object): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {}) as [string, QueryValue][]) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return `/api/${service}${path}${s ? `?${s}` : ''}`;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Query parameters; undefined, null and empty values are left out. */
  query?: object;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as is (FormData, Blob…). */
  body?: BodyInit;
  signal?: AbortSignal;
}

function authHeaders(): Record<string, string> {
  const key = getApiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function toApiError(res: Response): Promise<ApiError> {
  const { code, message, details } = readErrorEnvelope(res.status, res.statusText, await res.text().catch(() => ''));
  const err = new ApiError(res.status, code, message, details);
  if (res.status === 401) for (const fn of unauthorizedListeners) fn(err);
  return err;
}

async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `could not reach the server (${(err as Error).message})`);
  }
}

/**
 * Fetches an absolute same-origin URL with the API key (or the session cookie); throws
 * {@link ApiError} on failure. A 401 without an API key first renews the sign-in session and
 * tries once more.
 */
export async function fetchWithAuth(url: string, init: RequestInit = {}): Promise<Response> {
  let res = await send(url, init);
  if (res.status === 401 && !getApiKey() && !(init.headers as Record<string, string> | undefined)?.authorization && sessionsEnabled()) {
    if (await renewSession()) res = await send(url, init);
  }
  if (!res.ok) throw await toApiError(res);
  return res;
}

/** A JSON API call; resolves with the parsed body (undefined for 204). */
export async function request<T>(service: ServiceName, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetchWithAuth(apiPath(service, path, opts.query), { method: opts.method ?? (body ? 'POST' : 'GET'), headers, body, signal: opts.signal });
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

/** A binary API call (images). */
export async function requestBlob(service: ServiceName, path: string, opts: RequestOptions = {}): Promise<Blob> {
  const res = await fetchWithAuth(apiPath(service, path, opts.query), { method: opts.method ?? (opts.body ? 'POST' : 'GET'), body: opts.body, signal: opts.signal });
  return res.blob();
}

/** The message to show for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
