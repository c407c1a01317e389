import type { Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { MonitoringTables } from './tables.js';

/**
 * Counts of prediction requests by outcome, read from the audit trail, where the deployment
 * service records each served prediction (`prediction.create`, outcome success) and failed ones
 * with outcome failure; the predictions table holds only the successful ones.
 */
export interface OutcomeSource {
  /** Prediction requests (audit actions `prediction.*` of the deployment service, shadow results excluded) in [since, until]. */
  counts(since: number, until: number): Promise<{ total: number; failures: number }>;
}

export class AuditOutcomeSource implements OutcomeSource {
  readonly #db: Kysely<MonitoringTables>;
  readonly #service: string;
  readonly #actionPrefix: string;

  constructor(database: Database, options: { service?: string; actionPrefix?: string } = {}) {
    this.#db = database.db as Kysely<MonitoringTables>;
    this.#service = options.service ?? 'deployment';
    this.#actionPrefix = options.actionPrefix ?? 'prediction.';
  }

  async counts(since: number, until: number): Promise<{ total: number; failures: number }> {
    const rows = await this.#db
      .selectFrom('audit_log')
      .select(['outcome', (eb) => eb.fn.countAll().as('n')])
      .where('service', '=', this.#service)
      .where('action', 'like', `${this.#actionPrefix}%`)
      .where('action', '!=', 'prediction.shadow')
      .where('time', '>=', since)
      .where('time', '<=', until)
      .where('outcome', 'in', ['success', 'failure'])
      .groupBy('outcome')
      .execute();
    let total = 0;
    let failures = 0;
    for (const r of rows) {
      total += Number(r.n);
      if (r.outcome === 'failure') failures += Number(r.n);
    }
    return { total, failures };
  }
}
