import type { Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { notFound } from '../../core/errors.js';
import type { MonitoringTables } from './tables.js';
import type { DriftReport, Page, PageRequest, Verdict } from './types.js';
import { clampPageSize, decodeToken, encodeToken } from './paging.js';

export interface ReportQuery extends PageRequest {
  model?: string;
  version?: string;
  verdict?: Verdict;
  since?: number;
  until?: number;
}

/** Drift reports: summary columns for filtering plus the whole report as JSON text. */
export interface ReportStore {
  insert(report: DriftReport): Promise<void>;
  /** @throws AppError NOT_FOUND when absent. */
  get(id: string): Promise<DriftReport>;
  /** Newest first. */
  list(query?: ReportQuery): Promise<Page<DriftReport>>;
  /** The newest report of each (model, version), for the drift gauges after a restart. */
  latestPerVersion(): Promise<DriftReport[]>;
}

export class SqlReportStore implements ReportStore {
  readonly #db: Kysely<MonitoringTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<MonitoringTables>;
  }

  async insert(r: DriftReport): Promise<void> {
    await this.#db
      .insertInto('drift_reports')
      .values({
        id: r.id,
        model_name: r.model,
        model_version: r.version,
        reference_id: r.reference_id,
        trigger: r.trigger,
        window_since: r.window.since,
        window_until: r.window.until,
        window_last_n: r.window.last_n,
        n_reference: r.n_reference,
        n_current: r.n_current,
        verdict: r.verdict,
        drifted_detectors: JSON.stringify(r.drifted_detectors),
        report: JSON.stringify(r),
        duration_ms: r.duration_ms,
        created_by: r.created_by,
        created_at: r.created_at,
      })
      .execute();
  }

  async get(id: string): Promise<DriftReport> {
    const row = await this.#db.selectFrom('drift_reports').select('report').where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('drift report', id);
    return JSON.parse(row.report) as DriftReport;
  }

  async list(query: ReportQuery = {}): Promise<Page<DriftReport>> {
    const pageSize = clampPageSize(query.pageSize);
    let q = this.#db.selectFrom('drift_reports').select(['id', 'created_at', 'report']);
    if (query.model) q = q.where('model_name', '=', query.model);
    if (query.version) q = q.where('model_version', '=', query.version);
    if (query.verdict) q = q.where('verdict', '=', query.verdict);
    if (query.since !== undefined) q = q.where('created_at', '>=', query.since);
    if (query.until !== undefined) q = q.where('created_at', '<=', query.until);
    if (query.pageToken) {
      const { time, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', time), eb.and([eb('created_at', '=', time), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const page = rows.slice(0, pageSize);
    const items = page.map((r) => JSON.parse(r.report) as DriftReport);
    const last = page[page.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(Number(last.created_at), last.id) } : { items };
  }

  async latestPerVersion(): Promise<DriftReport[]> {
    const newest = this.#db
      .selectFrom('drift_reports')
      .select(['model_name', 'model_version', (eb) => eb.fn.max('created_at').as('created_at')])
      .groupBy(['model_name', 'model_version'])
      .as('newest');
    const rows = await this.#db
      .selectFrom('drift_reports as r')
      .innerJoin(newest, (j) =>
        j.onRef('r.model_name', '=', 'newest.model_name').onRef('r.model_version', '=', 'newest.model_version').onRef('r.created_at', '=', 'newest.created_at'),
      )
      .select('r.report')
      .execute();
    return rows.map((r) => JSON.parse(r.report) as DriftReport);
  }
}
