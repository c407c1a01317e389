import { invalidInput } from '../../core/errors.js';

/** Keyset page token over (time, id), newest first. */
export function encodeToken(time: number, id: string): string {
  return Buffer.from(JSON.stringify([time, id])).toString('base64url');
}

export function decodeToken(token: string): { time: number; id: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') return { time: parsed[0], id: parsed[1] };
  } catch {
    // fall through
  }
  throw invalidInput('invalid page_token');
}

export function clampPageSize(size: number | undefined, fallback = 100): number {
  return Math.min(Math.max(Math.trunc(size ?? fallback), 1), 1000);
}

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}
