import assert from 'node:assert/strict';

/** JSON calls over a fetch-like `raw`: GET expects 200, POST a 2xx (or `expect`), both return the parsed body. */
export interface JsonApi {
  raw(path: string, init?: RequestInit): Promise<Response>;
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body: unknown, expect?: number | number[]): Promise<T>;
}

export function jsonApi(raw: (path: string, init?: RequestInit) => Promise<Response>): JsonApi {
  const check = async (res: Response, expect: number[], what: string) => {
    const text = await res.text();
    assert.ok(expect.includes(res.status), `${what}: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
  return {
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

/** Calls `fn` every `every` ms until it returns non-null (errors count as not yet); fails after `timeoutMs` with the last error. */
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
    await new Promise((r) => setTimeout(r, every));
  }
}
