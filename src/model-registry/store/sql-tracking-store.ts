import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely, type SelectQueryBuilder, type Transaction } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { AppError } from '../../core/errors.js';
import { putContentAddressed, type ObjectStore } from '../../core/objects/index.js';
import { decodeOffsetToken, toPage, type Page, type PageRequest } from './paging.js';
import { EXPERIMENT_GRAMMAR, parseFilter, parseOrderBy, RUN_GRAMMAR, type Comparator, type FilterClause, type OrderClause } from './search-filter.js';
import type { ExperimentRow, RegistryTables, RunInputRow, RunRow } from './tables.js';
import {
  DEFAULT_EXPERIMENT_ID,
  SEARCH_RUNS_MAX_RESULTS,
  type ArtifactListing,
  type CreateExperimentInput,
  type CreateRunInput,
  type DatasetInput,
  type Experiment,
  type KeyValue,
  type LifecycleStage,
  type LogBatchInput,
  type Metric,
  type Run,
  type RunArtifact,
  type RunInfo,
  type RunStatus,
  type SearchExperimentsQuery,
  type SearchRunsQuery,
  type TrackingStore,
  type UpdateRunInput,
  type ViewType,
} from './tracking-store.js';

/** Namespace of content-addressed artifacts (run artifacts and model files share it, so bytes dedupe). */
export const ARTIFACT_NAMESPACE = 'artifacts';
const RUN_NAME_TAG = 'mlflow.runName';
const MAX_KEY = 250;
const MAX_PARAM_VALUE = 6000;
const MAX_TAG_VALUE = 8000;
const DOUBLE_MAX = 1.7976931348623157e308;
const CHUNK = 500;

/** Checks a relative artifact path: no traversal, no absolute path, no empty part, no control character. */
export function validateArtifactPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 1024) throw new AppError('INVALID_INPUT', 'artifact path must be 1–1024 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\\]/.test(path)) throw new AppError('INVALID_INPUT', `Invalid artifact path '${path.replace(/[^\x20-\x7e]/g, '?')}'`);
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new AppError('INVALID_INPUT', `Invalid artifact path '${path}': relative paths without '..' only`);
  return path;
}

function validateKeyName(kind: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new AppError('INVALID_INPUT', `Invalid ${kind} name: '${key}'. Names may not be empty.`);
  if (key.length > MAX_KEY) throw new AppError('INVALID_INPUT', `${kind} '${key.slice(0, 40)}…' had length ${key.length}, which exceeded length limit of ${MAX_KEY}`);
  if (!/^[/\w.\- :]*$/.test(key)) {
    throw new AppError('INVALID_INPUT', `Invalid ${kind} name: '${key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).`);
  }
  if (key.split('/').includes('..') || key.startsWith('/')) throw new AppError('INVALID_INPUT', `Invalid ${kind} name: '${key}'. Names may not be absolute or contain '..'.`);
}

function storedMetricValue(value: number): { value: number; is_nan: number } {
  if (Number.isNaN(value)) return { value: 0, is_nan: 1 };
  if (value === Infinity) return { value: DOUBLE_MAX, is_nan: 0 };
  if (value === -Infinity) return { value: -DOUBLE_MAX, is_nan: 0 };
  return { value, is_nan: 0 };
}

function newExperimentId(): string {
  // MLflow's file store also uses random integer ids; 18 digits fit every JS/proto int64 reader.
  const n = randomBytes(8).readBigUInt64BE() % 900_000_000_000_000_000n;
  return String(n + 100_000_000_000_000_000n);
}


function likeOp(comparator: Comparator, ilike: 'like' | 'ilike'): string {
  switch (comparator) {
    case 'LIKE':
      return 'like';
    case 'ILIKE':
      return ilike;
    case 'IN':
      return 'in';
    case 'NOT IN':
      return 'not in';
    default:
      return comparator;
  }
}

const RUN_ATTRIBUTE_COLUMNS: Record<string, keyof RunRow> = {
  run_id: 'run_id',
  run_name: 'run_name',
  status: 'status',
  user_id: 'user_id',
  artifact_uri: 'artifact_uri',
  lifecycle_stage: 'lifecycle_stage',
  start_time: 'start_time',
  end_time: 'end_time',
};

/** The kysely TrackingStore: one implementation for SQLite and PostgreSQL. */
export class SqlTrackingStore implements TrackingStore {
  readonly #db: Kysely<RegistryTables>;
  readonly #database: Database;
  readonly #objects: ObjectStore;

  constructor(database: Database, objects: ObjectStore) {
    this.#database = database;
    this.#db = database.db as Kysely<RegistryTables>;
    this.#objects = objects;
  }

  /** Untyped handle for queries whose table aliases are built at run time (search). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- dynamic table names (search filters) are outside the typed schema
  get #dyn(): Kysely<any> {
    return this.#database.db;
  }

  async ensureDefaultExperiment(): Promise<void> {
    const found = await this.#db.selectFrom('experiments').select('experiment_id').where('experiment_id', '=', DEFAULT_EXPERIMENT_ID).executeTakeFirst();
    if (found) return;
    const now = Date.now();
    await this.#db
      .insertInto('experiments')
      .values({
        experiment_id: DEFAULT_EXPERIMENT_ID,
        name: 'Default',
        artifact_location: `mlflow-artifacts:/${DEFAULT_EXPERIMENT_ID}`,
        lifecycle_stage: 'active',
        creation_time: now,
        last_update_time: now,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  async createExperiment(input: CreateExperimentInput): Promise<string> {
    const name = input.name?.trim();
    if (!name) throw new AppError('INVALID_INPUT', "Invalid experiment name: ''");
    if (name.length > 500) throw new AppError('INVALID_INPUT', 'Experiment name exceeds 500 characters');
    for (const t of input.tags ?? []) validateKeyName('tag', t.key);
    const existing = await this.#db.selectFrom('experiments').select('experiment_id').where('name', '=', name).executeTakeFirst();
    if (existing) throw new AppError('ALREADY_EXISTS', `Experiment(name=${name}) already exists.`);
    const id = newExperimentId();
    const now = Date.now();
    try {
      await this.#db.transaction().execute(async (trx) => {
        await trx
          .insertInto('experiments')
          .values({
            experiment_id: id,
            name,
            artifact_location: input.artifactLocation || `mlflow-artifacts:/${id}`,
            lifecycle_stage: 'active',
            creation_time: now,
            last_update_time: now,
          })
          .execute();
        const tags = dedupeLast(input.tags ?? []);
        if (tags.length) await trx.insertInto('experiment_tags').values(tags.map((t) => ({ experiment_id: id, key: t.key, value: t.value }))).execute();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('ALREADY_EXISTS', `Experiment(name=${name}) already exists.`);
      throw err;
    }
    return id;
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const row = await this.#db.selectFrom('experiments').selectAll().where('experiment_id', '=', experimentId).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No Experiment with id=${experimentId} exists`);
    return (await this.#withExperimentTags([row]))[0]!;
  }

  async getExperimentByName(name: string): Promise<Experiment> {
    const row = await this.#db.selectFrom('experiments').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `Could not find experiment with name '${name}'`);
    return (await this.#withExperimentTags([row]))[0]!;
  }

  async searchExperiments(query: SearchExperimentsQuery): Promise<Page<Experiment>> {
    const clauses = parseFilter(query.filter, EXPERIMENT_GRAMMAR);
    const orders = parseOrderBy(query.orderBy, EXPERIMENT_GRAMMAR);
    const limit = clampPageSize(query.pageSize, 1000, SEARCH_RUNS_MAX_RESULTS);
    const offset = decodeOffsetToken(query.pageToken);
    const ilike = this.#database.capabilities.ilike;
    let q = this.#dyn.selectFrom('experiments as e').selectAll('e');
    q = applyViewType(q, 'e.lifecycle_stage', query.viewType);
    clauses.forEach((c, i) => {
      const op = likeOp(c.comparator, ilike);
      if (c.type === 'tag') {
        q = q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom(`experiment_tags as t${i}`)
              .select(sql.lit(1).as('one'))
              .whereRef(`t${i}.experiment_id`, '=', 'e.experiment_id')
              .where(`t${i}.key`, '=', c.key)
              .where(`t${i}.value`, op as never, c.value),
          ),
        );
      } else q = q.where(`e.${c.key}`, op as never, c.value);
    });
    for (const o of orders) {
      if (o.type !== 'attribute') throw new AppError('INVALID_INPUT', `Invalid order_by entity '${o.type}' for experiments; order by attributes only`);
      q = q.orderBy(`e.${o.key}`, o.ascending ? 'asc' : 'desc');
    }
    if (!orders.some((o) => o.key === 'creation_time')) q = q.orderBy('e.creation_time', 'desc');
    q = q.orderBy('e.experiment_id', 'asc');
    const rows = (await q.limit(limit + 1).offset(offset).execute()) as ExperimentRow[];
    const page = toPage(rows, offset, limit);
    return { items: await this.#withExperimentTags(page.items), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }

  async #withExperimentTags(rows: ExperimentRow[]): Promise<Experiment[]> {
    if (rows.length === 0) return [];
    const tags = await this.#db
      .selectFrom('experiment_tags')
      .selectAll()
      .where(
        'experiment_id',
        'in',
        rows.map((r) => r.experiment_id),
      )
      .orderBy('key')
      .execute();
    return rows.map((r) => ({
      experiment_id: r.experiment_id,
      name: r.name,
      artifact_location: r.artifact_location,
      lifecycle_stage: r.lifecycle_stage as LifecycleStage,
      creation_time: Number(r.creation_time),
      last_update_time: Number(r.last_update_time),
      tags: tags.filter((t) => t.experiment_id === r.experiment_id).map((t) => ({ key: t.key, value: t.value })),
    }));
  }

  async createRun(input: CreateRunInput): Promise<Run> {
    const experiment = await this.getExperiment(input.experimentId);
    if (experiment.lifecycle_stage !== 'active') {
      throw new AppError('INVALID_INPUT', `The experiment ${experiment.experiment_id} must be in the 'active' state. Current state is ${experiment.lifecycle_stage}.`);
    }
    const tags = dedupeLast(input.tags ?? []);
    for (const t of tags) validateKeyName('tag', t.key);
    const runId = randomUUID().replace(/-/g, '');
    const runName = input.runName || tags.find((t) => t.key === RUN_NAME_TAG)?.value || `run-${runId.slice(0, 8)}`;
    const withName = [...tags.filter((t) => t.key !== RUN_NAME_TAG), { key: RUN_NAME_TAG, value: runName }];
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto('runs')
        .values({
          run_id: runId,
          experiment_id: experiment.experiment_id,
          run_name: runName,
          user_id: input.userId,
          status: 'RUNNING',
          start_time: input.startTime ?? Date.now(),
          end_time: null,
          artifact_uri: `${experiment.artifact_location.replace(/\/$/, '')}/${runId}/artifacts`,
          lifecycle_stage: 'active',
          deleted_time: null,
        })
        .execute();
      await trx.insertInto('run_tags').values(withName.map((t) => ({ run_id: runId, key: t.key, value: t.value }))).execute();
    });
    return this.getRun(runId);
  }

  async #runRow(runId: string, db: Kysely<RegistryTables> | Transaction<RegistryTables> = this.#db): Promise<RunRow> {
    const row = await db.selectFrom('runs').selectAll().where('run_id', '=', runId).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `Run with id=${runId} not found`);
    return row;
  }

  async getRun(runId: string): Promise<Run> {
    const row = await this.#runRow(runId);
    return (await this.#hydrate([row]))[0]!;
  }

  async updateRun(runId: string, input: UpdateRunInput): Promise<RunInfo> {
    const row = await this.#runRow(runId);
    assertActive(row);
    const patch: Partial<RunRow> = {};
    if (input.status) patch.status = input.status;
    if (input.endTime !== undefined) patch.end_time = input.endTime;
    if (input.runName) patch.run_name = input.runName;
    await this.#db.transaction().execute(async (trx) => {
      if (Object.keys(patch).length) await trx.updateTable('runs').set(patch).where('run_id', '=', runId).execute();
      if (input.runName) await upsertTags(trx, runId, [{ key: RUN_NAME_TAG, value: input.runName }]);
    });
    return toRunInfo({ ...row, ...patch });
  }

  async deleteRun(runId: string): Promise<void> {
    await this.#runRow(runId);
    await this.#db.updateTable('runs').set({ lifecycle_stage: 'deleted', deleted_time: Date.now() }).where('run_id', '=', runId).execute();
  }

  async restoreRun(runId: string): Promise<void> {
    await this.#runRow(runId);
    await this.#db.updateTable('runs').set({ lifecycle_stage: 'active', deleted_time: null }).where('run_id', '=', runId).execute();
  }

  async searchRuns(query: SearchRunsQuery): Promise<Page<Run>> {
    const clauses = parseFilter(query.filter, RUN_GRAMMAR);
    const orders = parseOrderBy(query.orderBy, RUN_GRAMMAR);
    const limit = clampPageSize(query.pageSize, 1000, SEARCH_RUNS_MAX_RESULTS);
    const offset = decodeOffsetToken(query.pageToken);
    if (query.experimentIds.length === 0) return { items: [] };
    const { query: filtered, metricJoins } = this.#filteredRuns(query.experimentIds, query.viewType, clauses);
    const lead = orders[0];
    let rows: RunRow[];
    if (lead && lead.type !== 'attribute' && !(lead.type === 'metric' && metricJoins.has(lead.key))) {
      // Leading order on a key no filter joined: MLflow puts runs without the key last. Two index-
      // friendly queries (runs with the key in key order, then the others) instead of a left join
      // that sorts every run of the experiment.
      const table = keyTable(lead.type);
      // For a metric, start FROM latest_metrics CROSS JOIN runs: SQLite then walks the
      // (experiment_id, key, value) index in order and stops after one page, whatever its statistics
      // say; PostgreSQL plans CROSS JOIN like any inner join.
      const keyed =
        lead.type === 'metric'
          ? this.#filteredRuns(query.experimentIds, query.viewType, clauses, { key: lead.key }).query
          : filtered.innerJoin(`${table} as o0`, (jn) => jn.onRef('o0.run_id', '=', 'r.run_id').on('o0.key', '=', lead.key));
      const withKey = orderRuns(keyed.orderBy('o0.value', lead.ascending ? 'asc' : 'desc'), orders.slice(1), metricJoins, 1);
      rows = (await withKey.limit(limit + 1).offset(offset).execute()) as RunRow[];
      if (rows.length <= limit) {
        let countWithKey = offset + rows.length;
        if (rows.length === 0 && offset > 0) {
          const counted = await keyed
            .clearSelect()
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirst();
          countWithKey = Number((counted as { n: number } | undefined)?.n ?? 0);
        }
        const without = orderRuns(
          filtered.where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom(`${table} as x0`).select(sql.lit(1).as('one')).whereRef('x0.run_id', '=', 'r.run_id').where('x0.key', '=', lead.key))),
          ),
          orders.slice(1),
          metricJoins,
          1,
        );
        rows = rows.concat((await without.limit(limit + 1 - rows.length).offset(Math.max(0, offset - countWithKey)).execute()) as RunRow[]);
      }
    } else {
      rows = (await orderRuns(filtered, orders, metricJoins, 0).limit(limit + 1).offset(offset).execute()) as RunRow[];
    }
    const page = toPage(rows, offset, limit);
    return { items: await this.#hydrate(page.items), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) };
  }

  /** `runs` of the experiments and view type with every filter clause applied (metric clauses as joins on latest_metrics). */
  #filteredRuns(experimentIds: string[], viewType: ViewType | undefined, clauses: FilterClause[], leadMetric?: { key: string }) {
    const ilike = this.#database.capabilities.ilike;
    let q = leadMetric
      ? this.#dyn
          .selectFrom('latest_metrics as o0')
          .crossJoin('runs as r')
          .selectAll('r')
          .whereRef('r.run_id', '=', 'o0.run_id')
          .where('o0.key', '=', leadMetric.key)
          .where('o0.experiment_id', 'in', experimentIds)
          .where('r.experiment_id', 'in', experimentIds)
      : this.#dyn.selectFrom('runs as r').selectAll('r').where('r.experiment_id', 'in', experimentIds);
    q = applyViewType(q, 'r.lifecycle_stage', viewType);
    // Metric clauses join latest_metrics once per key; an order_by on the same key reuses the join.
    const metricJoins = new Map<string, string>();
    clauses.forEach((c, i) => {
      const op = likeOp(c.comparator, ilike);
      switch (c.type) {
        case 'metric': {
          let alias = metricJoins.get(c.key);
          if (!alias) {
            alias = `m${i}`;
            metricJoins.set(c.key, alias);
            const a = alias;
            // The redundant experiment condition lets the planner walk the (experiment_id, key, value) index.
            q = q.innerJoin(`latest_metrics as ${a}`, (j) => j.onRef(`${a}.run_id`, '=', 'r.run_id').on(`${a}.key`, '=', c.key).on(`${a}.experiment_id`, 'in', experimentIds));
          }
          q = q.where(`${alias}.value`, op as never, c.value as never);
          break;
        }
        case 'param':
        case 'tag': {
          q = q.where(({ exists, selectFrom }) =>
            exists(
              selectFrom(`${keyTable(c.type as 'param' | 'tag')} as f${i}`)
                .select(sql.lit(1).as('one'))
                .whereRef(`f${i}.run_id`, '=', 'r.run_id')
                .where(`f${i}.key`, '=', c.key)
                .where(`f${i}.value`, op as never, c.value as never),
            ),
          );
          break;
        }
        case 'dataset': {
          q = q.where(({ exists, selectFrom }) =>
            exists(
              selectFrom(`run_inputs as d${i}`)
                .select(sql.lit(1).as('one'))
                .whereRef(`d${i}.run_id`, '=', 'r.run_id')
                .where(`d${i}.${c.key}`, op as never, c.value as never),
            ),
          );
          break;
        }
        case 'attribute': {
          q = q.where(`r.${RUN_ATTRIBUTE_COLUMNS[c.key]!}`, op as never, c.value as never);
          break;
        }
      }
    });
    return { query: q, metricJoins };
  }

  /** Loads metrics, params, tags and inputs of many runs in four queries. */
  async #hydrate(rows: RunRow[]): Promise<Run[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.run_id);
    // No ORDER BY in SQL: sorting a page's few thousand rows in JS is cheaper than a temp B-tree.
    const [metrics, params, tags, inputs] = await Promise.all([
      this.#db.selectFrom('latest_metrics').select(['run_id', 'key', 'value', 'step', 'timestamp', 'is_nan']).where('run_id', 'in', ids).execute(),
      this.#db.selectFrom('run_params').selectAll().where('run_id', 'in', ids).execute(),
      this.#db.selectFrom('run_tags').selectAll().where('run_id', 'in', ids).execute(),
      this.#db.selectFrom('run_inputs').selectAll().where('run_id', 'in', ids).execute(),
    ]);
    const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    metrics.sort(byKey);
    params.sort(byKey);
    tags.sort(byKey);
    inputs.sort((a, b) => Number(a.created_at) - Number(b.created_at) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const group = <T extends { run_id: string }>(list: T[]) => {
      const m = new Map<string, T[]>();
      for (const item of list) {
        const arr = m.get(item.run_id);
        if (arr) arr.push(item);
        else m.set(item.run_id, [item]);
      }
      return m;
    };
    const byMetrics = group(metrics);
    const byParams = group(params);
    const byTags = group(tags);
    const byInputs = group(inputs as RunInputRow[]);
    return rows.map((r) => ({
      info: toRunInfo(r),
      data: {
        metrics: (byMetrics.get(r.run_id) ?? []).map(toMetric),
        params: (byParams.get(r.run_id) ?? []).map((p) => ({ key: p.key, value: p.value })),
        tags: (byTags.get(r.run_id) ?? []).map((t) => ({ key: t.key, value: t.value })),
      },
      inputs: { dataset_inputs: (byInputs.get(r.run_id) ?? []).map(toDatasetInput) },
    }));
  }

  async logBatch(runId: string, input: LogBatchInput): Promise<void> {
    const metrics = input.metrics ?? [];
    const params = input.params ?? [];
    const tags = dedupeLast(input.tags ?? []);
    for (const m of metrics) {
      validateKeyName('metric', m.key);
      if (typeof m.value !== 'number') throw new AppError('INVALID_INPUT', `Got invalid value ${String(m.value)} for metric '${m.key}' (timestamp=${m.timestamp}). Please specify value as a valid double (64-bit floating point)`);
      if (!Number.isInteger(m.timestamp) || !Number.isInteger(m.step)) throw new AppError('INVALID_INPUT', `Metric '${m.key}' needs integer timestamp and step`);
    }
    for (const p of params) {
      validateKeyName('param', p.key);
      if (String(p.value).length > MAX_PARAM_VALUE) throw new AppError('INVALID_INPUT', `Param value '${String(p.value).slice(0, 40)}…' had length ${String(p.value).length}, which exceeded length limit of ${MAX_PARAM_VALUE}`);
    }
    for (const t of tags) {
      validateKeyName('tag', t.key);
      if (String(t.value).length > MAX_TAG_VALUE) throw new AppError('INVALID_INPUT', `Tag value had length ${String(t.value).length}, which exceeded length limit of ${MAX_TAG_VALUE}`);
    }
    const seenParams = new Map<string, string>();
    for (const p of params) {
      const prior = seenParams.get(p.key);
      if (prior !== undefined && prior !== p.value) {
        throw new AppError('INVALID_INPUT', `Duplicate parameter keys have been submitted: '${p.key}' with values '${prior}' and '${p.value}'. Please ensure the request contains only one param value per param key.`);
      }
      seenParams.set(p.key, p.value);
    }
    await this.#db.transaction().execute(async (trx) => {
      const run = await this.#runRow(runId, trx);
      assertActive(run);
      if (seenParams.size) {
        const keys = [...seenParams.keys()];
        const existing = await trx.selectFrom('run_params').select(['key', 'value']).where('run_id', '=', runId).where('key', 'in', keys).execute();
        for (const e of existing) {
          const next = seenParams.get(e.key)!;
          if (e.value !== next) {
            throw new AppError(
              'INVALID_INPUT',
              `Changing param values is not allowed. Param with key='${e.key}' was already logged with value='${e.value}' for run ID='${runId}'. Attempted logging new value '${next}'.`,
            );
          }
          seenParams.delete(e.key);
        }
        const fresh = [...seenParams].map(([key, value]) => ({ run_id: runId, key, value }));
        for (let i = 0; i < fresh.length; i += CHUNK) await trx.insertInto('run_params').values(fresh.slice(i, i + CHUNK)).onConflict((oc) => oc.doNothing()).execute();
      }
      if (tags.length) {
        await upsertTags(trx, runId, tags);
        const name = tags.find((t) => t.key === RUN_NAME_TAG);
        if (name) await trx.updateTable('runs').set({ run_name: name.value }).where('run_id', '=', runId).execute();
      }
      if (metrics.length) await insertMetrics(trx, run.experiment_id, runId, metrics);
    });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    const run = await this.#runRow(runId);
    assertActive(run);
    const res = await this.#db.deleteFrom('run_tags').where('run_id', '=', runId).where('key', '=', key).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `No tag with name: ${key} in run with id ${runId}`);
  }

  async logInputs(runId: string, datasets: DatasetInput[]): Promise<void> {
    const run = await this.#runRow(runId);
    assertActive(run);
    const now = Date.now();
    const rows = datasets.map((d, i) => {
      if (!d.dataset?.name || !d.dataset.digest) throw new AppError('INVALID_INPUT', `Dataset input ${i} needs a dataset name and digest`);
      return {
        run_id: runId,
        name: d.dataset.name,
        digest: d.dataset.digest,
        source_type: d.dataset.source_type ?? '',
        source: d.dataset.source ?? '',
        schema: d.dataset.schema ?? null,
        profile: d.dataset.profile ?? null,
        tags: JSON.stringify(d.tags ?? []),
        created_at: now + i,
      };
    });
    if (rows.length) await this.#db.insertInto('run_inputs').values(rows).onConflict((oc) => oc.doNothing()).execute();
  }

  async getMetricHistory(runId: string, key: string, page: PageRequest = {}): Promise<Page<Metric>> {
    await this.#runRow(runId);
    const limit = clampPageSize(page.pageSize, 25_000, 25_000);
    const offset = decodeOffsetToken(page.pageToken);
    const rows = await this.#db
      .selectFrom('metric_history')
      .selectAll()
      .where('run_id', '=', runId)
      .where('key', '=', key)
      .orderBy('step')
      .orderBy('timestamp')
      .orderBy('value')
      .limit(limit + 1)
      .offset(offset)
      .execute();
    const p = toPage(rows, offset, limit);
    return { items: p.items.map(toMetric), ...(p.nextPageToken ? { nextPageToken: p.nextPageToken } : {}) };
  }

  async putArtifact(runId: string, path: string, data: Buffer): Promise<RunArtifact> {
    validateArtifactPath(path);
    await this.#runRow(runId);
    const { sha256, key } = await putContentAddressed(this.#objects, ARTIFACT_NAMESPACE, data);
    const row = { run_id: runId, path, object_key: key, sha256, size: data.length, created_at: Date.now() };
    await this.#db
      .insertInto('run_artifacts')
      .values(row)
      .onConflict((oc) => oc.columns(['run_id', 'path']).doUpdateSet({ object_key: key, sha256, size: data.length, created_at: row.created_at }))
      .execute();
    return { run_id: runId, path, object_key: key, sha256, size: data.length };
  }

  async getArtifact(runId: string, path: string): Promise<RunArtifact> {
    validateArtifactPath(path);
    const row = await this.#db.selectFrom('run_artifacts').selectAll().where('run_id', '=', runId).where('path', '=', path).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `Artifact '${path}' of run ${runId} does not exist`);
    return { run_id: row.run_id, path: row.path, object_key: row.object_key, sha256: row.sha256, size: Number(row.size) };
  }

  async listArtifacts(runId: string, folder = ''): Promise<ArtifactListing[]> {
    await this.#runRow(runId);
    const prefix = folder ? `${validateArtifactPath(folder.replace(/\/$/, ''))}/` : '';
    const rows = await this.#db.selectFrom('run_artifacts').select(['path', 'size']).where('run_id', '=', runId).orderBy('path').execute();
    const out = new Map<string, ArtifactListing>();
    for (const r of rows) {
      if (!r.path.startsWith(prefix)) continue;
      const rest = r.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) out.set(r.path, { path: r.path, is_dir: false, file_size: Number(r.size) });
      else {
        const dir = prefix + rest.slice(0, slash);
        if (!out.has(dir)) out.set(dir, { path: dir, is_dir: true });
      }
    }
    return [...out.values()];
  }

  async referencedObjectKeys(): Promise<Set<string>> {
    const rows = await this.#db.selectFrom('run_artifacts').select('object_key').distinct().execute();
    return new Set(rows.map((r) => r.object_key));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the run search builds joins over dynamic tables
type RunQuery = SelectQueryBuilder<any, any, any>;

function keyTable(type: 'metric' | 'param' | 'tag'): 'latest_metrics' | 'run_params' | 'run_tags' {
  return type === 'metric' ? 'latest_metrics' : type === 'param' ? 'run_params' : 'run_tags';
}

/**
 * Applies order_by terms, then MLflow's tie-breakers (start_time DESC, run_id). A term on a key
 * that no filter joined left-joins it, with runs lacking the key last in either direction.
 */
function orderRuns(query: RunQuery, orders: OrderClause[], metricJoins: Map<string, string>, aliasBase: number): RunQuery {
  let q = query;
  orders.forEach((o, j) => {
    const direction = o.ascending ? 'asc' : 'desc';
    if (o.type === 'attribute') {
      q = q.orderBy(`r.${RUN_ATTRIBUTE_COLUMNS[o.key]!}`, direction);
      return;
    }
    const joined = o.type === 'metric' ? metricJoins.get(o.key) : undefined;
    if (joined) {
      q = q.orderBy(`${joined}.value`, direction);
      return;
    }
    const alias = `o${aliasBase + j}`;
    q = q.leftJoin(`${keyTable(o.type)} as ${alias}`, (jn) => jn.onRef(`${alias}.run_id`, '=', 'r.run_id').on(`${alias}.key`, '=', o.key));
    q = q.orderBy(sql`case when ${sql.ref(`${alias}.value`)} is null then 1 else 0 end`).orderBy(`${alias}.value`, direction);
  });
  if (!orders.some((o) => o.type === 'attribute' && o.key === 'start_time')) q = q.orderBy('r.start_time', 'desc');
  return q.orderBy('r.run_id', 'asc');
}

async function upsertTags(trx: Transaction<RegistryTables>, runId: string, tags: KeyValue[]): Promise<void> {
  for (let i = 0; i < tags.length; i += CHUNK) {
    await trx
      .insertInto('run_tags')
      .values(tags.slice(i, i + CHUNK).map((t) => ({ run_id: runId, key: t.key, value: t.value })))
      .onConflict((oc) => oc.columns(['run_id', 'key']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
      .execute();
  }
}

/** Appends to the history, then moves each key's latest row forward (max step, then max timestamp). */
async function insertMetrics(trx: Transaction<RegistryTables>, experimentId: string, runId: string, metrics: Metric[]): Promise<void> {
  const rows = metrics.map((m) => ({ run_id: runId, key: m.key, step: m.step, timestamp: m.timestamp, ...storedMetricValue(m.value) }));
  for (let i = 0; i < rows.length; i += CHUNK) {
    await trx.insertInto('metric_history').values(rows.slice(i, i + CHUNK)).onConflict((oc) => oc.doNothing()).execute();
  }
  // One candidate per key, or PostgreSQL refuses to upsert the same row twice in one statement.
  const latest = new Map<string, (typeof rows)[number]>();
  for (const r of rows) {
    const prev = latest.get(r.key);
    if (!prev || r.step > prev.step || (r.step === prev.step && (r.timestamp > prev.timestamp || (r.timestamp === prev.timestamp && r.value >= prev.value)))) latest.set(r.key, r);
  }
  const candidates = [...latest.values()].map((r) => ({ ...r, experiment_id: experimentId }));
  for (let i = 0; i < candidates.length; i += CHUNK) {
    await trx
      .insertInto('latest_metrics')
      .values(candidates.slice(i, i + CHUNK))
      .onConflict((oc) =>
        oc
          .columns(['run_id', 'key'])
          .doUpdateSet((eb) => ({
            value: eb.ref('excluded.value'),
            step: eb.ref('excluded.step'),
            timestamp: eb.ref('excluded.timestamp'),
            is_nan: eb.ref('excluded.is_nan'),
          }))
          .where((eb) =>
            eb.or([
              eb('excluded.step', '>', eb.ref('latest_metrics.step')),
              eb.and([eb('excluded.step', '=', eb.ref('latest_metrics.step')), eb('excluded.timestamp', '>=', eb.ref('latest_metrics.timestamp'))]),
            ]),
          ),
      )
      .execute();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any query builder with a where()
function applyViewType<Q extends { where: (...args: any[]) => Q }>(q: Q, column: string, viewType: ViewType | undefined): Q {
  if (viewType === 'ALL') return q;
  return q.where(column, '=', viewType === 'DELETED_ONLY' ? 'deleted' : 'active');
}

function clampPageSize(size: number | undefined, fallback: number, max: number): number {
  if (size === undefined || size === null) return fallback;
  if (!Number.isInteger(size) || size < 1) throw new AppError('INVALID_INPUT', `Invalid value ${size} for parameter 'max_results' supplied. It must be a positive integer`);
  if (size > max) throw new AppError('INVALID_INPUT', `Invalid value ${size} for parameter 'max_results' supplied. It must be at most ${max}, but got value ${size}`);
  return size;
}

function assertActive(run: RunRow): void {
  if (run.lifecycle_stage !== 'active') {
    throw new AppError('INVALID_INPUT', `The run ${run.run_id} must be in the 'active' state. Current state is ${run.lifecycle_stage}.`);
  }
}

function dedupeLast(tags: KeyValue[]): KeyValue[] {
  const m = new Map<string, string>();
  for (const t of tags) m.set(t.key, String(t.value));
  return [...m].map(([key, value]) => ({ key, value }));
}

function toRunInfo(r: RunRow): RunInfo {
  const info: RunInfo = {
    run_id: r.run_id,
    run_uuid: r.run_id,
    experiment_id: r.experiment_id,
    run_name: r.run_name,
    user_id: r.user_id,
    status: r.status as RunStatus,
    start_time: Number(r.start_time),
    artifact_uri: r.artifact_uri,
    lifecycle_stage: r.lifecycle_stage as LifecycleStage,
  };
  if (r.end_time !== null && r.end_time !== undefined) info.end_time = Number(r.end_time);
  return info;
}

function toMetric(m: { key: string; value: number; timestamp: number; step: number; is_nan: number }): Metric {
  return { key: m.key, value: Number(m.is_nan) ? NaN : Number(m.value), timestamp: Number(m.timestamp), step: Number(m.step) };
}

function toDatasetInput(r: RunInputRow): DatasetInput {
  let tags: KeyValue[] = [];
  try {
    tags = JSON.parse(r.tags) as KeyValue[];
  } catch {
    tags = [];
  }
  return {
    tags,
    dataset: {
      name: r.name,
      digest: r.digest,
      source_type: r.source_type,
      source: r.source,
      ...(r.schema !== null ? { schema: r.schema } : {}),
      ...(r.profile !== null ? { profile: r.profile } : {}),
    },
  };
}
