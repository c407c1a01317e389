import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { AppError, notFound } from '../../core/errors.js';
import type { AlertChannelsTable, AlertDeadLettersTable, AlertsTable, MonitoringTables } from './tables.js';
import type { Alert, AlertStatus, Channel, ChannelInput, DeadLetter, Page, PageRequest, Severity } from './types.js';
import { clampPageSize, decodeToken, encodeToken, parseJson } from './paging.js';

export interface AlertQuery extends PageRequest {
  status?: AlertStatus | 'active';
  severity?: Severity;
  model?: string;
  rule?: string;
}

export interface RaiseInput {
  fingerprint: string;
  rule: string;
  model: string;
  version: string;
  severity: Severity;
  summary: string;
  details: Record<string, unknown> | null;
  time: number;
}

/**
 * Alerts, de-duplicated by fingerprint: while an alert is open or acknowledged, raising the same
 * fingerprint again only bumps its occurrences (and severity, when higher). Plus notification
 * channels and dead letters.
 */
export interface AlertStore {
  /**
   * Opens a new alert or updates the active one with the same fingerprint (atomically).
   * @returns the alert and whether it was newly opened.
   */
  raise(input: RaiseInput): Promise<{ alert: Alert; created: boolean }>;
  /** @throws AppError NOT_FOUND when absent. */
  get(id: string): Promise<Alert>;
  /** The open or acknowledged alert with this fingerprint, or null. */
  active(fingerprint: string): Promise<Alert | null>;
  /** Newest (last seen) first. status 'active' = open or acknowledged. */
  list(query?: AlertQuery): Promise<Page<Alert>>;
  /** @throws AppError NOT_FOUND; CONFLICT when the alert is resolved. */
  acknowledge(id: string, actor: string, time: number): Promise<Alert>;
  /** @throws AppError NOT_FOUND; CONFLICT when already resolved. */
  resolve(id: string, actor: string, time: number): Promise<Alert>;
  /** Open and acknowledged alerts per severity and status. */
  countActive(): Promise<{ severity: Severity; status: AlertStatus; count: number }[]>;

  /** @throws AppError ALREADY_EXISTS when the name is taken. */
  createChannel(input: ChannelInput, actor: string): Promise<Channel>;
  listChannels(): Promise<Channel[]>;
  /** @throws AppError NOT_FOUND when absent. */
  deleteChannel(id: string): Promise<void>;

  addDeadLetter(entry: Omit<DeadLetter, 'id' | 'createdAt'>): Promise<DeadLetter>;
  /** Newest first. */
  listDeadLetters(query?: PageRequest & { alertId?: string }): Promise<Page<DeadLetter>>;
}

function toAlert(row: Selectable<AlertsTable>): Alert {
  return {
    id: row.id,
    fingerprint: row.fingerprint,
    rule: row.rule,
    model: row.model_name,
    version: row.model_version,
    severity: row.severity as Severity,
    status: row.status as AlertStatus,
    summary: row.summary,
    details: parseJson(row.details, null),
    occurrences: Number(row.occurrences),
    firstSeen: Number(row.first_seen),
    lastSeen: Number(row.last_seen),
    acknowledgedBy: row.acknowledged_by,
    acknowledgedAt: row.acknowledged_at === null ? null : Number(row.acknowledged_at),
    resolvedBy: row.resolved_by,
    resolvedAt: row.resolved_at === null ? null : Number(row.resolved_at),
  };
}

function toChannel(row: Selectable<AlertChannelsTable>): Channel {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    settings: parseJson(row.settings, {}),
    minSeverity: row.min_severity as Severity,
    enabled: Number(row.enabled) === 1,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  } as Channel;
}

function toDeadLetter(row: Selectable<AlertDeadLettersTable>): DeadLetter {
  return {
    id: row.id,
    alertId: row.alert_id,
    channelId: row.channel_id,
    channelName: row.channel_name,
    channelKind: row.channel_kind,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    payload: parseJson<unknown>(row.payload, null),
    createdAt: Number(row.created_at),
  };
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** The active alert read in a raise was resolved before it could be bumped. */
class RaiseConflict extends Error {}

export class SqlAlertStore implements AlertStore {
  readonly #db: Kysely<MonitoringTables>;
  /** Serialises raise() per process (SQLite has one writer anyway); across replicas the database keeps one active alert per fingerprint. */
  #raising: Promise<unknown> = Promise.resolve();

  constructor(database: Database) {
    this.#db = database.db as Kysely<MonitoringTables>;
  }

  raise(input: RaiseInput): Promise<{ alert: Alert; created: boolean }> {
    const run = this.#raising.catch(() => {}).then(() => this.#raise(input));
    this.#raising = run;
    return run;
  }

  /**
   * The database allows one active alert per fingerprint (index alerts_one_active): when another
   * replica opens it between our read and our insert, the insert fails and the retry updates theirs;
   * when it resolves the one we read before we bump it, the retry opens a new one.
   */
  async #raise(input: RaiseInput): Promise<{ alert: Alert; created: boolean }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#raiseOnce(input);
      } catch (err) {
        if (attempt >= 3 || !(isUniqueViolation(err) || err instanceof RaiseConflict)) throw err;
      }
    }
  }

  #raiseOnce(input: RaiseInput): Promise<{ alert: Alert; created: boolean }> {
    return this.#db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('alerts')
        .selectAll()
        .where('fingerprint', '=', input.fingerprint)
        .where('status', 'in', ['open', 'acknowledged'])
        .orderBy('first_seen', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (existing) {
        // Increments and escalates in SQL: a concurrent raise on another replica waits for our row lock and adds its own.
        const rank = sql`case ${sql.ref('severity')} when 'info' then 0 when 'warning' then 1 else 2 end`;
        const row = await trx
          .updateTable('alerts')
          .set({
            severity: sql<string>`case when ${rank} < ${RANK[input.severity]} then ${input.severity} else ${sql.ref('severity')} end`,
            summary: input.summary,
            details: input.details === null ? null : JSON.stringify(input.details),
            occurrences: sql<number>`occurrences + 1`,
            last_seen: input.time,
          })
          .where('id', '=', existing.id)
          .where('status', 'in', ['open', 'acknowledged'])
          .returningAll()
          .executeTakeFirst();
        if (!row) throw new RaiseConflict();
        return { alert: toAlert(row), created: false };
      }
      const row: AlertsTable = {
        id: randomUUID(),
        fingerprint: input.fingerprint,
        rule: input.rule,
        model_name: input.model,
        model_version: input.version,
        severity: input.severity,
        status: 'open',
        summary: input.summary,
        details: input.details === null ? null : JSON.stringify(input.details),
        occurrences: 1,
        first_seen: input.time,
        last_seen: input.time,
        acknowledged_by: null,
        acknowledged_at: null,
        resolved_by: null,
        resolved_at: null,
      };
      await trx.insertInto('alerts').values(row).execute();
      return { alert: toAlert(row), created: true };
    });
  }

  async get(id: string): Promise<Alert> {
    const row = await this.#db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('alert', id);
    return toAlert(row);
  }

  async active(fingerprint: string): Promise<Alert | null> {
    const row = await this.#db
      .selectFrom('alerts')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .where('status', 'in', ['open', 'acknowledged'])
      .limit(1)
      .executeTakeFirst();
    return row ? toAlert(row) : null;
  }

  async list(query: AlertQuery = {}): Promise<Page<Alert>> {
    const pageSize = clampPageSize(query.pageSize);
    let q = this.#db.selectFrom('alerts').selectAll();
    if (query.status === 'active') q = q.where('status', 'in', ['open', 'acknowledged']);
    else if (query.status) q = q.where('status', '=', query.status);
    if (query.severity) q = q.where('severity', '=', query.severity);
    if (query.model) q = q.where('model_name', '=', query.model);
    if (query.rule) q = q.where('rule', '=', query.rule);
    if (query.pageToken) {
      const { time, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('last_seen', '<', time), eb.and([eb('last_seen', '=', time), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('last_seen', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toAlert);
    const last = items[items.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(last.lastSeen, last.id) } : { items };
  }

  async acknowledge(id: string, actor: string, time: number): Promise<Alert> {
    const alert = await this.get(id);
    if (alert.status === 'resolved') throw new AppError('CONFLICT', `alert '${id}' is already resolved`);
    if (alert.status === 'acknowledged') return alert;
    await this.#db.updateTable('alerts').set({ status: 'acknowledged', acknowledged_by: actor, acknowledged_at: time }).where('id', '=', id).execute();
    return { ...alert, status: 'acknowledged', acknowledgedBy: actor, acknowledgedAt: time };
  }

  async resolve(id: string, actor: string, time: number): Promise<Alert> {
    const alert = await this.get(id);
    if (alert.status === 'resolved') throw new AppError('CONFLICT', `alert '${id}' is already resolved`);
    await this.#db.updateTable('alerts').set({ status: 'resolved', resolved_by: actor, resolved_at: time }).where('id', '=', id).execute();
    return { ...alert, status: 'resolved', resolvedBy: actor, resolvedAt: time };
  }

  async countActive(): Promise<{ severity: Severity; status: AlertStatus; count: number }[]> {
    const rows = await this.#db
      .selectFrom('alerts')
      .select(['severity', 'status', (eb) => eb.fn.countAll().as('n')])
      .where('status', 'in', ['open', 'acknowledged'])
      .groupBy(['severity', 'status'])
      .execute();
    return rows.map((r) => ({ severity: r.severity as Severity, status: r.status as AlertStatus, count: Number(r.n) }));
  }

  async createChannel(input: ChannelInput, actor: string): Promise<Channel> {
    const taken = await this.#db.selectFrom('alert_channels').select('id').where('name', '=', input.name).executeTakeFirst();
    if (taken) throw new AppError('ALREADY_EXISTS', `a channel named '${input.name}' already exists`);
    const row: AlertChannelsTable = {
      id: randomUUID(),
      name: input.name,
      kind: input.kind,
      settings: JSON.stringify(input.settings),
      min_severity: input.minSeverity,
      enabled: input.enabled ? 1 : 0,
      created_by: actor,
      created_at: Date.now(),
    };
    await this.#db.insertInto('alert_channels').values(row).execute();
    return toChannel(row);
  }

  async listChannels(): Promise<Channel[]> {
    const rows = await this.#db.selectFrom('alert_channels').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toChannel);
  }

  async deleteChannel(id: string): Promise<void> {
    const res = await this.#db.deleteFrom('alert_channels').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound('alert channel', id);
  }

  async addDeadLetter(entry: Omit<DeadLetter, 'id' | 'createdAt'>): Promise<DeadLetter> {
    const row: AlertDeadLettersTable = {
      id: randomUUID(),
      alert_id: entry.alertId,
      channel_id: entry.channelId,
      channel_name: entry.channelName,
      channel_kind: entry.channelKind,
      attempts: entry.attempts,
      last_error: entry.lastError.slice(0, 2000),
      payload: JSON.stringify(entry.payload ?? null),
      created_at: Date.now(),
    };
    await this.#db.insertInto('alert_dead_letters').values(row).execute();
    return toDeadLetter(row);
  }

  async listDeadLetters(query: PageRequest & { alertId?: string } = {}): Promise<Page<DeadLetter>> {
    const pageSize = clampPageSize(query.pageSize);
    let q = this.#db.selectFrom('alert_dead_letters').selectAll();
    if (query.alertId) q = q.where('alert_id', '=', query.alertId);
    if (query.pageToken) {
      const { time, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', time), eb.and([eb('created_at', '=', time), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toDeadLetter);
    const last = items[items.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(last.createdAt, last.id) } : { items };
  }
}
