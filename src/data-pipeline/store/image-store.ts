import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { AppError } from '../../core/errors.js';
import type { DataImagesTable, DataPipelineTables } from './tables.js';
import type { ImageRecord, ImageSource, Label, Page, PageRequest, PatientSource, Split } from './types.js';

/** The fields of an image that validation and versioning need, without stats. */
export interface ImageSummary {
  hash: string;
  label: Label;
  patientId: string | null;
  split: Split | null;
  phash: string;
  qualityFlags: string[];
  sourceName: string;
}

export interface ImageListQuery extends PageRequest {
  label?: Label;
}

/**
 * Image metadata. The bytes live in the object store under `objectKey`; rows here never hold blobs.
 * One row per distinct stored content (sha256); every ingest sighting is kept as an {@link ImageSource}.
 */
export interface ImageStore {
  /** The image with this hash, or null. */
  get(hash: string): Promise<ImageRecord | null>;
  /** The image with this hash. @throws AppError NOT_FOUND when absent. */
  require(hash: string): Promise<ImageRecord>;
  /**
   * Inserts an image and its first sighting in one transaction.
   * @returns false (and writes nothing) when an image with this hash already exists.
   */
  insert(image: ImageRecord): Promise<boolean>;
  /**
   * Records a sighting of existing bytes.
   * @returns false when the same (hash, label, source name) was already recorded.
   */
  addSource(source: ImageSource): Promise<boolean>;
  /** Every sighting of one image, oldest first. */
  sources(hash: string): Promise<ImageSource[]>;
  /** Hashes whose sightings carry more than one label, with those labels (sorted). */
  labelConflicts(): Promise<Map<string, Label[]>>;
  /** Images in hash order, paged. */
  list(query?: ImageListQuery): Promise<Page<ImageRecord>>;
  /** Every image as a summary, in hash order (read in pages of `batch`, default 2000). */
  scan(batch?: number): AsyncGenerator<ImageSummary>;
  /** Number of images per label. */
  countByLabel(): Promise<Record<Label, number>>;
}

function parseJson<T>(text: string | null, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function toRecord(row: Selectable<DataImagesTable>): ImageRecord {
  return {
    hash: row.hash,
    objectKey: row.object_key,
    sizeBytes: Number(row.size_bytes),
    sourceName: row.source_name,
    label: row.label as Label,
    patientId: row.patient_id,
    patientSource: row.patient_source as PatientSource,
    split: (row.split as Split | null) ?? null,
    format: row.format as ImageRecord['format'],
    modality: row.modality,
    width: Number(row.width),
    height: Number(row.height),
    bitDepth: Number(row.bit_depth),
    photometric: row.photometric,
    stats: parseJson<unknown>(row.stats, null),
    phash: row.phash,
    qualityFlags: parseJson<string[]>(row.quality_flags, []),
    ingestedAt: Number(row.ingested_at),
    ingestedBy: row.ingested_by,
  };
}

function clampPageSize(n: number | undefined, max = 1000): number {
  return Math.min(Math.max(Math.trunc(n ?? 100), 1), max);
}

/** {@link ImageStore} on kysely: one implementation for SQLite and PostgreSQL. */
export class KyselyImageStore implements ImageStore {
  readonly #db: Kysely<DataPipelineTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DataPipelineTables>;
  }

  async get(hash: string): Promise<ImageRecord | null> {
    const row = await this.#db.selectFrom('data_images').selectAll().where('hash', '=', hash).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async require(hash: string): Promise<ImageRecord> {
    const image = await this.get(hash);
    if (!image) throw new AppError('NOT_FOUND', `image '${hash}' does not exist`);
    return image;
  }

  async insert(image: ImageRecord): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('data_images')
        .values({
          hash: image.hash,
          object_key: image.objectKey,
          size_bytes: image.sizeBytes,
          source_name: image.sourceName,
          label: image.label,
          patient_id: image.patientId,
          patient_source: image.patientSource,
          split: image.split,
          format: image.format,
          modality: image.modality,
          width: image.width,
          height: image.height,
          bit_depth: image.bitDepth,
          photometric: image.photometric,
          stats: JSON.stringify(image.stats ?? null),
          phash: image.phash,
          quality_flags: JSON.stringify(image.qualityFlags),
          ingested_at: image.ingestedAt,
          ingested_by: image.ingestedBy,
        })
        .onConflict((oc) => oc.column('hash').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
      await trx
        .insertInto('data_image_sources')
        .values({
          id: randomUUID(),
          hash: image.hash,
          source_name: image.sourceName,
          label: image.label,
          patient_id: image.patientId,
          split: image.split,
          ingested_at: image.ingestedAt,
        })
        .execute();
      return true;
    });
  }

  async addSource(source: ImageSource): Promise<boolean> {
    const result = await this.#db
      .insertInto('data_image_sources')
      .values({
        id: randomUUID(),
        hash: source.hash,
        source_name: source.sourceName,
        label: source.label,
        patient_id: source.patientId,
        split: source.split,
        ingested_at: source.ingestedAt,
      })
      .onConflict((oc) => oc.columns(['hash', 'label', 'source_name']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async sources(hash: string): Promise<ImageSource[]> {
    const rows = await this.#db
      .selectFrom('data_image_sources')
      .selectAll()
      .where('hash', '=', hash)
      .orderBy('ingested_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      hash: r.hash,
      sourceName: r.source_name,
      label: r.label as Label,
      patientId: r.patient_id,
      split: (r.split as Split | null) ?? null,
      ingestedAt: Number(r.ingested_at),
    }));
  }

  async labelConflicts(): Promise<Map<string, Label[]>> {
    const conflicted = this.#db
      .selectFrom('data_image_sources')
      .select('hash')
      .groupBy('hash')
      .having((eb) => eb.fn.count('label').distinct(), '>', 1);
    const rows = await this.#db
      .selectFrom('data_image_sources')
      .select(['hash', 'label'])
      .distinct()
      .where('hash', 'in', conflicted)
      .orderBy('hash')
      .orderBy('label')
      .execute();
    const out = new Map<string, Label[]>();
    for (const r of rows) {
      const labels = out.get(r.hash) ?? [];
      labels.push(r.label as Label);
      out.set(r.hash, labels);
    }
    return out;
  }

  async list(query: ImageListQuery = {}): Promise<Page<ImageRecord>> {
    const pageSize = clampPageSize(query.pageSize);
    let q = this.#db.selectFrom('data_images').selectAll();
    if (query.label) q = q.where('label', '=', query.label);
    if (query.pageToken) q = q.where('hash', '>', query.pageToken);
    const rows = await q.orderBy('hash').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toRecord);
    return rows.length > pageSize ? { items, nextPageToken: items[items.length - 1]!.hash } : { items };
  }

  async *scan(batch = 2000): AsyncGenerator<ImageSummary> {
    let after = '';
    for (;;) {
      const rows = await this.#db
        .selectFrom('data_images')
        .select(['hash', 'label', 'patient_id', 'split', 'phash', 'quality_flags', 'source_name'])
        .where('hash', '>', after)
        .orderBy('hash')
        .limit(batch)
        .execute();
      for (const r of rows) {
        yield {
          hash: r.hash,
          label: r.label as Label,
          patientId: r.patient_id,
          split: (r.split as Split | null) ?? null,
          phash: r.phash,
          qualityFlags: parseJson<string[]>(r.quality_flags, []),
          sourceName: r.source_name,
        };
      }
      if (rows.length < batch) return;
      after = rows[rows.length - 1]!.hash;
    }
  }

  async countByLabel(): Promise<Record<Label, number>> {
    const rows = await this.#db
      .selectFrom('data_images')
      .select(['label', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('label')
      .execute();
    const out: Record<Label, number> = { NORMAL: 0, PNEUMONIA: 0, unlabelled: 0 };
    for (const r of rows) out[r.label as Label] = Number(r.n);
    return out;
  }
}
