import type { Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { DataPipelineTables } from './tables.js';

/** The DICOM identity of one stored image: de-identified UIDs only (what the stored file carries). */
export interface DicomInstanceRecord {
  hash: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: string | null;
  receivedAt: number;
}

export interface StudySummary {
  studyUid: string;
  modalities: string[];
  series: number;
  instances: number;
}

export interface SeriesSummary {
  studyUid: string;
  seriesUid: string;
  modality: string | null;
  instances: number;
}

/** QIDO-style paging: `limit` results after skipping `offset`. */
export interface QidoPage {
  limit: number;
  offset: number;
}

/**
 * Which studies, series and instances the platform holds, for QIDO-RS. Rows hold de-identified
 * UIDs and image hashes, never a patient identifier.
 */
export interface DicomInstanceStore {
  /** Records the identity of a stored image; a second call for the same hash changes nothing. */
  record(instance: DicomInstanceRecord): Promise<void>;
  /** Studies, by Study Instance UID (optionally only one), paged. */
  studies(filter: { studyUid?: string }, page: QidoPage): Promise<StudySummary[]>;
  /** Series of one study (optionally one series), paged. */
  series(studyUid: string, filter: { seriesUid?: string; modality?: string }, page: QidoPage): Promise<SeriesSummary[]>;
  /** Instances of one series (optionally one SOP instance), paged. */
  instances(studyUid: string, seriesUid: string, filter: { sopInstanceUid?: string }, page: QidoPage): Promise<DicomInstanceRecord[]>;
  /** For WADO-RS: at most `limit` instances of a study, or of one of its series, or one instance; ordered by series and SOP Instance UID. */
  retrieve(filter: { studyUid: string; seriesUid?: string; sopInstanceUid?: string }, limit: number): Promise<DicomInstanceRecord[]>;
}

/** {@link DicomInstanceStore} on kysely: one implementation for SQLite and PostgreSQL. */
export class KyselyDicomInstanceStore implements DicomInstanceStore {
  readonly #db: Kysely<DataPipelineTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<DataPipelineTables>;
  }

  async record(i: DicomInstanceRecord): Promise<void> {
    await this.#db
      .insertInto('data_dicom_instances')
      .values({
        hash: i.hash,
        study_uid: i.studyUid,
        series_uid: i.seriesUid,
        sop_instance_uid: i.sopInstanceUid,
        sop_class_uid: i.sopClassUid,
        modality: i.modality,
        received_at: i.receivedAt,
      })
      .onConflict((oc) => oc.column('hash').doNothing())
      .execute();
  }

  async studies(filter: { studyUid?: string }, page: QidoPage): Promise<StudySummary[]> {
    let q = this.#db
      .selectFrom('data_dicom_instances')
      .select((eb) => [
        'study_uid',
        eb.fn.count<number>('series_uid').distinct().as('series'),
        eb.fn.countAll<number>().as('instances'),
      ])
      .groupBy('study_uid');
    if (filter.studyUid) q = q.where('study_uid', '=', filter.studyUid);
    const rows = await q.orderBy('study_uid').limit(page.limit).offset(page.offset).execute();
    if (rows.length === 0) return [];
    const mods = await this.#db
      .selectFrom('data_dicom_instances')
      .select(['study_uid', 'modality'])
      .distinct()
      .where(
        'study_uid',
        'in',
        rows.map((r) => r.study_uid),
      )
      .execute();
    return rows.map((r) => ({
      studyUid: r.study_uid,
      modalities: mods.filter((m) => m.study_uid === r.study_uid && m.modality).map((m) => m.modality!).sort(),
      series: Number(r.series),
      instances: Number(r.instances),
    }));
  }

  async series(studyUid: string, filter: { seriesUid?: string; modality?: string }, page: QidoPage): Promise<SeriesSummary[]> {
    let q = this.#db
      .selectFrom('data_dicom_instances')
      .select((eb) => ['study_uid', 'series_uid', eb.fn.max('modality').as('modality'), eb.fn.countAll<number>().as('instances')])
      .where('study_uid', '=', studyUid)
      .groupBy(['study_uid', 'series_uid']);
    if (filter.seriesUid) q = q.where('series_uid', '=', filter.seriesUid);
    if (filter.modality) q = q.where('modality', '=', filter.modality);
    const rows = await q.orderBy('series_uid').limit(page.limit).offset(page.offset).execute();
    return rows.map((r) => ({ studyUid: r.study_uid, seriesUid: r.series_uid, modality: (r.modality as string | null) ?? null, instances: Number(r.instances) }));
  }

  async instances(studyUid: string, seriesUid: string, filter: { sopInstanceUid?: string }, page: QidoPage): Promise<DicomInstanceRecord[]> {
    let q = this.#db.selectFrom('data_dicom_instances').selectAll().where('study_uid', '=', studyUid).where('series_uid', '=', seriesUid);
    if (filter.sopInstanceUid) q = q.where('sop_instance_uid', '=', filter.sopInstanceUid);
    const rows = await q.orderBy('sop_instance_uid').orderBy('hash').limit(page.limit).offset(page.offset).execute();
    return rows.map(toRecord);
  }

  async retrieve(filter: { studyUid: string; seriesUid?: string; sopInstanceUid?: string }, limit: number): Promise<DicomInstanceRecord[]> {
    let q = this.#db.selectFrom('data_dicom_instances').selectAll().where('study_uid', '=', filter.studyUid);
    if (filter.seriesUid) q = q.where('series_uid', '=', filter.seriesUid);
    if (filter.sopInstanceUid) q = q.where('sop_instance_uid', '=', filter.sopInstanceUid);
    const rows = await q.orderBy('series_uid').orderBy('sop_instance_uid').orderBy('hash').limit(limit).execute();
    return rows.map(toRecord);
  }
}

function toRecord(r: { hash: string; study_uid: string; series_uid: string; sop_instance_uid: string; sop_class_uid: string; modality: string | null; received_at: number }): DicomInstanceRecord {
  return {
    hash: r.hash,
    studyUid: r.study_uid,
    seriesUid: r.series_uid,
    sopInstanceUid: r.sop_instance_uid,
    sopClassUid: r.sop_class_uid,
    modality: r.modality,
    receivedAt: Number(r.received_at),
  };
}
