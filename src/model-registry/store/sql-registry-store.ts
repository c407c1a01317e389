import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { AppError } from '../../core/errors.js';
import { decodeOffsetToken, toPage, type Page } from './paging.js';
import { MODEL_VERSION_GRAMMAR, parseFilter, parseOrderBy, REGISTERED_MODEL_GRAMMAR, type Comparator, type FilterGrammar } from './search-filter.js';
import type { ModelVersionRow, RegisteredModelRow, RegistryTables, StageEventRow } from './tables.js';
import type { KeyValue } from './tracking-store.js';
import {
  STAGES,
  type GateVerdict,
  type ModelVersionRecord,
  type NewModelVersion,
  type RegisteredModelRecord,
  type RegistryStore,
  type SearchQuery,
  type Stage,
  type StageChange,
  type StageEvent,
  type VersionArtifact,
} from './registry-store.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ALIAS = /^[A-Za-z_][A-Za-z0-9_-]{0,255}$/;

/** Model names double as URL path parts and object-key parts, so they are kept plain. */
export function validateModelName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AppError('INVALID_INPUT', `Invalid model name '${String(name).slice(0, 140)}': 1–128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
  return name;
}

export function validateAlias(alias: string): string {
  if (typeof alias !== 'string' || !ALIAS.test(alias)) throw new AppError('INVALID_INPUT', `Invalid alias name '${String(alias).slice(0, 60)}': letters, digits, '_' and '-', starting with a letter or '_'`);
  if (/^v\d+$/i.test(alias) || alias.toLowerCase() === 'latest') throw new AppError('INVALID_INPUT', `Invalid alias name '${alias}': 'latest' and 'v<number>' are reserved`);
  return alias;
}

function parseJson<T>(text: string | null): T | null {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}


function opOf(comparator: Comparator, ilike: 'like' | 'ilike'): string {
  if (comparator === 'LIKE') return 'like';
  if (comparator === 'ILIKE') return ilike;
  if (comparator === 'IN') return 'in';
  if (comparator === 'NOT IN') return 'not in';
  return comparator;
}

const VERSION_COLUMNS: Record<string, string> = {
  name: 'name',
  run_id: 'run_id',
  source: 'source',
  version_number: 'version',
  current_stage: 'current_stage',
  creation_timestamp: 'creation_timestamp',
  last_updated_timestamp: 'last_updated_timestamp',
};

/** The kysely RegistryStore: one implementation for SQLite and PostgreSQL. */
export class SqlRegistryStore implements RegistryStore {
  readonly #db: Kysely<RegistryTables>;
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
    this.#db = database.db as Kysely<RegistryTables>;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- dynamic table names (search filters) are outside the typed schema
  get #dyn(): Kysely<any> {
    return this.#database.db;
  }

  async createRegisteredModel(input: { name: string; description?: string; tags?: KeyValue[]; userId: string }): Promise<RegisteredModelRecord> {
    validateModelName(input.name);
    const now = Date.now();
    try {
      await this.#db.transaction().execute(async (trx) => {
        const existing = await trx.selectFrom('registered_models').select('name').where('name', '=', input.name).executeTakeFirst();
        if (existing) throw new AppError('ALREADY_EXISTS', `Registered Model (name=${input.name}) already exists.`);
        await trx
          .insertInto('registered_models')
          .values({ name: input.name, description: input.description ?? '', user_id: input.userId, creation_timestamp: now, last_updated_timestamp: now })
          .execute();
        const tags = dedupe(input.tags ?? []);
        if (tags.length) await trx.insertInto('registered_model_tags').values(tags.map((t) => ({ name: input.name, ...t }))).execute();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('ALREADY_EXISTS', `Registered Model (name=${input.name}) already exists.`);
      throw err;
    }
    return this.getRegisteredModel(input.name);
  }

  async ensureRegisteredModel(name: string, userId: string): Promise<void> {
    validateModelName(name);
    const now = Date.now();
    await this.#db
      .insertInto('registered_models')
      .values({ name, description: '', user_id: userId, creation_timestamp: now, last_updated_timestamp: now })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  async #modelRow(name: string, db: Kysely<RegistryTables> | Transaction<RegistryTables> = this.#db): Promise<RegisteredModelRow> {
    const row = await db.selectFrom('registered_models').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `Registered Model with name=${name} not found`);
    return row;
  }

  async getRegisteredModel(name: string): Promise<RegisteredModelRecord> {
    const row = await this.#modelRow(name);
    return (await this.#hydrateModels([row]))[0]!;
  }

  async #hydrateModels(rows: RegisteredModelRow[]): Promise<RegisteredModelRecord[]> {
    if (rows.length === 0) return [];
    const names = rows.map((r) => r.name);
    const [tags, aliases, versionRows] = await Promise.all([
      this.#db.selectFrom('registered_model_tags').selectAll().where('name', 'in', names).orderBy('key').execute(),
      this.#db.selectFrom('registered_model_aliases').selectAll().where('name', 'in', names).orderBy('alias').execute(),
      this.#db.selectFrom('model_versions').selectAll().where('name', 'in', names).where('deleted_at', 'is', null).execute(),
    ]);
    // latest_versions: the newest version in each stage.
    const latest = new Map<string, ModelVersionRow>();
    for (const v of versionRows) {
      const key = `${v.name}\u0000${v.current_stage}`;
      const prev = latest.get(key);
      if (!prev || Number(v.version) > Number(prev.version)) latest.set(key, v);
    }
    const latestRecords = await this.#hydrateVersions([...latest.values()]);
    return rows.map((r) => ({
      name: r.name,
      description: r.description,
      user_id: r.user_id,
      creation_timestamp: Number(r.creation_timestamp),
      last_updated_timestamp: Number(r.last_updated_timestamp),
      tags: tags.filter((t) => t.name === r.name).map((t) => ({ key: t.key, value: t.value })),
      aliases: aliases.filter((a) => a.name === r.name).map((a) => ({ alias: a.alias, version: Number(a.version) })),
      latest_versions: latestRecords.filter((v) => v.name === r.name).sort((a, b) => STAGES.indexOf(a.current_stage) - STAGES.indexOf(b.current_stage)),
    }));
  }

  async searchRegisteredModels(query: SearchQuery): Promise<Page<RegisteredModelRecord>> {
    const clauses = parseFilter(query.filter, REGISTERED_MODEL_GRAMMAR);
    const orders = parseOrderBy(query.orderBy, REGISTERED_MODEL_GRAMMAR);
    const limit = pageSize(query.pageSize, 100, 1000);
    const offset = decodeOffsetToken(query.pageToken);
    const ilike = this.#database.capabilities.ilike;
    let q = this.#dyn.selectFrom('registered_models as m').selectAll('m');
    clauses.forEach((c, i) => {
      const op = opOf(c.comparator, ilike);
      if (c.type === 'tag') {
        q = q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom(`registered_model_tags as t${i}`)
              .select(sql.lit(1).as('one'))
              .whereRef(`t${i}.name`, '=', 'm.name')
              .where(`t${i}.key`, '=', c.key)
              .where(`t${i}.value`, op as never, c.value as never),
          ),
        );
      } else q = q.where(`m.${c.key}`, op as never, c.value as never);
    });
    for (const o of orders) {
      if (o.type !== 'attribute') throw new AppError('INVALID_INPUT', `Invalid order_by entity '${o.type}' for registered models; use name or last_updated_timestamp`);
      q = q.orderBy(`m.${o.key}`, o.ascending ? 'asc' : 'desc');
    }
    q = q.orderBy('m.name', 'asc');
    const rows = (await q.limit(limit + 1).offset(offset).execute()) as RegisteredModelRow[];
    const page = toPage(rows, offset, limit);
    return { items: await this.#hydrateModels(page.items), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }

  async updateRegisteredModel(name: string, input: { description?: string }): Promise<RegisteredModelRecord> {
    await this.#modelRow(name);
    await this.#db
      .updateTable('registered_models')
      .set({ ...(input.description !== undefined ? { description: input.description } : {}), last_updated_timestamp: Date.now() })
      .where('name', '=', name)
      .execute();
    return this.getRegisteredModel(name);
  }

  async renameRegisteredModel(name: string, newName: string): Promise<RegisteredModelRecord> {
    validateModelName(newName);
    try {
      await this.#db.transaction().execute(async (trx) => {
        await this.#modelRow(name, trx);
        const clash = await trx.selectFrom('registered_models').select('name').where('name', '=', newName).executeTakeFirst();
        const versionClash = await trx.selectFrom('model_versions').select('name').where('name', '=', newName).executeTakeFirst();
        if (clash || versionClash) throw new AppError('ALREADY_EXISTS', `Registered Model (name=${newName}) already exists.`);
        const now = Date.now();
        await trx.updateTable('registered_models').set({ name: newName, last_updated_timestamp: now }).where('name', '=', name).execute();
        for (const table of ['registered_model_tags', 'registered_model_aliases', 'model_versions', 'model_version_tags', 'model_version_artifacts', 'model_stage_events'] as const) {
          await trx.updateTable(table).set({ name: newName }).where('name', '=', name).execute();
        }
        await trx.updateTable('model_versions').set({ parent_name: newName }).where('parent_name', '=', name).execute();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('ALREADY_EXISTS', `Registered Model (name=${newName}) already exists.`);
      throw err;
    }
    return this.getRegisteredModel(newName);
  }

  async deleteRegisteredModel(name: string): Promise<number[]> {
    return this.#db.transaction().execute(async (trx) => {
      await this.#modelRow(name, trx);
      const live = await trx.selectFrom('model_versions').select('version').where('name', '=', name).where('deleted_at', 'is', null).execute();
      const now = Date.now();
      await trx.updateTable('model_versions').set({ deleted_at: now, last_updated_timestamp: now }).where('name', '=', name).where('deleted_at', 'is', null).execute();
      await trx.deleteFrom('registered_model_aliases').where('name', '=', name).execute();
      await trx.deleteFrom('registered_model_tags').where('name', '=', name).execute();
      await trx.deleteFrom('registered_models').where('name', '=', name).execute();
      return live.map((v) => Number(v.version));
    });
  }

  async setRegisteredModelTag(name: string, tag: KeyValue): Promise<void> {
    await this.#modelRow(name);
    await this.#db
      .insertInto('registered_model_tags')
      .values({ name, key: tag.key, value: tag.value })
      .onConflict((oc) => oc.columns(['name', 'key']).doUpdateSet({ value: tag.value }))
      .execute();
  }

  async deleteRegisteredModelTag(name: string, key: string): Promise<void> {
    await this.#modelRow(name);
    const res = await this.#db.deleteFrom('registered_model_tags').where('name', '=', name).where('key', '=', key).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `Registered model tag with name=${name}, key=${key} not found`);
  }

  async createModelVersion(input: NewModelVersion): Promise<ModelVersionRecord> {
    for (let attempt = 0; ; attempt++) {
      try {
        const version = await this.#db.transaction().execute(async (trx) => {
          await this.#modelRow(input.name, trx);
          const max = await trx.selectFrom('model_versions').select((eb) => eb.fn.max('version').as('v')).where('name', '=', input.name).executeTakeFirst();
          const next = Number(max?.v ?? 0) + 1;
          const now = Date.now();
          await trx
            .insertInto('model_versions')
            .values({
              name: input.name,
              version: next,
              creation_timestamp: now,
              last_updated_timestamp: now,
              user_id: input.userId,
              current_stage: 'None',
              description: input.description ?? '',
              source: input.source,
              run_id: input.runId ?? null,
              run_link: input.runLink ?? null,
              status: 'READY',
              status_message: null,
              deleted_at: null,
              onnx_key: input.onnx?.key ?? null,
              onnx_sha256: input.onnx?.sha256 ?? null,
              onnx_bytes: input.onnx?.bytes ?? null,
              input_name: input.inputName ?? null,
              input_size: input.inputSize ?? null,
              has_features: input.hasFeatures ? 1 : 0,
              threshold: input.threshold ?? null,
              threshold_method: input.thresholdMethod ?? null,
              preprocessing: input.preprocessing === undefined || input.preprocessing === null ? null : JSON.stringify(input.preprocessing),
              preprocessing_hash: input.preprocessingHash ?? null,
              dataset_version: input.datasetVersion ?? null,
              code_version: input.codeVersion ?? null,
              parent_name: input.parent?.name ?? null,
              parent_version: input.parent?.version ?? null,
              val_auc: input.valAuc ?? null,
              metrics: input.metrics ? JSON.stringify(input.metrics) : null,
              metadata: input.metadata ? JSON.stringify(input.metadata) : null,
              gate: null,
            })
            .execute();
          const tags = dedupe(input.tags ?? []);
          if (tags.length) await trx.insertInto('model_version_tags').values(tags.map((t) => ({ name: input.name, version: next, ...t }))).execute();
          if (input.artifacts?.length) {
            await trx
              .insertInto('model_version_artifacts')
              .values(input.artifacts.map((a) => ({ name: input.name, version: next, ...a })))
              .execute();
          }
          await trx.updateTable('registered_models').set({ last_updated_timestamp: now }).where('name', '=', input.name).execute();
          return next;
        });
        return this.getModelVersion(input.name, version);
      } catch (err) {
        // Two registrations raced for the same number: take the next one.
        if (isUniqueViolation(err) && attempt < 5) continue;
        throw err;
      }
    }
  }

  async #versionRow(name: string, version: number, includeDeleted = false, db: Kysely<RegistryTables> | Transaction<RegistryTables> = this.#db): Promise<ModelVersionRow> {
    if (!Number.isInteger(version) || version < 1) throw new AppError('INVALID_INPUT', `Model version must be a positive integer, got '${version}'`);
    const row = await db.selectFrom('model_versions').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst();
    if (!row || (row.deleted_at !== null && !includeDeleted)) throw new AppError('NOT_FOUND', `Model Version (name=${name}, version=${version}) not found`);
    return row;
  }

  async getModelVersion(name: string, version: number, options: { includeDeleted?: boolean } = {}): Promise<ModelVersionRecord> {
    const row = await this.#versionRow(name, version, options.includeDeleted);
    return (await this.#hydrateVersions([row]))[0]!;
  }

  async getLatestVersion(name: string): Promise<ModelVersionRecord> {
    const row = await this.#db.selectFrom('model_versions').selectAll().where('name', '=', name).where('deleted_at', 'is', null).orderBy('version', 'desc').limit(1).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `Registered Model with name=${name} has no versions`);
    return (await this.#hydrateVersions([row]))[0]!;
  }

  async #hydrateVersions(rows: ModelVersionRow[]): Promise<ModelVersionRecord[]> {
    if (rows.length === 0) return [];
    const names = [...new Set(rows.map((r) => r.name))];
    const [tags, aliases] = await Promise.all([
      this.#db.selectFrom('model_version_tags').selectAll().where('name', 'in', names).orderBy('key').execute(),
      this.#db.selectFrom('registered_model_aliases').selectAll().where('name', 'in', names).orderBy('alias').execute(),
    ]);
    return rows.map((r) => {
      const version = Number(r.version);
      return {
        name: r.name,
        version,
        creation_timestamp: Number(r.creation_timestamp),
        last_updated_timestamp: Number(r.last_updated_timestamp),
        user_id: r.user_id,
        current_stage: r.current_stage as Stage,
        description: r.description,
        source: r.source,
        run_id: r.run_id,
        run_link: r.run_link,
        status: r.status,
        status_message: r.status_message,
        tags: tags.filter((t) => t.name === r.name && Number(t.version) === version).map((t) => ({ key: t.key, value: t.value })),
        aliases: aliases.filter((a) => a.name === r.name && Number(a.version) === version).map((a) => a.alias),
        deleted_at: r.deleted_at === null ? null : Number(r.deleted_at),
        onnx: r.onnx_key && r.onnx_sha256 ? { key: r.onnx_key, sha256: r.onnx_sha256, bytes: Number(r.onnx_bytes ?? 0) } : null,
        input_name: r.input_name,
        input_size: r.input_size === null ? null : Number(r.input_size),
        has_features: Boolean(Number(r.has_features)),
        threshold: r.threshold === null ? null : Number(r.threshold),
        threshold_method: r.threshold_method,
        preprocessing: parseJson<unknown>(r.preprocessing),
        preprocessing_hash: r.preprocessing_hash,
        dataset_version: r.dataset_version,
        code_version: r.code_version,
        parent: r.parent_name && r.parent_version !== null ? { name: r.parent_name, version: Number(r.parent_version) } : null,
        val_auc: r.val_auc === null ? null : Number(r.val_auc),
        metrics: parseJson<Record<string, unknown>>(r.metrics),
        metadata: parseJson<Record<string, unknown>>(r.metadata),
        gate: parseJson<GateVerdict>(r.gate),
      };
    });
  }

  async searchModelVersions(query: SearchQuery & { includeDeleted?: boolean }): Promise<Page<ModelVersionRecord>> {
    const grammar: FilterGrammar = MODEL_VERSION_GRAMMAR;
    const clauses = parseFilter(query.filter, grammar);
    const orders = parseOrderBy(query.orderBy, grammar);
    const limit = pageSize(query.pageSize, 10_000, 200_000);
    const offset = decodeOffsetToken(query.pageToken);
    const ilike = this.#database.capabilities.ilike;
    let q = this.#dyn.selectFrom('model_versions as v').selectAll('v');
    if (!query.includeDeleted) q = q.where('v.deleted_at', 'is', null);
    clauses.forEach((c, i) => {
      const op = opOf(c.comparator, ilike);
      if (c.type === 'tag') {
        q = q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom(`model_version_tags as t${i}`)
              .select(sql.lit(1).as('one'))
              .whereRef(`t${i}.name`, '=', 'v.name')
              .whereRef(`t${i}.version`, '=', 'v.version')
              .where(`t${i}.key`, '=', c.key)
              .where(`t${i}.value`, op as never, c.value as never),
          ),
        );
      } else q = q.where(`v.${VERSION_COLUMNS[c.key]!}`, op as never, c.value as never);
    });
    for (const o of orders) {
      if (o.type !== 'attribute') throw new AppError('INVALID_INPUT', `Invalid order_by entity '${o.type}' for model versions`);
      q = q.orderBy(`v.${VERSION_COLUMNS[o.key]!}`, o.ascending ? 'asc' : 'desc');
    }
    q = q.orderBy('v.name', 'asc').orderBy('v.version', 'desc');
    const rows = (await q.limit(limit + 1).offset(offset).execute()) as ModelVersionRow[];
    const page = toPage(rows, offset, limit);
    return { items: await this.#hydrateVersions(page.items), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }

  async versionsInStage(name: string, stage: Stage): Promise<ModelVersionRecord[]> {
    const rows = await this.#db
      .selectFrom('model_versions')
      .selectAll()
      .where('name', '=', name)
      .where('current_stage', '=', stage)
      .where('deleted_at', 'is', null)
      .orderBy('version', 'desc')
      .execute();
    return this.#hydrateVersions(rows);
  }

  async updateModelVersion(name: string, version: number, input: { description?: string }): Promise<ModelVersionRecord> {
    await this.#versionRow(name, version);
    await this.#db
      .updateTable('model_versions')
      .set({ ...(input.description !== undefined ? { description: input.description } : {}), last_updated_timestamp: Date.now() })
      .where('name', '=', name)
      .where('version', '=', version)
      .execute();
    return this.getModelVersion(name, version);
  }

  async setModelVersionTag(name: string, version: number, tag: KeyValue): Promise<void> {
    await this.#versionRow(name, version);
    await this.#db
      .insertInto('model_version_tags')
      .values({ name, version, key: tag.key, value: tag.value })
      .onConflict((oc) => oc.columns(['name', 'version', 'key']).doUpdateSet({ value: tag.value }))
      .execute();
  }

  async deleteModelVersionTag(name: string, version: number, key: string): Promise<void> {
    await this.#versionRow(name, version);
    const res = await this.#db.deleteFrom('model_version_tags').where('name', '=', name).where('version', '=', version).where('key', '=', key).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `Model version tag with name=${name}, version=${version}, key=${key} not found`);
  }

  async applyStageChange(change: StageChange): Promise<ModelVersionRecord> {
    await this.#db.transaction().execute(async (trx) => {
      await this.#versionRow(change.name, change.version, false, trx);
      const now = Date.now();
      await trx
        .updateTable('model_versions')
        .set({ current_stage: change.stage, last_updated_timestamp: now, ...(change.verdict ? { gate: JSON.stringify(change.verdict) } : {}) })
        .where('name', '=', change.name)
        .where('version', '=', change.version)
        .execute();
      for (const d of change.demote) {
        await trx.updateTable('model_versions').set({ current_stage: d.stage, last_updated_timestamp: now }).where('name', '=', change.name).where('version', '=', d.version).execute();
      }
      if (change.deleteAliases.length) {
        await trx.deleteFrom('registered_model_aliases').where('name', '=', change.name).where('alias', 'in', change.deleteAliases).execute();
      }
      for (const [alias, version] of Object.entries(change.setAliases)) {
        await upsertAlias(trx, change.name, alias, version, change.actor, now);
      }
      // The automatic moves (the version replaced in Production is archived) are history too; the
      // change itself is stamped a millisecond later so newest-first lists show it above them.
      for (const d of change.demote) {
        const auto = { name: change.name, version: d.version, from_stage: change.stage, to_stage: d.stage, outcome: 'applied' as const, actor: change.actor, forced: false, reason: `automatic: replaced by version ${change.version}`, verdict: null };
        await trx.insertInto('model_stage_events').values(stageEventRow(auto, now)).execute();
      }
      await trx.insertInto('model_stage_events').values(stageEventRow(change.event, change.demote.length ? now + 1 : now)).execute();
      await trx.updateTable('registered_models').set({ last_updated_timestamp: now }).where('name', '=', change.name).execute();
    });
    return this.getModelVersion(change.name, change.version);
  }

  async recordStageEvent(event: Omit<StageEvent, 'id' | 'created_at'>): Promise<StageEvent> {
    const row = stageEventRow(event, Date.now());
    await this.#db.insertInto('model_stage_events').values(row).execute();
    return toStageEvent(row);
  }

  async listStageEvents(name: string, version?: number): Promise<StageEvent[]> {
    let q = this.#db.selectFrom('model_stage_events').selectAll().where('name', '=', name);
    if (version !== undefined) q = q.where('version', '=', version);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(1000).execute();
    return rows.map(toStageEvent);
  }

  async setAlias(name: string, alias: string, version: number, actor: string): Promise<void> {
    validateAlias(alias);
    await this.#modelRow(name);
    await this.#versionRow(name, version);
    await upsertAlias(this.#db, name, alias, version, actor, Date.now());
  }

  async deleteAlias(name: string, alias: string): Promise<number> {
    const version = await this.getAlias(name, alias);
    await this.#db.deleteFrom('registered_model_aliases').where('name', '=', name).where('alias', '=', alias).execute();
    return version;
  }

  async getAlias(name: string, alias: string): Promise<number> {
    const row = await this.#db.selectFrom('registered_model_aliases').select('version').where('name', '=', name).where('alias', '=', alias).executeTakeFirst();
    if (!row) {
      await this.#modelRow(name);
      throw new AppError('NOT_FOUND', `Registered model alias ${alias} not found.`);
    }
    return Number(row.version);
  }

  async softDeleteModelVersion(name: string, version: number): Promise<string[]> {
    return this.#db.transaction().execute(async (trx) => {
      await this.#versionRow(name, version, false, trx);
      const aliases = await trx.selectFrom('registered_model_aliases').select('alias').where('name', '=', name).where('version', '=', version).execute();
      await trx.deleteFrom('registered_model_aliases').where('name', '=', name).where('version', '=', version).execute();
      const now = Date.now();
      await trx.updateTable('model_versions').set({ deleted_at: now, last_updated_timestamp: now }).where('name', '=', name).where('version', '=', version).execute();
      return aliases.map((a) => a.alias);
    });
  }

  async hardDeleteModelVersion(name: string, version: number): Promise<VersionArtifact[]> {
    return this.#db.transaction().execute(async (trx) => {
      await this.#versionRow(name, version, true, trx);
      const artifacts = await trx.selectFrom('model_version_artifacts').selectAll().where('name', '=', name).where('version', '=', version).execute();
      await trx.deleteFrom('model_version_artifacts').where('name', '=', name).where('version', '=', version).execute();
      await trx.deleteFrom('model_version_tags').where('name', '=', name).where('version', '=', version).execute();
      await trx.deleteFrom('registered_model_aliases').where('name', '=', name).where('version', '=', version).execute();
      await trx.deleteFrom('model_versions').where('name', '=', name).where('version', '=', version).execute();
      return artifacts.map((a) => ({ path: a.path, object_key: a.object_key, sha256: a.sha256, size: Number(a.size), content_type: a.content_type }));
    });
  }

  async listVersionArtifacts(name: string, version: number): Promise<VersionArtifact[]> {
    await this.#versionRow(name, version);
    const rows = await this.#db.selectFrom('model_version_artifacts').selectAll().where('name', '=', name).where('version', '=', version).orderBy('path').execute();
    return rows.map((a) => ({ path: a.path, object_key: a.object_key, sha256: a.sha256, size: Number(a.size), content_type: a.content_type }));
  }

  async getVersionArtifact(name: string, version: number, path: string): Promise<VersionArtifact> {
    await this.#versionRow(name, version);
    const a = await this.#db.selectFrom('model_version_artifacts').selectAll().where('name', '=', name).where('version', '=', version).where('path', '=', path).executeTakeFirst();
    if (!a) throw new AppError('NOT_FOUND', `Artifact '${path}' of model ${name} version ${version} does not exist`, { missing: 'artifact' });
    return { path: a.path, object_key: a.object_key, sha256: a.sha256, size: Number(a.size), content_type: a.content_type };
  }

  async referencedObjectKeys(): Promise<Set<string>> {
    const rows = await this.#db.selectFrom('model_version_artifacts').select('object_key').distinct().execute();
    const onnx = await this.#db.selectFrom('model_versions').select('onnx_key').where('onnx_key', 'is not', null).distinct().execute();
    return new Set([...rows.map((r) => r.object_key), ...onnx.map((r) => r.onnx_key!)]);
  }
}

async function upsertAlias(db: Kysely<RegistryTables> | Transaction<RegistryTables>, name: string, alias: string, version: number, actor: string, now: number): Promise<void> {
  await db
    .insertInto('registered_model_aliases')
    .values({ name, alias, version, updated_by: actor, updated_at: now })
    .onConflict((oc) => oc.columns(['name', 'alias']).doUpdateSet({ version, updated_by: actor, updated_at: now }))
    .execute();
}

function stageEventRow(event: Omit<StageEvent, 'id' | 'created_at'>, now: number): StageEventRow {
  return {
    id: randomUUID(),
    name: event.name,
    version: event.version,
    from_stage: event.from_stage,
    to_stage: event.to_stage,
    outcome: event.outcome,
    actor: event.actor,
    forced: event.forced ? 1 : 0,
    reason: event.reason,
    verdict: event.verdict ? JSON.stringify(event.verdict) : null,
    created_at: now,
  };
}

function toStageEvent(r: StageEventRow): StageEvent {
  return {
    id: r.id,
    name: r.name,
    version: Number(r.version),
    from_stage: r.from_stage as Stage,
    to_stage: r.to_stage as Stage,
    outcome: r.outcome as StageEvent['outcome'],
    actor: r.actor,
    forced: Boolean(Number(r.forced)),
    reason: r.reason,
    verdict: parseJson<GateVerdict>(r.verdict),
    created_at: Number(r.created_at),
  };
}

function dedupe(tags: KeyValue[]): KeyValue[] {
  const m = new Map<string, string>();
  for (const t of tags) m.set(t.key, String(t.value));
  return [...m].map(([key, value]) => ({ key, value }));
}

function pageSize(size: number | undefined, fallback: number, max: number): number {
  if (size === undefined || size === null) return fallback;
  if (!Number.isInteger(size) || size < 1 || size > max) throw new AppError('INVALID_INPUT', `Invalid value for max_results: ${size}; it must be between 1 and ${max}`);
  return size;
}
