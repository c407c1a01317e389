import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { AppError } from '../../core/errors.js';
import type { ImageStats } from '../../core/imaging/index.js';
import type { PredictionsTable, DeploymentTables } from './tables.js';

export type PredictionLabel = 'PNEUMONIA' | 'NORMAL';

/**
 * Input statistics of one prediction: `imageStats` of the preprocessed pixels plus what the
 * source image was ('tensor' for Open Inference Protocol requests, which carry no image).
 */
export interface PredictionStats extends ImageStats {
  sourceFormat: 'png' | 'jpeg' | 'dicom' | 'tensor';
  sourceWidth: number;
  sourceHeight: number;
}

/** One logged prediction, as the monitoring service reads it. */
export interface PredictionRecord {
  id: string;
  /** Epoch ms. */
  time: number;
  modelName: string;
  modelVersion: string;
  /** A/B variant name ('A', 'B', …), 'default' without routing, 'pinned' for an explicit version. */
  variant: string;
  /** true for a shadow-mode result that was logged but never returned. */
  shadow: boolean;
  probability: number;
  label: PredictionLabel;
  threshold: number;
  /** sha256 of the uploaded bytes (of the FP32 tensor for v2 requests). */
  imageSha256: string;
  heatmapMethod: 'cam' | 'occlusion' | null;
  stats: PredictionStats | null;
  /**
   * 64-d Gaussian random projection (fixed seed {@link EMBEDDING_SEED}) of the globally pooled
   * `features` output, for embedding drift; null for models without a features output.
   */
  embedding: number[] | null;
  latencyMs: number;
  requestId: string | null;
  actor: string;
  /** true when the result came from the prediction cache. */
  cached: boolean;
}

export { EMBEDDING_DIM, EMBEDDING_SEED } from '../../core/ml/embedding.js';

export interface PredictionQuery {
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
  model?: string;
  version?: string;
  variant?: string;
  /** true: shadow results only; false: served results only; absent: both. */
  shadow?: boolean;
  /** Page size (1–10000, default 100); `limit` is an alias. */
  pageSize?: number;
  limit?: number;
  pageToken?: string;
  /** 'desc' (newest first, default) or 'asc'. */
  order?: 'asc' | 'desc';
}

export interface PredictionPage {
  items: PredictionRecord[];
  nextPageToken?: string;
}

/**
 * Logged predictions. Written in batches by the deployment service's recorder; read by the
 * deployment API (GET /predictions/{id}) and the monitoring service (drift windows).
 */
export interface PredictionStore {
  /** Inserts records (any number; chunked internally). Ids must be new. */
  insertMany(records: PredictionRecord[]): Promise<void>;
  /** The prediction with this id, or null. */
  get(id: string): Promise<PredictionRecord | null>;
  /** The prediction with this id. @throws AppError NOT_FOUND when absent. */
  require(id: string): Promise<PredictionRecord>;
  /**
   * Predictions matching the filters, ordered by time (then id), paged with an opaque token.
   * @throws AppError INVALID_INPUT on a malformed page token.
   */
  list(query?: PredictionQuery): Promise<PredictionPage>;
}

const MAX_PAGE = 10_000;
const INSERT_CHUNK = 100;

function parseJson<T>(text: string | null): T | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

function toRecord(row: Selectable<PredictionsTable>): PredictionRecord {
  return {
    id: row.id,
    time: Number(row.time),
    modelName: row.model_name,
    modelVersion: row.model_version,
    variant: row.variant,
    shadow: Number(row.shadow) === 1,
    probability: Number(row.probability),
    label: row.label as PredictionLabel,
    threshold: Number(row.threshold),
    imageSha256: row.image_sha256,
    heatmapMethod: (row.heatmap_method as PredictionRecord['heatmapMethod']) ?? null,
    stats: parseJson<PredictionStats>(row.stats),
    embedding: parseJson<number[]>(row.embedding),
    latencyMs: Number(row.latency_ms),
    requestId: row.request_id,
    actor: row.actor,
    cached: Number(row.cached) === 1,
  };
}

function toRow(r: PredictionRecord): PredictionsTable {
  return {
    id: r.id,
    time: r.time,
    model_name: r.modelName,
    model_version: r.modelVersion,
    variant: r.variant,
    shadow: r.shadow ? 1 : 0,
    probability: r.probability,
    label: r.label,
    threshold: r.threshold,
    image_sha256: r.imageSha256,
    heatmap_method: r.heatmapMethod,
    stats: r.stats ? JSON.stringify(r.stats) : null,
    embedding: r.embedding ? JSON.stringify(r.embedding) : null,
    latency_ms: r.latencyMs,
    request_id: r.requestId,
    actor: r.actor,
    cached: r.cached ? 1 : 0,
  };
}

function encodeToken(time: number, id: string): string {
  return Buffer.from(JSON.stringify([time, id])).toString('base64url');
}

function decodeToken(token: string): [number, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') return [parsed[0], parsed[1]];
  } catch {
    /* fall through */
  }
  throw new AppError('INVALID_INPUT', 'invalid page token');
}

/** {@link PredictionStore} on kysely: one implementation for SQLite and PostgreSQL. */
export class KyselyPredictionStore implements PredictionStore {
  readonly #db: Kysely<DeploymentTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DeploymentTables>;
  }

  async insertMany(records: PredictionRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map(toRow);
    await this.#db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto('predictions').values(rows.slice(i, i + INSERT_CHUNK)).execute();
    });
  }

  async get(id: string): Promise<PredictionRecord | null> {
    const row = await this.#db.selectFrom('predictions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async require(id: string): Promise<PredictionRecord> {
    const found = await this.get(id);
    if (!found) throw new AppError('NOT_FOUND', `prediction '${id}' does not exist`);
    return found;
  }

  async list(query: PredictionQuery = {}): Promise<PredictionPage> {
    const pageSize = Math.min(Math.max(Math.trunc(query.pageSize ?? query.limit ?? 100), 1), MAX_PAGE);
    const order = query.order ?? 'desc';
    let q = this.#db.selectFrom('predictions').selectAll();
    if (query.since !== undefined) q = q.where('time', '>=', query.since);
    if (query.until !== undefined) q = q.where('time', '<=', query.until);
    if (query.model !== undefined) q = q.where('model_name', '=', query.model);
    if (query.version !== undefined) q = q.where('model_version', '=', query.version);
    if (query.variant !== undefined) q = q.where('variant', '=', query.variant);
    if (query.shadow !== undefined) q = q.where('shadow', '=', query.shadow ? 1 : 0);
    if (query.pageToken) {
      const [time, id] = decodeToken(query.pageToken);
      const cmp = order === 'desc' ? '<' : '>';
      q = q.where((eb) => eb.or([eb('time', cmp, time), eb.and([eb('time', '=', time), eb('id', cmp, id)])]));
    }
    const rows = await q.orderBy('time', order).orderBy('id', order).limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toRecord);
    if (rows.length <= pageSize) return { items };
    const last = items[items.length - 1]!;
    return { items, nextPageToken: encodeToken(last.time, last.id) };
  }
}
