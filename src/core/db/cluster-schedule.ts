import { randomUUID } from 'node:crypto';
import type { Database } from './database.js';
import { isUniqueViolation } from './database.js';

/**
 * Work that must happen once per cluster (scheduled drift checks, alert evaluation): every
 * replica ticks, and a tick runs the job only if it wins the claim — one conditional UPDATE that
 * moves `last_run` forward when the interval has passed, atomic on SQLite and PostgreSQL. The
 * winner gets the previous run's time, so consecutive windows neither overlap nor leave gaps.
 */
export class ClusterSchedule {
  readonly #database: Database;
  readonly #name: string;
  readonly #holder = randomUUID();

  constructor(database: Database, name: string) {
    this.#database = database;
    this.#name = name;
  }

  /**
   * Claims the run due at `now` if `intervalMs` has passed since the last one anywhere.
   * @returns the previous run's time (the new window starts there), or null when another replica
   *   ran within the interval.
   */
  async claim(now: number, intervalMs: number, firstSince = now - intervalMs): Promise<number | null> {
    const db = this.#database.db;
    const row = await db.selectFrom('cluster_schedules').select('last_run').where('name', '=', this.#name).executeTakeFirst();
    if (!row) {
      try {
        await db.insertInto('cluster_schedules').values({ name: this.#name, last_run: now, holder: this.#holder }).execute();
        return firstSince;
      } catch (err) {
        if (isUniqueViolation(err)) return null; // another replica's first run
        throw err;
      }
    }
    const previous = Number(row.last_run);
    if (now - previous < intervalMs) return null;
    const res = await db
      .updateTable('cluster_schedules')
      .set({ last_run: now, holder: this.#holder })
      .where('name', '=', this.#name)
      .where('last_run', '=', previous)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1 ? previous : null;
  }
}
