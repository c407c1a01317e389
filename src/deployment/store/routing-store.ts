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

/** A load every replica should hold: `POST /models/load` through the registry, made cluster-wide. */
export interface DesiredLoad {
  model: string;
  /** A version number or an alias name ('staging'). */
  ref: string;
  refKind: 'version' | 'alias';
  makeDefault: boolean;
  batching: Record<string, number> | null;
  updatedBy: string;
  updatedAt: number;
}

/** What one version a replica serves looks like in its heartbeat. */
export interface ServedModel {
  name: string;
  version: string;
  default: boolean;
  alias: string | null;
}

/** A replica's last heartbeat. */
export interface ReplicaHeartbeat {
  id: string;
  host: string;
  serving: ServedModel[];
  problems: unknown[];
  startedAt: number;
  heartbeatAt: number;
}

/**
 * Persisted serving state shared by every replica: routing configs (one per model name), the
 * loads operators asked for (desired state), and each replica's heartbeat of what it serves.
 */
export interface RoutingStore {
  /** Every stored config. */
  list(): Promise<RoutingConfig[]>;
  /** The config of one model, or null. */
  get(model: string): Promise<RoutingConfig | null>;
  /** Creates or replaces the config of `config.model`. */
  put(config: RoutingConfig): Promise<void>;
  /** Removes a model's config; returns false when there was none. */
  delete(model: string): Promise<boolean>;
  /** Every desired load, by model then ref. */
  listLoads(): Promise<DesiredLoad[]>;
  /**
   * Records a desired load. A default load replaces the model's other default loads (a model has
   * one default), as loading it does on a replica.
   */
  putLoad(load: DesiredLoad): Promise<void>;
  /** Removes a model's desired loads (one ref, or all); returns how many. */
  deleteLoads(model: string, ref?: string): Promise<number>;
  /** Creates or replaces a replica's heartbeat. */
  heartbeat(beat: ReplicaHeartbeat): Promise<void>;
  /** Heartbeats, newest first; those older than `olderThan` are deleted first when given. */
  replicas(options?: { pruneBefore?: number }): Promise<ReplicaHeartbeat[]>;
  /** Removes a replica's heartbeat (it stopped). */
  removeReplica(id: string): Promise<void>;
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

  async listLoads(): Promise<DesiredLoad[]> {
    const rows = await this.#db.selectFrom('deployment_loads').selectAll().orderBy('model_name').orderBy('ref').execute();
    return rows.map((r) => ({
      model: r.model_name,
      ref: r.ref,
      refKind: r.ref_kind,
      makeDefault: r.make_default === 1,
      batching: r.batching ? (JSON.parse(r.batching) as Record<string, number>) : null,
      updatedBy: r.updated_by,
      updatedAt: Number(r.updated_at),
    }));
  }

  async putLoad(load: DesiredLoad): Promise<void> {
    const row = {
      model_name: load.model,
      ref: load.ref,
      ref_kind: load.refKind,
      make_default: load.makeDefault ? 1 : 0,
      batching: load.batching ? JSON.stringify(load.batching) : null,
      updated_by: load.updatedBy,
      updated_at: load.updatedAt,
    };
    await this.#db.transaction().execute(async (trx) => {
      if (load.makeDefault) await trx.deleteFrom('deployment_loads').where('model_name', '=', load.model).where('make_default', '=', 1).execute();
      await trx
        .insertInto('deployment_loads')
        .values(row)
        .onConflict((oc) => oc.columns(['model_name', 'ref']).doUpdateSet({ ref_kind: row.ref_kind, make_default: row.make_default, batching: row.batching, updated_by: row.updated_by, updated_at: row.updated_at }))
        .execute();
    });
  }

  async deleteLoads(model: string, ref?: string): Promise<number> {
    let q = this.#db.deleteFrom('deployment_loads').where('model_name', '=', model);
    if (ref !== undefined) q = q.where('ref', '=', ref);
    const res = await q.executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async heartbeat(beat: ReplicaHeartbeat): Promise<void> {
    const row = {
      id: beat.id,
      host: beat.host,
      serving: JSON.stringify(beat.serving),
      problems: JSON.stringify(beat.problems),
      started_at: beat.startedAt,
      heartbeat_at: beat.heartbeatAt,
    };
    await this.#db
      .insertInto('deployment_replicas')
      .values(row)
      .onConflict((oc) => oc.column('id').doUpdateSet({ serving: row.serving, problems: row.problems, heartbeat_at: row.heartbeat_at }))
      .execute();
  }

  async replicas(options: { pruneBefore?: number } = {}): Promise<ReplicaHeartbeat[]> {
    if (options.pruneBefore !== undefined) await this.#db.deleteFrom('deployment_replicas').where('heartbeat_at', '<', options.pruneBefore).execute();
    const rows = await this.#db.selectFrom('deployment_replicas').selectAll().orderBy('heartbeat_at', 'desc').execute();
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      serving: JSON.parse(r.serving) as ServedModel[],
      problems: JSON.parse(r.problems) as unknown[],
      startedAt: Number(r.started_at),
      heartbeatAt: Number(r.heartbeat_at),
    }));
  }

  async removeReplica(id: string): Promise<void> {
    await this.#db.deleteFrom('deployment_replicas').where('id', '=', id).execute();
  }
}
