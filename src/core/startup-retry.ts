import type { Logger } from 'pino';

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', '57P03']);

/** Errors that mean "the engine is not up yet" rather than "this will never work". */
export function isTransientConnectError(err: unknown): boolean {
  for (let e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.code && TRANSIENT_CODES.has(e.code)) return true;
    if (/Connection terminated|the database system is starting up/i.test(e.message ?? '')) return true;
    if (Array.isArray(e.errors) && e.errors.some((x) => isTransientConnectError(x))) return true; // AggregateError (IPv4 + IPv6)
    e = e.cause as typeof e;
  }
  return false;
}

/** Shutting down or gone mid-session (PostgreSQL admin/crash shutdown, connection exceptions 08xxx). */
const LOST_CODES = new Set(['57P01', '57P02', '08000', '08001', '08003', '08004', '08006', 'EPIPE']);

/**
 * Errors of a request whose engine (database, Redis) is unreachable right now: not the request's
 * fault and not a bug, so the answer is 503 with Retry-After rather than 500.
 */
export function isEngineUnavailable(err: unknown): boolean {
  if (isTransientConnectError(err)) return true;
  for (let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.code && LOST_CODES.has(e.code)) return true;
    if (/timeout exceeded when trying to connect|Connection is closed|terminating connection due to administrator command/i.test(e.message ?? '')) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * Opens an engine at boot, retrying while it is not reachable yet (Kubernetes starts pods in any
 * order): backoff from 250 ms doubling to 5 s, for up to `timeoutMs`. Other errors fail at once.
 */
export async function withStartupRetry<T>(what: string, open: () => Promise<T>, opts: { timeoutMs: number; logger?: Logger }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      if (!isTransientConnectError(err) || Date.now() + delay > deadline) {
        if (attempt > 1 && isTransientConnectError(err)) {
          throw new Error(`${what} still unreachable after ${attempt} attempts over ${Math.round(opts.timeoutMs / 1000)} s (XRAY_STARTUP_TIMEOUT_S): ${(err as Error).message}`, { cause: err });
        }
        throw err;
      }
      opts.logger?.warn({ attempt, retry_in_ms: delay, err: (err as Error).message }, `${what} is not reachable yet; retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
