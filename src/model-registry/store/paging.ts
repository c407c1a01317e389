import { AppError } from '../../core/errors.js';

import type { Page } from '../../core/db/page.js';

export type { Page, PageRequest } from '../../core/db/page.js';

/** Offset tokens, opaque to callers (MLflow's SQL store pages the same way). */
export function encodeOffsetToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

export function decodeOffsetToken(token: string | undefined): number {
  if (!token) return 0;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    if (typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0) return parsed.offset;
  } catch {
    /* fall through */
  }
  throw new AppError('INVALID_INPUT', 'Invalid page token, could not base64-decode');
}

/** Slices `limit + 1` fetched rows into a page. */
export function toPage<T>(rows: T[], offset: number, limit: number): Page<T> {
  if (rows.length > limit) return { items: rows.slice(0, limit), nextPageToken: encodeOffsetToken(offset + limit) };
  return { items: rows };
}
