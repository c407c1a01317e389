import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/index.js';
import { AppError } from '../errors.js';
import { ROLES, type Role } from './roles.js';

export interface ApiKeyInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  revokedAt: number | null;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** API keys, stored as sha256 hashes only; the plain key is shown once, at creation. */
export class ApiKeyStore {
  readonly #db: Database['db'];

  constructor(database: Database) {
    this.#db = database.db;
  }

  async create(name: string, role: Role, plainKey?: string): Promise<{ key: string; info: ApiKeyInfo }> {
    if (!ROLES.includes(role)) throw new AppError('INVALID_INPUT', `unknown role '${role}'; use one of ${ROLES.join(', ')}`);
    const key = plainKey ?? `xk_${randomBytes(24).toString('base64url')}`;
    const info: ApiKeyInfo = { id: randomUUID(), name, role, createdAt: Date.now(), revokedAt: null };
    await this.#db
      .insertInto('api_keys')
      .values({ id: info.id, name, key_hash: hashKey(key), role, created_at: info.createdAt })
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .execute();
    return { key, info };
  }

  /** Resolves a presented key, or null when unknown or revoked. */
  async resolve(plainKey: string): Promise<ApiKeyInfo | null> {
    const h = hashKey(plainKey);
    const row = await this.#db.selectFrom('api_keys').selectAll().where('key_hash', '=', h).executeTakeFirst();
    if (!row || row.revoked_at) return null;
    // The lookup is by hash; compare again in constant time to keep timing flat.
    if (!timingSafeEqual(Buffer.from(row.key_hash, 'hex'), Buffer.from(h, 'hex'))) return null;
    return { id: row.id, name: row.name, role: row.role as Role, createdAt: Number(row.created_at), revokedAt: null };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.#db.selectFrom('api_keys').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, createdAt: Number(r.created_at), revokedAt: r.revoked_at ? Number(r.revoked_at) : null }));
  }

  async revoke(id: string): Promise<void> {
    const res = await this.#db.updateTable('api_keys').set({ revoked_at: Date.now() }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new AppError('NOT_FOUND', `API key '${id}' does not exist`);
  }
}
