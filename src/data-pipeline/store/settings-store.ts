import type { Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { DataPipelineTables } from './tables.js';

/** Small per-installation settings of the data pipeline (e.g. the patient-id salt). */
export interface SettingsStore {
  /** The stored value, or null. */
  get(key: string): Promise<string | null>;
  /**
   * The stored value; when absent, stores `create()` first. Concurrent callers (even in other
   * processes sharing the database) all get the one value that won the insert.
   */
  getOrCreate(key: string, create: () => string): Promise<string>;
}

export class KyselySettingsStore implements SettingsStore {
  readonly #db: Kysely<DataPipelineTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DataPipelineTables>;
  }

  async get(key: string): Promise<string | null> {
    const row = await this.#db.selectFrom('data_settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value ?? null;
  }

  async getOrCreate(key: string, create: () => string): Promise<string> {
    const existing = await this.get(key);
    if (existing !== null) return existing;
    await this.#db
      .insertInto('data_settings')
      .values({ key, value: create() })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    return (await this.get(key))!;
  }
}
