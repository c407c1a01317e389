import { readFileSync } from 'node:fs';
import type { ServiceName } from '../core/config/index.js';
import { readErrorEnvelope } from '../core/http/error-envelope.js';

/** Where the CLI finds the platform: XRAY_URL (the gateway, default http://127.0.0.1:8080). */
export function gatewayUrl(explicit?: string): string {
  return (explicit || process.env.XRAY_URL || `http://127.0.0.1:${process.env.XRAY_PORT_GATEWAY || 8080}`).replace(/\/$/, '');
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A small JSON client for one service behind the gateway; sends XRAY_API_KEY when set. */
export class ServiceClient {
  constructor(
    readonly service: ServiceName,
    readonly baseUrl = gatewayUrl(),
    readonly apiKey = process.env.XRAY_API_KEY,
  ) {}

  url(path: string): string {
    return `${this.baseUrl}/api/${this.service}${path}`;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array || body instanceof FormData || typeof body === 'string') payload = body as BodyInit;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(this.url(path), { ...init, method, headers, body: payload });
    } catch (err) {
      throw new ApiError(0, 'UNREACHABLE', `cannot reach ${this.baseUrl} (is the platform running? start it with 'npm start'): ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      const e = readErrorEnvelope(res.status, res.statusText, text);
      throw new ApiError(res.status, e.code, e.message);
    }
    return (text ? safeJson(text) : null) as T;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}

export function readJsonFile(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}
