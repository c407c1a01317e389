import type { Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { DeploymentTables } from './tables.js';

export interface RoutingVariant {
  /** Variant name used in responses, records and metrics ('A', 'B', …). */
  name: string;
  version: string;
  /** Share of traffic in split mode (relative; need not sum to 1). Ignored in shadow mode. */
  weight: number;
}

/**
 * A/B or shadow routing for one model. split: each request goes to one variant by weight
 * (sticky per `x-client-key` when `sticky`); shadow: the first variant answers, the others get a
 * copy whose results are only logged.
 */
export interface RoutingConfig {
  model: string;
  mode: 'split' | 'shadow';
  sticky: boolean;
  variants: RoutingVariant[];
  updatedBy: string;
  updatedAt: number;
}

/** Persisted routing configs, one per model name (shared by every replica). */
export interface RoutingStore {
  /** Every stored config. */
  list(): Promise<RoutingConfig[]>;
  /** The config of one model, or null. */
  get(model: string): Promise<RoutingConfig | null>;
  /** Creates or replaces the config of `config.model`. */
  put(config: RoutingConfig): Promise<void>;
  /** Removes a model's config; returns false when there was none. */
  delete(model: string): Promise<boolean>;
}

export class KyselyRoutingStore implements RoutingStore {
  readonly #db: Kysely<DeploymentTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DeploymentTables>;
  }

  async list(): Promise<RoutingConfig[]> {
    const rows = await this.#db.selectFrom('deployment_routing').selectAll().orderBy('model_name').execute();
    return rows.map((r) => JSON.parse(r.config) as RoutingConfig);
  }

  async get(model: string): Promise<RoutingConfig | null> {
    const row = await this.#db.selectFrom('deployment_routing').selectAll().where('model_name', '=', model).executeTakeFirst();
    return row ? (JSON.parse(row.config) as RoutingConfig) : null;
  }

  async put(config: RoutingConfig): Promise<void> {
    const row = { model_name: config.model, config: JSON.stringify(config), updated_by: config.updatedBy, updated_at: config.updatedAt };
    await this.#db
      .insertInto('deployment_routing')
      .values(row)
      .onConflict((oc) => oc.column('model_name').doUpdateSet({ config: row.config, updated_by: row.updated_by, updated_at: row.updated_at }))
      .execute();
  }

  async delete(model: string): Promise<boolean> {
    const res = await this.#db.deleteFrom('deployment_routing').where('model_name', '=', model).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
