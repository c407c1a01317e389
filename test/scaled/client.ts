/** HTTP helpers of the scaled suite: JSON calls through the gateway, closed-loop load, polling. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/process.js';
import { jsonApi, poll, type JsonApi } from '../helpers/json-api.js';

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

export interface Api extends JsonApi {
  base: string;
}

/** JSON over HTTP against `base` (the gateway's /api or one replica's root), as the suite's admin key. */
export function api(base: string): Api {
  return { base, ...jsonApi((p, init) => authFetch(`${base}${p}`, { signal: AbortSignal.timeout(60_000), ...init })) };
}

export { poll };

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
