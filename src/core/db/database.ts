import { sql, type Kysely } from 'kysely';

export type Engine = 'sqlite' | 'postgres';

/** What a snapshot holds: rows per table, counted in the snapshot itself. */
export interface SnapshotInfo {
  tables: Record<string, number>;
}

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
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one handle for every service's tables; each store narrows it to its own Kysely<Tables>
  readonly db: Kysely<any>;
  readonly capabilities: Capabilities;
  /** PostgreSQL schema this handle works in, when not the default search path (test isolation). */
  readonly schema?: string;
  /** true when the engine answers a trivial query. */
  ping(): Promise<boolean>;
  /**
   * A consistent online copy of the whole database into `file`, by the engine's own tool:
   * SQLite's online backup API, PostgreSQL's `pg_dump -Fc` (this handle's schema only, if any).
   * Returns the row count of every table as of that same snapshot.
   */
  snapshot(file: string): Promise<SnapshotInfo>;
  /** Closes connections; idempotent. */
  close(): Promise<void>;
}

/** Wraps a Kysely instance as a Database: ping by `select 1`, close once. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see Database.db
export function wrapDatabase(db: Kysely<any>, capabilities: Capabilities, schema: string | undefined, snapshot: (file: string) => Promise<SnapshotInfo>): Database {
  let closed = false;
  return {
    db,
    schema,
    snapshot,
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
