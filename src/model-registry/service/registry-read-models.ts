import type { Readable } from 'node:stream';
import { AppError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/objects/index.js';
import type { Page, PageRequest } from '../store/paging.js';
import type { ModelVersionRecord, RegisteredModelRecord, RegistryStore, Stage, StageEvent, VersionArtifact } from '../store/registry-store.js';
import type { Run } from '../store/tracking-store.js';
import { buildModelCard, renderModelCardMarkdown, summarizeEvaluation, type EvaluationSummary, type ModelCard } from './model-card.js';
import { siteCalibrationOf } from './site-calibration-record.js';
import type { TrackingService } from './tracking-service.js';
import { asRecord } from './as-record.js';

export const MODEL_FILE = 'model.onnx';
const COMPARED_METRICS = ['auc', 'sensitivity', 'specificity', 'ppv', 'npv', 'f1', 'accuracy'] as const;

export interface LineageNode {
  kind: 'model_version' | 'run' | 'dataset_version' | 'preprocessing' | 'code_version' | 'site_data' | 'parent_model' | 'ensemble_member';
  id: string;
  details: Record<string, unknown>;
}

export interface Lineage {
  model: { name: string; version: number };
  run: { run_id: string; experiment_id: string; run_name: string; status: string; start_time: number; end_time: number | null; dataset_inputs: Run['inputs']['dataset_inputs'] } | null;
  dataset_version: string | null;
  preprocessing: { hash: string | null; spec: unknown };
  code_version: string | null;
  parents: { name: string; version: number; onnx_sha256: string | null; dataset_version: string | null; deleted: boolean }[];
  artifacts: { path: string; sha256: string; size: number }[];
  /** The chain in order: version → run → dataset version → preprocessing → code → parent model(s) → ensemble member job(s). */
  chain: LineageNode[];
}

export interface VersionComparison {
  version: number;
  stage: Stage;
  aliases: string[];
  created: number;
  run_id: string | null;
  dataset_version: string | null;
  preprocessing_hash: string | null;
  threshold: number | null;
  threshold_method: string | null;
  metrics: EvaluationSummary | null;
  test_metrics: EvaluationSummary[];
  confusion: EvaluationSummary['confusion'];
  roc: { fpr: number; tpr: number; threshold: number | null }[];
  params: Record<string, string>;
}

export interface Comparison {
  name: string;
  versions: VersionComparison[];
  /** Params whose values differ between the versions. */
  params_diff: Record<string, (string | null)[]>;
  /** Metric differences of each later version against the first one listed. */
  metric_deltas: { version: number; against: number; deltas: Record<string, number | null> }[];
}

export interface ModelSummary {
  name: string;
  description: string;
  created: number;
  updated: number;
  aliases: { alias: string; version: number }[];
  latest_version: number | null;
  production: { version: number; val_auc: number | null } | null;
  staging: { version: number; val_auc: number | null } | null;
}

export interface ModelDetail {
  model: RegisteredModelRecord;
  versions: ModelVersionRecord[];
  stage_events: StageEvent[];
}


/**
 * The registry's read models: resolving a reference, artifacts, model listings, lineage, the model
 * card and version comparison. Reads only; every write is in ModelRegistryService.
 */
export class RegistryReadModels {
  readonly #registry: RegistryStore;
  readonly #tracking: TrackingService;
  readonly #objects: ObjectStore;

  constructor(deps: { registry: RegistryStore; tracking: TrackingService; objects: ObjectStore }) {
    this.#registry = deps.registry;
    this.#tracking = deps.tracking;
    this.#objects = deps.objects;
  }

  /**
   * A version by number ('3', 3, 'v3'), 'latest', or alias ('production', 'staging', any alias).
   * NOT_FOUND when the model, version or alias does not exist.
   */
  async resolve(name: string, versionOrAlias: string | number): Promise<ModelVersionRecord> {
    const ref = String(versionOrAlias).trim();
    if (/^\d+$/.test(ref)) return this.#registry.getModelVersion(name, Number(ref));
    if (/^v\d+$/i.test(ref)) return this.#registry.getModelVersion(name, Number(ref.slice(1)));
    if (ref.toLowerCase() === 'latest') {
      await this.#registry.getRegisteredModel(name);
      return this.#registry.getLatestVersion(name);
    }
    const version = await this.#registry.getAlias(name, ref);
    return this.#registry.getModelVersion(name, version);
  }

  /** A stored file of a version (model.onnx, model.json, …) with its bytes. */
  async getArtifact(name: string, versionOrAlias: string | number, path = MODEL_FILE): Promise<{ artifact: VersionArtifact; data: Buffer }> {
    const version = await this.resolve(name, versionOrAlias);
    const artifact = await this.#registry.getVersionArtifact(name, version.version, path);
    return { artifact, data: await this.#objects.get(artifact.object_key) };
  }

  /** Like getArtifact, streamed (large ONNX files to HTTP clients). */
  async openArtifact(name: string, versionOrAlias: string | number, path = MODEL_FILE): Promise<{ artifact: VersionArtifact; stream: Readable }> {
    const version = await this.resolve(name, versionOrAlias);
    const artifact = await this.#registry.getVersionArtifact(name, version.version, path);
    return { artifact, stream: await this.#objects.getStream(artifact.object_key) };
  }

  async listModels(page: PageRequest & { filter?: string }): Promise<Page<ModelSummary>> {
    const models = await this.#registry.searchRegisteredModels({ pageSize: page.pageSize, pageToken: page.pageToken, filter: page.filter });
    const items = models.items.map((m): ModelSummary => {
      const inStage = (stage: Stage) => {
        const v = m.latest_versions.find((x) => x.current_stage === stage);
        return v ? { version: v.version, val_auc: v.val_auc } : null;
      };
      const latest = m.latest_versions.reduce<number | null>((acc, v) => (acc === null || v.version > acc ? v.version : acc), null);
      return {
        name: m.name,
        description: m.description,
        created: m.creation_timestamp,
        updated: m.last_updated_timestamp,
        aliases: m.aliases,
        latest_version: latest,
        production: inStage('Production'),
        staging: inStage('Staging'),
      };
    });
    return { items, ...(models.nextPageToken ? { nextPageToken: models.nextPageToken } : {}) };
  }

  async getModel(name: string): Promise<ModelDetail> {
    const model = await this.#registry.getRegisteredModel(name);
    const versions: ModelVersionRecord[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.#registry.searchModelVersions({ filter: `name = '${name.replace(/'/g, "''")}'`, pageSize: 1000, pageToken });
      versions.push(...page.items);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return { model, versions, stage_events: (await this.#registry.listStageEvents(name)).slice(0, 100) };
  }

  /** version → run → dataset version → preprocessing hash → code version → parent model(s). */
  async lineage(name: string, versionOrAlias: string | number): Promise<Lineage> {
    const v = await this.resolve(name, versionOrAlias);
    const run = v.run_id ? await this.#tracking.store.getRun(v.run_id).catch(() => null) : null;
    const parents: Lineage['parents'] = [];
    const seen = new Set([`${v.name}@${v.version}`]);
    let next = v.parent;
    while (next && parents.length < 20 && !seen.has(`${next.name}@${next.version}`)) {
      seen.add(`${next.name}@${next.version}`);
      const p = await this.#registry.getModelVersion(next.name, next.version, { includeDeleted: true }).catch(() => null);
      parents.push({ name: next.name, version: next.version, onnx_sha256: p?.onnx?.sha256 ?? null, dataset_version: p?.dataset_version ?? null, deleted: !p || p.deleted_at !== null });
      next = p?.parent ?? null;
    }
    const artifacts = (await this.#registry.listVersionArtifacts(v.name, v.version)).map((a) => ({ path: a.path, sha256: a.sha256, size: a.size }));
    const chain: LineageNode[] = [{ kind: 'model_version', id: `${v.name}/${v.version}`, details: { onnx_sha256: v.onnx?.sha256 ?? null, stage: v.current_stage } }];
    if (v.run_id) chain.push({ kind: 'run', id: v.run_id, details: run ? { experiment_id: run.info.experiment_id, run_name: run.info.run_name, status: run.info.status } : { missing: true } });
    if (v.dataset_version) {
      const digests = run?.inputs.dataset_inputs.filter((d) => d.dataset.name === v.dataset_version).map((d) => d.dataset.digest) ?? [];
      chain.push({ kind: 'dataset_version', id: v.dataset_version, details: { digests } });
    }
    if (v.preprocessing_hash) chain.push({ kind: 'preprocessing', id: v.preprocessing_hash, details: { spec: v.preprocessing ?? null } });
    if (v.code_version) chain.push({ kind: 'code_version', id: v.code_version, details: {} });
    const site = siteCalibrationOf(v);
    if (site) {
      chain.push({
        kind: 'site_data',
        id: site.data.manifest_sha256,
        details: { kind: site.data.kind, split: site.data.split, n: site.data.n, positives: site.data.positives, negatives: site.data.negatives, threshold: site.threshold, temperature: site.temperature, calibrated_by: site.calibrated_by, calibrated_at: site.calibrated_at },
      });
    }
    for (const p of parents) chain.push({ kind: 'parent_model', id: `${p.name}/${p.version}`, details: { onnx_sha256: p.onnx_sha256, dataset_version: p.dataset_version, deleted: p.deleted } });
    // An ensemble of training jobs (training's register-model records them): one node per member.
    const ensembleOf = asRecord(asRecord(v.metadata)?.lineage)?.ensemble_of;
    if (Array.isArray(ensembleOf)) {
      for (const m of ensembleOf) {
        const r = asRecord(m);
        if (typeof r?.job_id === 'string') chain.push({ kind: 'ensemble_member', id: r.job_id, details: { run_id: r.run_id ?? null, model: r.model ?? null } });
      }
    }
    return {
      model: { name: v.name, version: v.version },
      run: run
        ? {
            run_id: run.info.run_id,
            experiment_id: run.info.experiment_id,
            run_name: run.info.run_name,
            status: run.info.status,
            start_time: run.info.start_time,
            end_time: run.info.end_time ?? null,
            dataset_inputs: run.inputs.dataset_inputs,
          }
        : null,
      dataset_version: v.dataset_version,
      preprocessing: { hash: v.preprocessing_hash, spec: v.preprocessing ?? null },
      code_version: v.code_version,
      parents,
      artifacts,
      chain,
    };
  }

  async card(name: string, versionOrAlias: string | number): Promise<ModelCard> {
    const v = await this.resolve(name, versionOrAlias);
    // Site calibrations of these weights: the version's own, and those registered from it.
    const { versions } = await this.getModel(v.name);
    const calibrated = versions.filter((x) => x.version === v.version || (x.parent?.name === v.name && x.parent.version === v.version));
    return buildModelCard(v, Date.now(), calibrated.filter((x) => siteCalibrationOf(x)));
  }

  async cardMarkdown(name: string, versionOrAlias: string | number): Promise<string> {
    return renderModelCardMarkdown(await this.card(name, versionOrAlias));
  }

  /** Side-by-side metrics, params, dataset versions, confusion matrices and ROC curves. */
  async compare(name: string, versions: number[]): Promise<Comparison> {
    if (versions.length < 1 || versions.length > 10) throw new AppError('INVALID_INPUT', 'compare takes 1–10 versions');
    const records = await Promise.all([...new Set(versions)].map((n) => this.#registry.getModelVersion(name, n)));
    const compared: VersionComparison[] = [];
    for (const v of records) {
      const run = v.run_id ? await this.#tracking.store.getRun(v.run_id).catch(() => null) : null;
      const params: Record<string, string> = {};
      for (const [k, value] of Object.entries(asRecord(v.metadata?.hyperparameters) ?? {})) params[k] = typeof value === 'string' ? value : JSON.stringify(value);
      for (const p of run?.data.params ?? []) params[p.key] = p.value;
      const metrics = v.metrics ? summarizeEvaluation('validation', v.metrics) : null;
      const tests = Object.entries(asRecord(v.metadata?.test_metrics) ?? {})
        .filter(([, m]) => asRecord(m))
        .map(([split, m]) => summarizeEvaluation(split, m as Record<string, unknown>));
      const roc = Array.isArray(v.metrics?.roc) ? (v.metrics!.roc as VersionComparison['roc']) : [];
      compared.push({
        version: v.version,
        stage: v.current_stage,
        aliases: v.aliases,
        created: v.creation_timestamp,
        run_id: v.run_id,
        dataset_version: v.dataset_version,
        preprocessing_hash: v.preprocessing_hash,
        threshold: v.threshold,
        threshold_method: v.threshold_method,
        metrics,
        test_metrics: tests,
        confusion: metrics?.confusion ?? null,
        roc,
        params,
      });
    }
    const keys = [...new Set(compared.flatMap((c) => Object.keys(c.params)))].sort();
    const paramsDiff: Record<string, (string | null)[]> = {};
    for (const k of keys) {
      const values = compared.map((c) => c.params[k] ?? null);
      if (new Set(values).size > 1) paramsDiff[k] = values;
    }
    const first = compared[0]!;
    const metricDeltas = compared.slice(1).map((c) => ({
      version: c.version,
      against: first.version,
      deltas: Object.fromEntries(
        COMPARED_METRICS.map((m) => {
          const a = c.metrics?.[m] ?? null;
          const b = first.metrics?.[m] ?? null;
          return [m, a !== null && b !== null ? a - b : null];
        }),
      ),
    }));
    return { name, versions: compared, params_diff: paramsDiff, metric_deltas: metricDeltas };
  }
}
