import type { AuditLog } from '../audit/index.js';
import type { Cache } from '../cache/index.js';

export interface AuthGuardOptions {
  /** Failed key checks allowed per IP (and per key prefix) in one window before a lockout. */
  maxFailures: number;
  windowSeconds: number;
  lockoutSeconds: number;
}

/** Denials of one kind from one address are audited at these counts within a window (1, 10, 100, …). */
export function isAuditedCount(n: number): boolean {
  return n >= 1 && Number.isInteger(Math.log10(n));
}

/**
 * Brute-force protection and a flood-proof audit of denials, kept in the platform cache (Redis
 * when scaled, so replicas share the counts): a wrong key counts against the caller's IP and the
 * key's prefix; past `maxFailures` in a window both are locked out for `lockoutSeconds` (429 with
 * Retry-After). Denials are audited at counts 1, 10, 100, … per address, kind and route in each
 * window, each record carrying the running count — a flood adds a handful of rows, not one per try.
 */
export class AuthGuard {
  readonly #cache: Cache;
  readonly #audit: AuditLog | undefined;
  readonly #opts: AuthGuardOptions;
  readonly #service: string;

  constructor(cache: Cache, audit: AuditLog | undefined, service: string, opts: AuthGuardOptions) {
    this.#cache = cache;
    this.#audit = audit;
    this.#service = service;
    this.#opts = opts;
  }

  get lockoutSeconds(): number {
    return this.#opts.lockoutSeconds;
  }

  /** true while the address or the key prefix is locked out; false while the cache cannot answer (Redis away: keys still work). */
  async locked(ip: string, keyPrefix: string | null): Promise<boolean> {
    if (this.#opts.maxFailures <= 0) return false;
    try {
      if ((await this.#cache.get(`auth:lock:ip:${ip}`)) !== null) return true;
      return keyPrefix !== null && (await this.#cache.get(`auth:lock:key:${keyPrefix}`)) !== null;
    } catch {
      return false;
    }
  }

  /** Counts a wrong key; locks the address and the prefix out once either passes the limit. @returns true when this failure started a lockout. */
  async failed(ip: string, keyPrefix: string | null, requestId: string): Promise<boolean> {
    if (this.#opts.maxFailures <= 0) return false;
    return this.#countFailure(ip, keyPrefix, requestId).catch(() => false);
  }

  async #countFailure(ip: string, keyPrefix: string | null, requestId: string): Promise<boolean> {
    const { windowSeconds, lockoutSeconds, maxFailures } = this.#opts;
    const byIp = await this.#cache.increment(`auth:fail:ip:${ip}`, windowSeconds);
    const byKey = keyPrefix ? await this.#cache.increment(`auth:fail:key:${keyPrefix}`, windowSeconds) : 0;
    if (byIp < maxFailures && byKey < maxFailures) return false;
    await this.#cache.set(`auth:lock:ip:${ip}`, '1', lockoutSeconds);
    if (byKey >= maxFailures && keyPrefix) await this.#cache.set(`auth:lock:key:${keyPrefix}`, '1', lockoutSeconds);
    if (byIp === maxFailures || byKey === maxFailures) {
      this.#audit?.record({
        actor: 'anonymous',
        action: 'access.lockout',
        resource: `ip:${ip}`,
        outcome: 'denied',
        requestId,
        service: this.#service,
        details: { failures_by_ip: byIp, failures_by_key_prefix: byKey, key_prefix: keyPrefix, window_s: windowSeconds, lockout_s: lockoutSeconds },
      });
    }
    return true;
  }

  /** Audits a denial, aggregated: only the 1st, 10th, 100th, … of its kind per window is a row. */
  async denied(entry: { ip: string; actor: string; resource: string; reason: string; required: string; requestId: string }): Promise<void> {
    // The cache away: every denial is a row rather than none.
    const n = await this.#cache.increment(`auth:deny:${entry.ip}:${entry.reason}:${entry.resource}`, this.#opts.windowSeconds).catch(() => 1);
    if (!isAuditedCount(n)) return;
    this.#audit?.record({
      actor: entry.actor,
      action: 'access.denied',
      resource: entry.resource,
      outcome: 'denied',
      requestId: entry.requestId,
      service: this.#service,
      details: { reason: entry.reason, required: entry.required, ip: entry.ip, count_in_window: n, window_s: this.#opts.windowSeconds },
    });
  }
}
