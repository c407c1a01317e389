import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/index.js';
import { AppError } from '../errors.js';
import { ROLES, type Role } from './roles.js';

export interface ApiKeyInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  /** When the key stops working (epoch ms), or null for never. */
  expiresAt: number | null;
  /** When the key was last presented (to the minute), or null. */
  lastUsedAt: number | null;
  /** When the key was (or, after a rotation's grace period, will be) revoked. */
  revokedAt: number | null;
}

export interface CreateKeyOptions {
  /** A given plain key (the bootstrap admin key); default: a fresh random one. */
  plainKey?: string;
  /** Epoch ms after which the key is refused; null/absent = no expiry. */
  expiresAt?: number | null;
}

interface ApiKeysTable {
  id: string;
  name: string;
  key_hash: string;
  role: Role;
  created_at: number | string;
  revoked_at: number | string | null;
  expires_at: number | string | null;
  last_used_at: number | string | null;
}

/** last_used_at is written at most this often per key (not a write per request). */
const LAST_USED_RESOLUTION_MS = 60_000;

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const num = (v: number | string | null): number | null => (v === null || v === undefined ? null : Number(v));

function toInfo(r: ApiKeysTable): ApiKeyInfo {
  return { id: r.id, name: r.name, role: r.role, createdAt: Number(r.created_at), expiresAt: num(r.expires_at), lastUsedAt: num(r.last_used_at), revokedAt: num(r.revoked_at) };
}

/**
 * API keys for machines (people sign in with OIDC), stored as sha256 hashes only; the plain key
 * is shown once, at creation or rotation. Keys may expire, record when they were last used, and
 * are revoked or rotated (a new key, the old one revoked after an optional grace period).
 */
export class ApiKeyStore {
  readonly #db: import('kysely').Kysely<{ api_keys: ApiKeysTable }>;

  constructor(database: Database) {
    this.#db = database.db;
  }

  /**
   * Creates a key. The third argument may be a plain key (bootstrap) or options.
   * @throws INVALID_INPUT for an unknown role or an expiry in the past.
   */
  async create(name: string, role: Role, options: string | CreateKeyOptions = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    const opts = typeof options === 'string' ? { plainKey: options } : options;
    if (!ROLES.includes(role)) throw new AppError('INVALID_INPUT', `unknown role '${role}'; use one of ${ROLES.join(', ')}`);
    if (!name.trim() || name.length > 200) throw new AppError('INVALID_INPUT', 'a key name is 1-200 characters');
    const now = Date.now();
    if (opts.expiresAt != null && opts.expiresAt <= now) throw new AppError('INVALID_INPUT', 'the expiry must be in the future');
    const key = opts.plainKey ?? `xk_${randomBytes(24).toString('base64url')}`;
    const info: ApiKeyInfo = { id: randomUUID(), name, role, createdAt: now, expiresAt: opts.expiresAt ?? null, lastUsedAt: null, revokedAt: null };
    await this.#db
      .insertInto('api_keys')
      .values({ id: info.id, name, key_hash: hashKey(key), role, created_at: info.createdAt, expires_at: info.expiresAt, revoked_at: null, last_used_at: null })
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .execute();
    return { key, info };
  }

  /** Resolves a presented key, or null when unknown, revoked or expired; notes when it was used. */
  async resolve(plainKey: string): Promise<ApiKeyInfo | null> {
    const h = hashKey(plainKey);
    const row = await this.#db.selectFrom('api_keys').selectAll().where('key_hash', '=', h).executeTakeFirst();
    if (!row) return null;
    // The lookup is by hash; compare again in constant time to keep timing flat.
    if (!timingSafeEqual(Buffer.from(row.key_hash, 'hex'), Buffer.from(h, 'hex'))) return null;
    const now = Date.now();
    const info = toInfo(row);
    if (info.revokedAt !== null && info.revokedAt <= now) return null;
    if (info.expiresAt !== null && info.expiresAt <= now) return null;
    if (info.lastUsedAt === null || now - info.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      await this.#db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.id).execute();
      info.lastUsedAt = now;
    }
    return info;
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.#db.selectFrom('api_keys').selectAll().orderBy('created_at').execute();
    return rows.map(toInfo);
  }

  async get(id: string): Promise<ApiKeyInfo> {
    const row = await this.#db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `API key '${id}' does not exist`);
    return toInfo(row);
  }

  /** Revokes a key now. @throws NOT_FOUND. */
  async revoke(id: string): Promise<void> {
    const res = await this.#db.updateTable('api_keys').set({ revoked_at: Date.now() }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new AppError('NOT_FOUND', `API key '${id}' does not exist`);
  }

  /**
   * Rotation: a new key with the same name, role and expiry; the old one is revoked now, or after
   * `graceSeconds` so the systems using it can switch over. @throws NOT_FOUND, CONFLICT (revoked).
   */
  async rotate(id: string, graceSeconds = 0): Promise<{ key: string; info: ApiKeyInfo; previous: ApiKeyInfo }> {
    const old = await this.get(id);
    const now = Date.now();
    if (old.revokedAt !== null && old.revokedAt <= now) throw new AppError('CONFLICT', `API key '${id}' is revoked; create a new one instead`);
    if (old.expiresAt !== null && old.expiresAt <= now) throw new AppError('CONFLICT', `API key '${id}' has expired; create a new one instead`);
    const created = await this.create(old.name, old.role, { expiresAt: old.expiresAt });
    const revokedAt = now + Math.max(0, graceSeconds) * 1000;
    await this.#db.updateTable('api_keys').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
    return { ...created, previous: { ...old, revokedAt } };
  }
}
