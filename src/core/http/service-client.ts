import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js';
import type { ServiceTransport } from './service-transport.js';

export interface ServiceHttpOptions {
  /** Per attempt (default 30 s). */
  timeoutMs?: number;
  /** Extra attempts for idempotent calls on a network error or a 502/503/504 (default 2). */
  retries?: number;
  /** The target service ('deployment'): named in messages, and the audience of the service token. */
  service: string;
  /** TLS (CA, client certificate) and service tokens: `platform.transport`. Absent = plain fetch, no token. */
  transport?: ServiceTransport;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface CallOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as multipart/form-data instead of `body`. */
  form?: FormData;
  /** Sent as application/octet-stream instead of `body`. */
  raw?: Uint8Array;
  headers?: Record<string, string | undefined>;
  /** Safe to repeat (GET, or a POST that changes nothing): retried with backoff. */
  idempotent?: boolean;
  timeoutMs?: number;
}

const RETRY_STATUS = new Set([502, 503, 504]);

/**
 * JSON over HTTP to another service: timeouts, bounded retries with backoff on idempotent calls,
 * and the error envelope `{error:{code,message,details}}` turned back into the AppError it was.
 * An unreachable service is SERVICE_UNAVAILABLE naming the URL.
 */
export class ServiceHttpClient {
  readonly baseUrl: string;
  readonly #opts: Required<Omit<ServiceHttpOptions, 'transport'>>;
  readonly #transport?: ServiceTransport;

  constructor(baseUrl: string, opts: ServiceHttpOptions) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    const { transport, ...rest } = opts;
    this.#opts = { timeoutMs: 30_000, retries: 2, ...rest };
    this.#transport = transport;
  }

  /** A JSON call: the parsed body on 2xx, else the AppError the error envelope names. */
  async call<T>(method: Method, path: string, options: CallOptions = {}): Promise<T> {
    return parseJson(await (await this.#send(method, path, options, 'application/json')).text()) as T;
  }

  /** A call whose 2xx body is bytes (an artifact, a stored image). */
  async bytes(method: Method, path: string, options: CallOptions = {}): Promise<Buffer> {
    return Buffer.from(await (await this.#send(method, path, options, '*/*')).arrayBuffer());
  }

  async #send(method: Method, path: string, options: CallOptions, accept: string): Promise<Response> {
    const attempts = options.idempotent || method === 'GET' ? this.#opts.retries + 1 : 1;
    const headers: Record<string, string> = { accept };
    for (const [k, v] of Object.entries(options.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
    let payload: string | FormData | Uint8Array<ArrayBuffer> | undefined;
    if (options.form !== undefined) payload = options.form;
    else if (options.raw !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      payload = new Uint8Array(options.raw);
    }
    else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    const url = `${this.baseUrl}${path}`;
    let lastError: AppError | null = null;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)));
      let res: Response;
      try {
        const init = { method, headers: { ...headers, ...(await this.#transport?.identityHeaders(this.#opts.service)) }, body: payload, signal: AbortSignal.timeout(options.timeoutMs ?? this.#opts.timeoutMs) };
        res = await (this.#transport ? this.#transport.fetch(url, init) : fetch(url, init));
      } catch (err) {
        const why = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${options.timeoutMs ?? this.#opts.timeoutMs} ms` : causeOf(err);
        lastError = new AppError('SERVICE_UNAVAILABLE', `the ${this.#opts.service} service at ${this.baseUrl} is unreachable (${why})`, { unreachable: true });
        continue;
      }
      if (res.ok) return res;
      lastError = toAppError(res.status, parseJson(await res.text()), `${this.#opts.service} ${method} ${path}`);
      if (!RETRY_STATUS.has(res.status)) break;
    }
    throw lastError!;
  }
}

function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The error envelope as the AppError it was; an unknown code keeps the status's meaning. */
export function toAppError(status: number, body: unknown, what: string): AppError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' && e.code in ERROR_STATUS ? (e.code as ErrorCode) : codeForStatus(status);
  const message = typeof e?.message === 'string' ? e.message : `${what} answered ${status}`;
  return new AppError(code, message, e?.details);
}

function codeForStatus(status: number): ErrorCode {
  const match = (Object.entries(ERROR_STATUS) as [ErrorCode, number][]).find(([, s]) => s === status);
  return match ? match[0] : status >= 500 ? 'SERVICE_UNAVAILABLE' : 'BAD_REQUEST';
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
