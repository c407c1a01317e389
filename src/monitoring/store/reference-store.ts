import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { ObjectStore } from '../../core/objects/index.js';
import { notFound } from '../../core/errors.js';
import type { DriftReferencesTable, MonitoringTables } from './tables.js';
import type { Page, PageRequest, ReferenceData, ReferenceInfo } from './types.js';
import { clampPageSize, decodeToken, encodeToken, parseJson } from './paging.js';

export type NewReference = Omit<ReferenceInfo, 'id' | 'objectKey' | 'createdAt' | 'nRows' | 'nEmbeddings'>;

/**
 * Drift references: a summary row per reference, the data (stats rows, embeddings, probabilities)
 * as one JSON object in the object store under `monitoring/references/<id>.json`.
 */
export interface ReferenceStore {
  /** Stores the data, then the row; returns the new reference. */
  create(info: NewReference, data: ReferenceData): Promise<ReferenceInfo>;
  /** @throws AppError NOT_FOUND when absent. */
  get(id: string): Promise<ReferenceInfo>;
  /** The newest reference of a model version, or null. */
  latest(model: string, version: string): Promise<ReferenceInfo | null>;
  /** The reference's data (kept in a small in-memory cache). @throws AppError NOT_FOUND when the object is gone. */
  load(info: ReferenceInfo): Promise<ReferenceData>;
  /** Newest first, optionally for one model (and version). */
  list(query?: PageRequest & { model?: string; version?: string }): Promise<Page<ReferenceInfo>>;
}

function toInfo(row: Selectable<DriftReferencesTable>): ReferenceInfo {
  return {
    id: row.id,
    model: row.model_name,
    version: row.model_version,
    source: row.source as ReferenceInfo['source'],
    objectKey: row.object_key,
    nRows: Number(row.n_rows),
    nEmbeddings: Number(row.n_embeddings),
    features: parseJson<string[]>(row.features, []),
    windowSince: row.window_since === null ? null : Number(row.window_since),
    windowUntil: row.window_until === null ? null : Number(row.window_until),
    summary: parseJson(row.summary, {}),
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  };
}

export class SqlReferenceStore implements ReferenceStore {
  readonly #db: Kysely<MonitoringTables>;
  readonly #objects: ObjectStore;
  readonly #cache = new Map<string, ReferenceData>();

  constructor(database: Database, objects: ObjectStore) {
    this.#db = database.db as Kysely<MonitoringTables>;
    this.#objects = objects;
  }

  async create(info: NewReference, data: ReferenceData): Promise<ReferenceInfo> {
    const id = randomUUID();
    const objectKey = `monitoring/references/${id}.json`;
    await this.#objects.put(objectKey, JSON.stringify(data), 'application/json');
    const row: DriftReferencesTable = {
      id,
      model_name: info.model,
      model_version: info.version,
      source: info.source,
      object_key: objectKey,
      n_rows: data.stats.length,
      n_embeddings: data.embeddings.length,
      features: JSON.stringify(info.features),
      window_since: info.windowSince,
      window_until: info.windowUntil,
      summary: JSON.stringify(info.summary),
      created_by: info.createdBy,
      created_at: Date.now(),
    };
    await this.#db.insertInto('drift_references').values(row).execute();
    this.#remember(id, data);
    return toInfo(row);
  }

  async get(id: string): Promise<ReferenceInfo> {
    const row = await this.#db.selectFrom('drift_references').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('drift reference', id);
    return toInfo(row);
  }

  async latest(model: string, version: string): Promise<ReferenceInfo | null> {
    const row = await this.#db
      .selectFrom('drift_references')
      .selectAll()
      .where('model_name', '=', model)
      .where('model_version', '=', version)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toInfo(row) : null;
  }

  async load(info: ReferenceInfo): Promise<ReferenceData> {
    const cached = this.#cache.get(info.id);
    if (cached) return cached;
    const data = JSON.parse((await this.#objects.get(info.objectKey)).toString('utf8')) as ReferenceData;
    this.#remember(info.id, data);
    return data;
  }

  async list(query: PageRequest & { model?: string; version?: string } = {}): Promise<Page<ReferenceInfo>> {
    const pageSize = clampPageSize(query.pageSize);
    let q = this.#db.selectFrom('drift_references').selectAll();
    if (query.model) q = q.where('model_name', '=', query.model);
    if (query.version) q = q.where('model_version', '=', query.version);
    if (query.pageToken) {
      const { time, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', time), eb.and([eb('created_at', '=', time), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toInfo);
    const last = items[items.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(last.createdAt, last.id) } : { items };
  }

  #remember(id: string, data: ReferenceData): void {
    this.#cache.delete(id);
    this.#cache.set(id, data);
    while (this.#cache.size > 4) this.#cache.delete(this.#cache.keys().next().value as string);
  }
}
