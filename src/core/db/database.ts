import { sql, type Kysely } from 'kysely';

export type Engine = 'sqlite' | 'postgres';

/** Engine differences as named flags, so stores are written once (Kysely's DialectAdapter habit). */
export interface Capabilities {
  readonly engine: Engine;
  /** Both engines support INSERT … RETURNING (SQLite ≥ 3.35). */
  readonly supportsReturning: boolean;
  /** Case-insensitive LIKE operator for this engine. */
  readonly ilike: 'like' | 'ilike';
}

/**
 * The relational metadata store handle every service receives. `db` is untyped at the core level;
 * each store narrows it with `db.withTables<MyTables>()` or a cast to `Kysely<MyTables>`.
 */
export interface Database {
  readonly db: Kysely<any>;
  readonly capabilities: Capabilities;
  /** PostgreSQL schema this handle works in, when not the default search path (test isolation). */
  readonly schema?: string;
  /** true when the engine answers a trivial query. */
  ping(): Promise<boolean>;
  /** Closes connections; idempotent. */
  close(): Promise<void>;
}

/** Wraps a Kysely instance as a Database: ping by `select 1`, close once. */
export function wrapDatabase(db: Kysely<any>, capabilities: Capabilities, schema?: string): Database {
  let closed = false;
  return {
    db,
    schema,
    capabilities: Object.freeze({ ...capabilities }),
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/** Whether a failed statement broke a unique or primary-key constraint (PostgreSQL 23505, SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint failed/.test(e?.message ?? '');
}
