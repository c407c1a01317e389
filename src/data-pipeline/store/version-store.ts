import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { AppError } from '../../core/errors.js';
import type { DataPipelineTables, DataVersionsTable } from './tables.js';
import type { Page, PageRequest, SplitCounts } from './types.js';

/** The listing row of a dataset version; the manifest itself is in the object store at `manifestKey`. */
export interface VersionRecord {
  /** sha256 of the canonical manifest JSON. */
  id: string;
  name: string;
  manifestKey: string;
  seed: number;
  preprocessingHash: string;
  itemCount: number;
  counts: SplitCounts;
  createdAt: number;
  createdBy: string;
}

/** Dataset version rows. Versions are immutable: there is no update. */
export interface VersionStore {
  /** The version, or null. */
  get(id: string): Promise<VersionRecord | null>;
  /** The version. @throws AppError NOT_FOUND when absent. */
  require(id: string): Promise<VersionRecord>;
  /** Inserts a version; returns false (writing nothing) when the id already exists. */
  insert(version: VersionRecord): Promise<boolean>;
  /** Versions newest first, paged (the token is opaque). */
  list(page?: PageRequest): Promise<Page<VersionRecord>>;
}

function toRecord(row: Selectable<DataVersionsTable>): VersionRecord {
  return {
    id: row.id,
    name: row.name,
    manifestKey: row.manifest_key,
    seed: Number(row.seed),
    preprocessingHash: row.preprocessing_hash,
    itemCount: Number(row.item_count),
    counts: JSON.parse(row.counts) as SplitCounts,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
  };
}

function encodeToken(v: VersionRecord): string {
  return Buffer.from(`${v.createdAt}:${v.id}`).toString('base64url');
}

function decodeToken(token: string): { createdAt: number; id: string } {
  const [at, id] = Buffer.from(token, 'base64url').toString().split(':');
  const createdAt = Number(at);
  if (!id || !Number.isFinite(createdAt)) throw new AppError('INVALID_INPUT', 'invalid page_token');
  return { createdAt, id };
}

/** {@link VersionStore} on kysely (SQLite and PostgreSQL alike). */
export class KyselyVersionStore implements VersionStore {
  readonly #db: Kysely<DataPipelineTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DataPipelineTables>;
  }

  async get(id: string): Promise<VersionRecord | null> {
    const row = await this.#db.selectFrom('data_versions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async require(id: string): Promise<VersionRecord> {
    const version = await this.get(id);
    if (!version) throw new AppError('NOT_FOUND', `dataset version '${id}' does not exist`);
    return version;
  }

  async insert(v: VersionRecord): Promise<boolean> {
    const result = await this.#db
      .insertInto('data_versions')
      .values({
        id: v.id,
        name: v.name,
        manifest_key: v.manifestKey,
        seed: v.seed,
        preprocessing_hash: v.preprocessingHash,
        item_count: v.itemCount,
        counts: JSON.stringify(v.counts),
        created_at: v.createdAt,
        created_by: v.createdBy,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async list(page: PageRequest = {}): Promise<Page<VersionRecord>> {
    const pageSize = Math.min(Math.max(Math.trunc(page.pageSize ?? 100), 1), 1000);
    let q = this.#db.selectFrom('data_versions').selectAll();
    if (page.pageToken) {
      const { createdAt, id } = decodeToken(page.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '>', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toRecord);
    return rows.length > pageSize ? { items, nextPageToken: encodeToken(items[items.length - 1]!) } : { items };
  }
}
