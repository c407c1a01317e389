/** HTTP helpers of the scaled suite: JSON calls through the gateway, closed-loop load, polling. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/process.js';

export const TINY_MODEL = readFileSync(path.join(PROJECT_ROOT, 'test/fixtures/tiny-model.onnx'));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cluster runs with auth on, as the manifests define: the suite calls as this admin key. */
export const ADMIN_KEY = 'xk_scaled_suite_admin_key_0123456789abcdef';

/** fetch with the suite's key (a replica's own routes, not through the gateway). */
export function authFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${ADMIN_KEY}`);
  return fetch(url, { ...init, headers });
}

export interface Api {
  base: string;
  raw(p: string, init?: RequestInit): Promise<Response>;
  get<T = any>(p: string): Promise<T>;
  post<T = any>(p: string, body: unknown, expect?: number | number[]): Promise<T>;
}

/** JSON over HTTP against `base` (the gateway's /api or one replica's root). */
export function api(base: string): Api {
  const raw = (p: string, init?: RequestInit) => authFetch(`${base}${p}`, { signal: AbortSignal.timeout(60_000), ...init });
  const check = async (res: Response, expect: number[], what: string) => {
    const text = await res.text();
    assert.ok(expect.includes(res.status), `${what}: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    base,
    raw,
    async get(p) {
      return check(await raw(p), [200], `GET ${p}`);
    },
    async post(p, body, expect = [200, 201, 202]) {
      const res = await raw(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return check(res, Array.isArray(expect) ? expect : [expect], `POST ${p}`);
    },
  };
}

export async function poll<T>(what: string, fn: () => Promise<T | null>, timeoutMs: number, every = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const value = await fn().catch((err: unknown) => {
      last = err;
      return null;
    });
    if (value !== null) return value;
    if (Date.now() > until) throw new Error(`${what}: not done after ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await sleep(every);
  }
}

/** A trainer's model.json for the tiny fixture (16×16 input), with a validation AUC; no preprocessing spec (the fixture records a placeholder hash), so the default spec serves it. */
export function tinyMetadata(auc: number): Record<string, unknown> {
  return {
    model_name: 'tiny-test',
    input_size: 16,
    threshold: 0.5,
    threshold_method: 'youden',
    classes: ['NORMAL', 'PNEUMONIA'],
    positive_class: 'PNEUMONIA',
    metrics: { n: 20, positives: 10, auc, sensitivity: 0.8, specificity: 0.8, threshold: 0.5, threshold_method: 'youden' },
  };
}

/** Registers the tiny ONNX fixture as a new version of `name` through the gateway. */
export async function registerTiny(http: Api, name: string, auc = 0.9): Promise<number> {
  const form = new FormData();
  form.append('name', name);
  form.append('metadata', JSON.stringify(tinyMetadata(auc)));
  form.append('file', new Blob([new Uint8Array(TINY_MODEL)], { type: 'application/octet-stream' }), 'model.onnx');
  const res = await http.raw('/model-registry/models/register', { method: 'POST', body: form });
  const body = (await res.json()) as { model_version: { version: number } };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.model_version.version;
}

export interface LoadResult {
  start: number;
  end: number;
  status: number;
  error: string | null;
  body: any;
}

export interface Load {
  results: LoadResult[];
  /** Requests sent and not answered yet, with their start times. */
  inFlight(): number[];
  stop(): Promise<LoadResult[]>;
}

/**
 * A closed loop: `clients` callers, each sending its next request when the previous answered.
 * A request that gets no answer within `timeoutMs` counts as a failure with status 0.
 */
export function closedLoop(clients: number, request: (i: number) => Promise<Response>, timeoutMs = 30_000): Load {
  const results: LoadResult[] = [];
  const open = new Map<number, number>();
  let seq = 0;
  let running = true;
  const loops = Array.from({ length: clients }, async (_, c) => {
    while (running) {
      const id = seq++;
      const start = Date.now();
      open.set(id, start);
      let status = 0;
      let error: string | null = null;
      let body: any = null;
      try {
        const res = await Promise.race([
          request(c),
          sleep(timeoutMs).then(() => {
            throw new Error(`no answer in ${timeoutMs} ms`);
          }),
        ]);
        status = res.status;
        const text = await res.text();
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        if (status >= 400) error = typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body).slice(0, 300);
      } catch (err) {
        error = (err as Error).message;
      }
      open.delete(id);
      results.push({ start, end: Date.now(), status, error, body });
    }
  });
  return {
    results,
    inFlight: () => [...open.values()],
    async stop() {
      running = false;
      await Promise.all(loops);
      return results;
    },
  };
}

/** Counts by status, for the printed figures. */
export function statusCounts(results: LoadResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[String(r.status)] = (out[String(r.status)] ?? 0) + 1;
  return out;
}
