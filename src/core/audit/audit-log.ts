import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/index.js';
import { BatchWriter, type DurableWriter } from '../db/batch-writer.js';

export interface AuditInput {
  actor: string;
  action: string;
  resource: string;
  outcome?: 'success' | 'failure' | 'denied';
  requestId?: string | null;
  service?: string | null;
  details?: Record<string, unknown> | null;
}

export interface AuditRecord {
  seq: number;
  id: string;
  time: number;
  actor: string;
  action: string;
  resource: string;
  outcome: string;
  requestId: string | null;
  service: string | null;
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  resource?: string;
  since?: number;
  until?: number;
  pageSize?: number;
  pageToken?: string;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  firstBrokenSeq?: number;
  reason?: string;
}

export const GENESIS_HASH = '0'.repeat(64);
const LOCK_ID = 727_274_001;

function rowHash(prevHash: string, r: Omit<AuditRecord, 'hash' | 'prevHash'>): string {
  const body = JSON.stringify([r.seq, r.id, r.time, r.actor, r.action, r.resource, r.outcome, r.requestId, r.service, r.details]);
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * Append-only, tamper-evident audit trail shared by every service: each record carries the hash
 * of the previous one. Records are written by group commit (BatchWriter): `record()` never
 * waits, and the service apps' request barrier (Durability) holds each response until the
 * records queued during its request are stored — an answered request's record is durable.
 */
export class AuditLog {
  readonly #database: Database;
  readonly #writer: BatchWriter<{ input: AuditInput; time: number; id: string }>;

  constructor(database: Database, options: { flushDelayMs?: number; logger?: Logger } = {}) {
    this.#database = database;
    this.#writer = new BatchWriter((batch) => this.#writeBatch(batch), { delayMs: options.flushDelayMs ?? 20, logger: options.logger, what: 'audit records' });
  }

  /** The group-commit writer (for the request barrier). */
  get writer(): DurableWriter {
    return this.#writer;
  }

  /** Queues a record; returns its id at once (stored before the request's response goes out). */
  record(input: AuditInput): string {
    const id = randomUUID();
    this.#writer.add({ input, time: Date.now(), id });
    return id;
  }

  /** Queues a record and waits until it is stored. */
  async append(input: AuditInput): Promise<string> {
    const id = randomUUID();
    await this.#writer.durable(this.#writer.add({ input, time: Date.now(), id }));
    return id;
  }

  /** Persists every pending record (serialised; safe to call concurrently). */
  flush(): Promise<void> {
    return this.#writer.durable();
  }

  async #writeBatch(batch: { input: AuditInput; time: number; id: string }[]): Promise<void> {
    const { db, capabilities } = this.#database;
    await db.transaction().execute(async (trx) => {
      if (capabilities.engine === 'postgres') await sql`select pg_advisory_xact_lock(${LOCK_ID})`.execute(trx);
      const last = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      let seq = last ? Number(last.seq) : 0;
      let prevHash = last?.hash ?? GENESIS_HASH;
      const rows = batch.map(({ input, time, id }) => {
        seq += 1;
        const rec = {
          seq,
          id,
          time,
          actor: input.actor || 'anonymous',
          action: input.action,
          resource: input.resource,
          outcome: input.outcome ?? 'success',
          requestId: input.requestId ?? null,
          service: input.service ?? null,
          details: input.details ?? null,
        };
        const hash = rowHash(prevHash, rec);
        const row = {
          seq,
          id,
          time,
          actor: rec.actor,
          action: rec.action,
          resource: rec.resource,
          outcome: rec.outcome,
          request_id: rec.requestId,
          service: rec.service,
          details: rec.details === null ? null : JSON.stringify(rec.details),
          prev_hash: prevHash,
          hash,
        };
        prevHash = hash;
        return row;
      });
      for (let i = 0; i < rows.length; i += 200) await trx.insertInto('audit_log').values(rows.slice(i, i + 200)).execute();
    });
  }

  /** Filtered, paged query, newest first. pageToken is the last seq seen. */
  async query(q: AuditQuery = {}): Promise<{ items: AuditRecord[]; nextPageToken?: string }> {
    await this.flush();
    const pageSize = Math.min(Math.max(q.pageSize ?? 100, 1), 1000);
    let query = this.#database.db.selectFrom('audit_log').selectAll();
    if (q.actor) query = query.where('actor', '=', q.actor);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.resource) query = query.where('resource', '=', q.resource);
    if (q.since !== undefined) query = query.where('time', '>=', q.since);
    if (q.until !== undefined) query = query.where('time', '<=', q.until);
    if (q.pageToken) query = query.where('seq', '<', Number(q.pageToken));
    const rows = await query.orderBy('seq', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toRecord);
    return rows.length > pageSize ? { items, nextPageToken: String(items[items.length - 1]!.seq) } : { items };
  }

  /** Walks the chain in order; reports the first record whose hash or link does not match. */
  async verify(): Promise<VerifyResult> {
    await this.flush();
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    let checked = 0;
    let after = 0;
    for (;;) {
      const rows = await this.#database.db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(5000).execute();
      if (rows.length === 0) break;
      for (const row of rows) {
        const r = toRecord(row);
        if (r.seq !== expectedSeq) return { ok: false, checked, firstBrokenSeq: r.seq, reason: `sequence gap: expected ${expectedSeq}, found ${r.seq}` };
        if (r.prevHash !== prevHash) return { ok: false, checked, firstBrokenSeq: r.seq, reason: 'link to the previous record does not match' };
        if (rowHash(prevHash, r) !== r.hash) return { ok: false, checked, firstBrokenSeq: r.seq, reason: 'record content does not match its hash' };
        prevHash = r.hash;
        expectedSeq++;
        checked++;
        after = r.seq;
      }
    }
    return { ok: true, checked };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a raw row from either engine (numbers may arrive as strings on PostgreSQL)
function toRecord(row: any): AuditRecord {
  return {
    seq: Number(row.seq),
    id: row.id,
    time: Number(row.time),
    actor: row.actor,
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    requestId: row.request_id ?? null,
    service: row.service ?? null,
    details: row.details ? JSON.parse(row.details) : null,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
