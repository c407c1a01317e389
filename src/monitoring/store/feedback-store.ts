import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { MonitoringTables, PredictionFeedbackTable } from './tables.js';
import type { Feedback } from './types.js';

/**
 * Confirmed ground-truth labels of predictions (one per prediction; a later label replaces an
 * earlier one). The prediction's probability and threshold are copied in so rolling metrics need
 * no join with the deployment service's table.
 */
export interface FeedbackStore {
  /** Inserts or replaces the label of a prediction; returns true when it replaced one. */
  upsert(feedback: Feedback): Promise<boolean>;
  /** The `limit` most recently predicted labelled predictions of a model version, oldest first. */
  recent(model: string, version: string, limit: number, window?: { since?: number; until?: number }): Promise<Feedback[]>;
  /** Model versions with at least one label. */
  versions(): Promise<{ model: string; version: string }[]>;
}

function toFeedback(row: Selectable<PredictionFeedbackTable>): Feedback {
  return {
    predictionId: row.prediction_id,
    model: row.model_name,
    version: row.model_version,
    label: Number(row.label) === 1 ? 1 : 0,
    probability: Number(row.probability),
    threshold: Number(row.threshold),
    predictedAt: Number(row.predicted_at),
    actor: row.actor,
    createdAt: Number(row.created_at),
  };
}

export class SqlFeedbackStore implements FeedbackStore {
  readonly #db: Kysely<MonitoringTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<MonitoringTables>;
  }

  async upsert(f: Feedback): Promise<boolean> {
    const row: PredictionFeedbackTable = {
      prediction_id: f.predictionId,
      model_name: f.model,
      model_version: f.version,
      label: f.label,
      probability: f.probability,
      threshold: f.threshold,
      predicted_at: f.predictedAt,
      actor: f.actor,
      created_at: f.createdAt,
    };
    return this.#db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('prediction_feedback').select('prediction_id').where('prediction_id', '=', f.predictionId).executeTakeFirst();
      if (existing) {
        await trx
          .updateTable('prediction_feedback')
          .set({ label: f.label, actor: f.actor, created_at: f.createdAt })
          .where('prediction_id', '=', f.predictionId)
          .execute();
        return true;
      }
      await trx.insertInto('prediction_feedback').values(row).execute();
      return false;
    });
  }

  async recent(model: string, version: string, limit: number, window: { since?: number; until?: number } = {}): Promise<Feedback[]> {
    let q = this.#db.selectFrom('prediction_feedback').selectAll().where('model_name', '=', model).where('model_version', '=', version);
    if (window.since !== undefined) q = q.where('predicted_at', '>=', window.since);
    if (window.until !== undefined) q = q.where('predicted_at', '<=', window.until);
    const rows = await q.orderBy('predicted_at', 'desc').orderBy('prediction_id', 'desc').limit(limit).execute();
    return rows.reverse().map(toFeedback);
  }

  async versions(): Promise<{ model: string; version: string }[]> {
    const rows = await this.#db.selectFrom('prediction_feedback').select(['model_name', 'model_version']).groupBy(['model_name', 'model_version']).execute();
    return rows.map((r) => ({ model: r.model_name, version: r.model_version }));
  }
}
