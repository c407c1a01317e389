import type { Readable } from 'node:stream';
import type { Platform } from '../../core/platform.js';
import { preprocessingHash as hashPreprocessing } from '../../core/imaging/preprocess-hash.js';
import type { PreprocessSpecInput } from '../../core/imaging/preprocess-spec.js';
import type { Role } from '../../core/auth/index.js';
import { AppError } from '../../core/errors.js';
import { TOPICS } from '../../core/events/index.js';
import { deploymentClient, type CallContext, type CanaryReport } from '../../deployment/client/index.js';
import { isVariantRecord, variantServability } from '../client/variant.js';
import { putContentAddressed } from '../../core/objects/index.js';
import type { Page, PageRequest } from '../store/paging.js';
import {
  STAGE_ALIAS,
  STAGES,
  type GateVerdict,
  type ModelVersionRecord,
  type RegisteredModelRecord,
  type RegistryStore,
  type Stage,
  type StageChange,
  type VersionArtifact,
} from '../store/registry-store.js';
import { SqlRegistryStore, validateAlias, validateModelName } from '../store/sql-registry-store.js';
import { ARTIFACT_NAMESPACE, SqlTrackingStore, validateArtifactPath } from '../store/sql-tracking-store.js';
import type { KeyValue, Run } from '../store/tracking-store.js';
import { currentCodeVersion } from './code-version.js';
import type { ModelCard } from './model-card.js';
import { inspectOnnx, metadataValue } from './onnx-inspect.js';
import { evaluateGate, evaluateSiteGate } from './promotion-gate.js';
import { siteCalibrationOf } from './site-calibration-record.js';
import { LUNG_FIELD_TAG } from './lung-field-record.js';
import { measureLungFields } from './lung-field-report.js';
import type { LungFieldReport } from './model-card-types.js';
import { calibrateVersion, type CalibrateInput, type CalibrateOutcome } from './site-calibration.js';
import { TrackingService } from './tracking-service.js';
import { MODEL_FILE, RegistryReadModels, type Comparison, type Lineage, type ModelDetail, type ModelSummary } from './registry-read-models.js';
import { collectArtifactGarbage, type GcResult } from './artifact-gc.js';
import { asRecord } from './as-record.js';

/** The caller of a state change: who (for the audit trail) and with which role (force, hard delete). */
export interface Actor {
  name: string;
  role: Role;
}

export interface RegisterInput {
  name: string;
  actor: Actor;
  requestId?: string;
  /** A run's ONNX artifact (a .onnx path, or a folder holding model.onnx), or uploaded bytes. */
  source: { kind: 'run'; runId: string; artifactPath: string } | { kind: 'upload'; data: Buffer; filename?: string };
  /** What the trainer recorded (model.json: metrics, threshold, preprocessing, …). */
  metadata?: Record<string, unknown> | null;
  description?: string;
  tags?: KeyValue[];
  datasetVersion?: string;
  codeVersion?: string;
  parent?: { name: string; version: number } | null;
  /** More files to keep with the version (evaluation.json, …). */
  extraArtifacts?: { path: string; data: Buffer; contentType?: string }[];
  /** The version's source URI instead of `upload:sha256:…` (a site calibration: `calibration:models:/<name>/<parent>`). */
  sourceUri?: string;
  /**
   * The call comes from a platform service (a verified service identity, or in-process): only such
   * a call may write a variant record (`metadata.variant`), whose parity gate the training service measured.
   */
  fromService?: boolean;
}

export interface SetStageInput {
  name: string;
  version: number;
  stage: Stage;
  actor: Actor;
  /** Override a failed AUC gate, or leave Production empty (admin only, with a reason). Never overrides a failed canary. */
  force?: boolean;
  reason?: string;
  requestId?: string;
  /** The caller's credential, forwarded to the deployment's canary over HTTP. */
  authorization?: string;
  /** Internal (the shipped model at first start, before the deployment runs): why no canary runs. */
  skipCanary?: string;
}

export interface StageResult {
  version: ModelVersionRecord;
  verdict: GateVerdict | null;
  changed: boolean;
  demoted: { version: number; stage: Stage }[];
}

export interface DeleteResult {
  name: string;
  version: number;
  hard: boolean;
  removed_objects: string[];
}

export { GC_MIN_AGE_S, type GcResult } from './artifact-gc.js';

export type { Comparison, Lineage, LineageNode, ModelDetail, ModelSummary, VersionComparison } from './registry-read-models.js';

export interface RegistryServiceOptions {
  /** Largest validation-AUC drop a promotion to Production may carry (default: config XRAY_PROMOTION_MARGIN). */
  promotionMargin?: number;
  /** The canary load a promotion to Production needs (default: the deployment client's). */
  canary?: (name: string, version: number, ctx: CallContext) => Promise<CanaryReport & { target?: string }>;
}

const SERVICE = 'model-registry';
const META_FILE = 'model.json';

function num(x: unknown): number | null {
  const n = typeof x === 'string' && x.trim() !== '' ? Number(x) : x;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

function str(x: unknown): string | null {
  return typeof x === 'string' && x.trim() ? x : null;
}


/** The platform's preprocessing hash of a recorded spec (the same function datasets and serving use); null when it is not a valid spec. */
function recordedPreprocessingHash(preprocessing: unknown): string | null {
  if (!asRecord(preprocessing)) return null;
  try {
    return hashPreprocessing(preprocessing as PreprocessSpecInput);
  } catch {
    return null;
  }
}

function parentOf(x: unknown): { name: string; version: number } | null {
  const o = asRecord(x);
  const version = num(o?.version);
  return o && typeof o.name === 'string' && version !== null && Number.isInteger(version) ? { name: o.name, version } : null;
}

/**
 * The model registry as an in-process API, shared by the routes, the CLI-facing endpoints, the
 * training service (register after a run) and the deployment service (resolve + fetch ONNX).
 * Every state change is audited and announced on the event bus (TOPICS.model*).
 */
export class ModelRegistryService {
  readonly registry: RegistryStore;
  readonly tracking: TrackingService;
  readonly promotionMargin: number;
  readonly #platform: Platform;
  readonly #canary: NonNullable<RegistryServiceOptions['canary']>;
  readonly #reads: RegistryReadModels;

  constructor(platform: Platform, options: RegistryServiceOptions = {}) {
    this.#platform = platform;
    const deployment = deploymentClient(platform);
    this.#canary = options.canary ?? (async (name, version, ctx) => ({ ...(await deployment.canary(name, version, ctx)), target: deployment.target }));
    this.registry = new SqlRegistryStore(platform.database);
    this.tracking = new TrackingService(new SqlTrackingStore(platform.database, platform.objects), platform.audit);
    this.promotionMargin = options.promotionMargin ?? platform.config.promotionMargin;
    this.#reads = new RegistryReadModels({ registry: this.registry, tracking: this.tracking, objects: platform.objects });
  }

  #audit(actor: string, action: string, resource: string, outcome: 'success' | 'failure' | 'denied', requestId: string | undefined, details: Record<string, unknown>): void {
    this.#platform.audit.record({ actor, action, resource, outcome, requestId: requestId ?? null, service: SERVICE, details });
  }

  async #publish(topic: string, payload: Record<string, unknown>): Promise<void> {
    try {
      await this.#platform.events.publish(topic, { ...payload, at: Date.now() });
    } catch (err) {
      this.#platform.logger.warn({ err, topic }, 'could not publish a model registry event');
    }
  }

  // ── registration ──────────────────────────────────────────────────────────────────────────

  /**
   * Registers a new version of `name` (created if new) from a run's ONNX artifact or uploaded
   * bytes. The file must load in ONNX Runtime with an input [N,1,H,W] and a `probability` output
   * (UNPROCESSABLE otherwise). Threshold, input size, preprocessing, dataset version and metrics
   * come from `metadata` (the trainer's model.json), else a model.json next to the run artifact,
   * else the ONNX file's metadata_props.
   */
  async register(input: RegisterInput): Promise<ModelVersionRecord> {
    const resource = `model:${input.name}`;
    try {
      const version = await this.#register(input);
      this.#audit(input.actor.name, 'model.register', `${resource}/${version.version}`, 'success', input.requestId, {
        source: version.source,
        run_id: version.run_id,
        onnx_sha256: version.onnx?.sha256 ?? null,
        val_auc: version.val_auc,
        dataset_version: version.dataset_version,
      });
      await this.#publish(TOPICS.modelRegistered, {
        name: version.name,
        version: version.version,
        stage: version.current_stage,
        alias: null,
        run_id: version.run_id,
        onnx_sha256: version.onnx?.sha256 ?? null,
        actor: input.actor.name,
      });
      return version;
    } catch (err) {
      this.#audit(input.actor.name, 'model.register', resource, 'failure', input.requestId, { error: (err as Error).message, source: input.source.kind });
      throw err;
    }
  }

  async #register(input: RegisterInput): Promise<ModelVersionRecord> {
    validateModelName(input.name);
    let data: Buffer;
    let run: Run | null = null;
    let source: string;
    let meta = asRecord(input.metadata) ?? null;
    if (input.source.kind === 'run') {
      const { runId } = input.source;
      run = await this.tracking.store.getRun(runId);
      const artifactPath = validateArtifactPath(input.source.artifactPath.replace(/\/+$/, ''));
      const artifact = await this.tracking.store.getArtifact(runId, artifactPath).catch(async (err: unknown) => {
        if (err instanceof AppError && err.code === 'NOT_FOUND' && !artifactPath.endsWith('.onnx')) return this.tracking.store.getArtifact(runId, `${artifactPath}/${MODEL_FILE}`);
        throw err;
      });
      data = await this.#platform.objects.get(artifact.object_key);
      source = `runs:/${runId}/${input.source.artifactPath}`;
      if (!meta) meta = await this.#runMetadata(runId, artifact.path);
    } else {
      data = input.source.data;
      source = '';
    }
    if (!data || data.length === 0) throw new AppError('INVALID_INPUT', 'the ONNX file is empty');
    meta ??= {};

    const inspection = await inspectOnnx(data, num(meta.input_size));
    const props = inspection.metadataProps;
    const prop = (key: string) => metadataValue(props, key);
    if (!input.fromService && isVariantRecord(meta.variant ?? prop('variant'))) {
      throw new AppError(
        'FORBIDDEN',
        'metadata.variant records a parity gate that the training service measured, so only the training service may register one; train with --int8 and register the job instead',
      );
    }
    const parent = input.parent ?? parentOf(meta.parent) ?? parentOf(meta.parent_model);
    if (parent) await this.registry.getModelVersion(parent.name, parent.version, { includeDeleted: true });

    const stored = await putContentAddressed(this.#platform.objects, ARTIFACT_NAMESPACE, data, '', 'application/octet-stream');
    if (input.source.kind === 'upload') source = input.sourceUri ?? `upload:sha256:${stored.sha256}`;
    const artifacts: VersionArtifact[] = [{ path: MODEL_FILE, object_key: stored.key, sha256: stored.sha256, size: data.length, content_type: 'application/octet-stream' }];

    // metadata_props fill what the trainer's model.json did not say (classifier weights stay in the file).
    const fromProps: Record<string, unknown> = {};
    for (const key of Object.keys(props)) if (!key.startsWith('classifier_')) fromProps[key] = prop(key);
    const metadata: Record<string, unknown> = { ...fromProps, ...meta };
    if (Object.keys(meta).length) {
      const bytes = Buffer.from(JSON.stringify(meta, null, 1));
      const m = await putContentAddressed(this.#platform.objects, ARTIFACT_NAMESPACE, bytes, '', 'application/json');
      artifacts.push({ path: META_FILE, object_key: m.key, sha256: m.sha256, size: bytes.length, content_type: 'application/json' });
    }
    for (const extra of input.extraArtifacts ?? []) {
      validateArtifactPath(extra.path);
      if (artifacts.some((a) => a.path === extra.path)) throw new AppError('INVALID_INPUT', `artifact path '${extra.path}' is given twice`);
      const e = await putContentAddressed(this.#platform.objects, ARTIFACT_NAMESPACE, extra.data, '', extra.contentType);
      artifacts.push({ path: extra.path, object_key: e.key, sha256: e.sha256, size: extra.data.length, content_type: extra.contentType ?? 'application/octet-stream' });
    }

    const metrics = asRecord(meta.metrics) ?? asRecord(asRecord(meta.evaluations)?.val) ?? null;
    const recordedThreshold = num(meta.threshold) ?? num(prop('threshold')) ?? num(metrics?.threshold);
    const preprocessing = meta.preprocessing ?? null;
    const preprocessingHash =
      str(meta.preprocessing_hash) ?? str(prop('preprocessing_hash')) ?? str(asRecord(preprocessing)?.hash) ?? recordedPreprocessingHash(preprocessing);
    const runCommit = run?.data.tags.find((t) => t.key === 'mlflow.source.git.commit')?.value;
    const codeVersion = input.codeVersion ?? str(meta.code_version) ?? str(meta.git_commit) ?? str(runCommit) ?? (await currentCodeVersion(this.#platform.config.projectRoot));
    const datasetVersion = input.datasetVersion ?? str(meta.dataset_version) ?? str(prop('dataset_version')) ?? run?.inputs.dataset_inputs[0]?.dataset.name ?? null;

    await this.registry.ensureRegisteredModel(input.name, input.actor.name);
    return this.registry.createModelVersion({
      name: input.name,
      userId: input.actor.name,
      source,
      runId: run?.info.run_id ?? null,
      description: input.description,
      tags: input.tags,
      onnx: { key: stored.key, sha256: stored.sha256, bytes: data.length },
      inputName: inspection.inputName,
      inputSize: inspection.inputSize,
      hasFeatures: inspection.hasFeatures,
      threshold: recordedThreshold ?? 0.5,
      thresholdMethod: recordedThreshold === null ? 'default' : (str(meta.threshold_method) ?? str(prop('threshold_method')) ?? str(metrics?.threshold_method)),
      preprocessing,
      preprocessingHash,
      datasetVersion,
      codeVersion,
      parent,
      valAuc: num(metrics?.auc) ?? num(meta.best_val_auc) ?? runMetric(run, ['val_auc', 'auc', 'best_val_auc']),
      metrics,
      metadata,
      artifacts,
    });
  }

  /** model.json next to the ONNX artifact of a run, when the trainer logged one. */
  async #runMetadata(runId: string, onnxPath: string): Promise<Record<string, unknown> | null> {
    const dir = onnxPath.includes('/') ? onnxPath.slice(0, onnxPath.lastIndexOf('/') + 1) : '';
    try {
      const artifact = await this.tracking.store.getArtifact(runId, `${dir}${META_FILE}`);
      return asRecord(JSON.parse((await this.#platform.objects.get(artifact.object_key)).toString('utf8')));
    } catch {
      return null;
    }
  }

  /**
   * MLflow's model-versions/create: a `runs:/<run_id>/<path>` (or mlflow-artifacts:) source that
   * names an ONNX artifact is registered fully (validated, servable); any other source makes a
   * plain version that only records the URI. NOT_FOUND when the registered model does not exist.
   */
  async createVersionFromSource(input: { name: string; source: string; runId?: string; description?: string; tags?: KeyValue[]; runLink?: string; actor: Actor; requestId?: string }): Promise<ModelVersionRecord> {
    await this.registry.getRegisteredModel(input.name);
    const parsed = parseRunSource(input.source);
    if (parsed) {
      const runId = parsed.runId;
      const candidates = parsed.path.endsWith('.onnx') ? [parsed.path] : [`${parsed.path}/${MODEL_FILE}`.replace(/^\//, '')];
      for (const path of candidates) {
        const found = path ? await this.tracking.store.getArtifact(runId, path).catch(() => null) : null;
        if (found) return this.register({ name: input.name, actor: input.actor, requestId: input.requestId, source: { kind: 'run', runId, artifactPath: path }, description: input.description, tags: input.tags });
      }
    }
    const version = await this.registry.createModelVersion({
      name: input.name,
      userId: input.actor.name,
      source: input.source,
      runId: input.runId ?? parsed?.runId ?? null,
      runLink: input.runLink ?? null,
      description: input.description,
      tags: input.tags,
    });
    this.#audit(input.actor.name, 'model.register', `model:${input.name}/${version.version}`, 'success', input.requestId, { source: input.source, run_id: version.run_id, onnx: false });
    await this.#publish(TOPICS.modelRegistered, { name: input.name, version: version.version, stage: version.current_stage, alias: null, run_id: version.run_id, onnx_sha256: null, actor: input.actor.name });
    return version;
  }

  // ── lookup ────────────────────────────────────────────────────────────────────────────────

  // ── reads (registry-read-models.ts) ───────────────────────────────────────────────────────

  /** A version by number ('3', 3, 'v3'), 'latest', or alias; NOT_FOUND when it does not exist. */
  resolve(name: string, versionOrAlias: string | number): Promise<ModelVersionRecord> {
    return this.#reads.resolve(name, versionOrAlias);
  }

  /** A stored file of a version (model.onnx, model.json, …) with its bytes. */
  getArtifact(name: string, versionOrAlias: string | number, path = MODEL_FILE): Promise<{ artifact: VersionArtifact; data: Buffer }> {
    return this.#reads.getArtifact(name, versionOrAlias, path);
  }

  /** Like getArtifact, streamed (large ONNX files to HTTP clients). */
  openArtifact(name: string, versionOrAlias: string | number, path = MODEL_FILE): Promise<{ artifact: VersionArtifact; stream: Readable }> {
    return this.#reads.openArtifact(name, versionOrAlias, path);
  }

  listModels(page: PageRequest & { filter?: string }): Promise<Page<ModelSummary>> {
    return this.#reads.listModels(page);
  }

  getModel(name: string): Promise<ModelDetail> {
    return this.#reads.getModel(name);
  }

  /** version → run → dataset version → preprocessing hash → code version → parent model(s). */
  lineage(name: string, versionOrAlias: string | number): Promise<Lineage> {
    return this.#reads.lineage(name, versionOrAlias);
  }

  card(name: string, versionOrAlias: string | number): Promise<ModelCard> {
    return this.#reads.card(name, versionOrAlias);
  }

  cardMarkdown(name: string, versionOrAlias: string | number): Promise<string> {
    return this.#reads.cardMarkdown(name, versionOrAlias);
  }

  /** Side-by-side metrics, params, dataset versions, confusion matrices and ROC curves. */
  compare(name: string, versions: number[]): Promise<Comparison> {
    return this.#reads.compare(name, versions);
  }

  // ── stages and aliases ────────────────────────────────────────────────────────────────────

  /**
   * Moves a version to a stage. Staging and Production are mirrored by the aliases `staging` and
   * `production` and hold one version each (the one replaced goes to None from Staging, Archived
   * from Production). Promotion to Production passes the gate (see evaluateGate) unless an admin
   * forces it with a reason; a refusal is recorded and throws GATE_FAILED (422) with the verdict.
   */
  async setStage(input: SetStageInput): Promise<StageResult> {
    const { name, version, stage, actor } = input;
    const resource = `model:${name}/${version}`;
    if (!STAGES.includes(stage)) throw new AppError('INVALID_INPUT', `Invalid Model Version stage: ${String(stage)}. Value must be one of ${STAGES.join(', ')}.`);
    const v = await this.registry.getModelVersion(name, version);
    if (input.force && actor.role !== 'admin') {
      this.#audit(actor.name, 'model.stage', resource, 'denied', input.requestId, { to: stage, force: true, reason: 'force requires the admin role' });
      throw new AppError('FORBIDDEN', `only an admin may force a stage change past the promotion gate; '${actor.name}' has role '${actor.role}'`);
    }
    const reason = input.reason?.trim() || null;
    if (input.force && !reason) throw new AppError('INVALID_INPUT', 'a forced promotion needs a reason (who asked for it and why)');

    const refuse = async (code: 'GATE_FAILED' | 'NOT_SERVABLE', message: string, verdict: GateVerdict): Promise<never> => {
      await this.registry.recordStageEvent({ name, version, from_stage: v.current_stage, to_stage: stage, outcome: 'refused', actor: actor.name, forced: false, reason, verdict });
      this.#audit(actor.name, 'model.stage', resource, 'failure', input.requestId, { from: v.current_stage, to: stage, gate: verdict });
      throw new AppError(code, message, { verdict });
    };

    let verdict: GateVerdict | null = null;
    if (stage === 'Production' && v.current_stage !== 'Production') {
      const production = await this.#currentProduction(name, version);
      const site = siteCalibrationOf(v);
      verdict = site
        ? evaluateSiteGate({
            candidate: { version: v.version, onnx_sha256: v.onnx?.sha256 ?? null },
            site: { auc: site.auc, data: site.data.manifest_sha256, n: site.data.n, production: site.gate_evidence.production },
            production: production ? { version: production.version, onnx_sha256: production.onnx?.sha256 ?? null } : null,
            margin: this.promotionMargin,
            actor: actor.name,
          })
        : { ...evaluateGate({ candidate: v, production, margin: this.promotionMargin, actor: actor.name }), basis: { kind: 'validation', site_data: null, n: null } };
      if (!verdict.passed) {
        if (!input.force) {
          await refuse('GATE_FAILED', `promotion of ${name} version ${version} to Production refused: ${verdict.message}. An admin may force it with a reason.`, verdict);
        }
        verdict = { ...verdict, forced: true, reason: reason! };
      } else if (reason) verdict = { ...verdict, reason };
      const variant = variantServability(v.metadata);
      if (!variant.servable) {
        await refuse('NOT_SERVABLE', `promotion of ${name} version ${version} to Production refused: ${variant.message}. A variant that fails its parity gate is never promoted, forced or not.`, {
          ...verdict,
          passed: false,
          forced: false,
          message: variant.message,
        });
      }
      verdict = { ...verdict, servability: await this.#servability(input, v.version) };
      if (verdict.servability!.servable === false) {
        await refuse('NOT_SERVABLE', `promotion of ${name} version ${version} to Production refused: ${verdict.servability!.message}. A model that cannot serve is never promoted, forced or not.`, {
          ...verdict,
          passed: false,
          forced: false,
          message: verdict.servability!.message,
        });
      }
    } else if (v.current_stage === 'Production' && stage !== 'Production') {
      // Leaving Production empty: the deployment keeps serving this version with nothing in Production behind it.
      if (!input.force) {
        throw new AppError(
          'CONFLICT',
          `version ${version} is the Production version of ${name}; moving it to ${stage} leaves Production empty while the deployment keeps serving it. Promote another version instead, or (admin) pass force with a reason.`,
        );
      }
    }

    const alias = STAGE_ALIAS[stage];
    if (v.current_stage === stage && (!alias || v.aliases.includes(alias))) return { version: v, verdict: v.gate, changed: false, demoted: [] };

    const others = alias ? (await this.registry.versionsInStage(name, stage)).filter((o) => o.version !== version) : [];
    const demoteTo: Stage = stage === 'Production' ? 'Archived' : 'None';
    const demote = others.map((o) => ({ version: o.version, stage: demoteTo }));
    const aliasMoves: { alias: string; version: number | null; previous: number | null }[] = [];
    const setAliases: Record<string, number> = {};
    const deleteAliases: string[] = [];
    if (alias) {
      const previous = await this.registry.getAlias(name, alias).catch(() => null);
      if (previous !== version) {
        setAliases[alias] = version;
        aliasMoves.push({ alias, version, previous });
      }
    }
    for (const held of Object.values(STAGE_ALIAS)) {
      if (held !== alias && v.aliases.includes(held!)) {
        deleteAliases.push(held!);
        aliasMoves.push({ alias: held!, version: null, previous: version });
      }
    }
    const change: StageChange = {
      name,
      version,
      stage,
      demote,
      setAliases,
      deleteAliases,
      actor: actor.name,
      verdict,
      event: { name, version, from_stage: v.current_stage, to_stage: stage, outcome: 'applied', actor: actor.name, forced: Boolean(verdict?.forced), reason, verdict },
    };
    const updated = await this.registry.applyStageChange(change);
    this.#audit(actor.name, 'model.stage', resource, 'success', input.requestId, {
      from: v.current_stage,
      to: stage,
      forced: Boolean(verdict?.forced),
      reason,
      gate: verdict,
      demoted: demote,
    });
    await this.#publish(TOPICS.modelStageChanged, { name, version, stage, previous_stage: v.current_stage, alias: alias ?? null, forced: Boolean(verdict?.forced), actor: actor.name });
    for (const d of demote) {
      await this.#publish(TOPICS.modelStageChanged, { name, version: d.version, stage: d.stage, previous_stage: stage, alias: null, replaced_by: version, actor: actor.name });
    }
    for (const move of aliasMoves) {
      await this.#publish(TOPICS.modelAliasChanged, { name, alias: move.alias, version: move.version, previous_version: move.previous, stage, actor: actor.name });
    }
    return { version: updated, verdict, changed: true, demoted: demote };
  }

  /**
   * The canary load in the deployment service a promotion to Production needs. A failed canary is
   * final; an unreachable deployment refuses the promotion (503) unless an admin forces it.
   */
  async #servability(input: SetStageInput, version: number): Promise<NonNullable<GateVerdict['servability']>> {
    const unchecked = (message: string, target: string | null = null) => ({ checked: false, servable: null, message, target, checks: [], reference: null });
    if (input.skipCanary) return unchecked(`not checked: ${input.skipCanary}`);
    if (this.#platform.config.promotionCanary === 'off') return unchecked('not checked: XRAY_PROMOTION_CANARY=off (no canary load before the alias moved)');
    let report: CanaryReport & { target?: string };
    try {
      report = await this.#canary(input.name, version, { authorization: input.authorization, requestId: input.requestId, actor: input.actor.name });
    } catch (err) {
      const unreachable = err instanceof AppError && (err.code === 'SERVICE_UNAVAILABLE' || err.code === 'UNAUTHENTICATED' || err.code === 'FORBIDDEN');
      if (!unreachable) throw err;
      if (input.force) return unchecked(`not checked: the deployment could not run a canary (${err.message}); forced by ${input.actor.name}`);
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `promotion of ${input.name} version ${version} to Production refused: the deployment service could not canary-load it, so nobody knows it will serve (${err.message}). Retry when the deployment is up, or (admin) force with a reason.`,
      );
    }
    return { checked: true, servable: report.servable, message: report.message, target: report.target ?? null, checks: report.checks, reference: report.reference };
  }

  /** The version serving as production: the `production` alias, else the newest version in stage Production. */
  async #currentProduction(name: string, excluding: number): Promise<ModelVersionRecord | null> {
    const aliased = await this.registry.getAlias(name, 'production').catch(() => null);
    if (aliased !== null && aliased !== excluding) return this.registry.getModelVersion(name, aliased).catch(() => null);
    const inStage = await this.registry.versionsInStage(name, 'Production');
    return inStage.find((v) => v.version !== excluding) ?? null;
  }

  /** Points an alias at a version; `production` / `staging` go through setStage (and so the gate). */
  async setAlias(input: { name: string; alias: string; version: number; actor: Actor; requestId?: string; force?: boolean; reason?: string; authorization?: string }): Promise<void> {
    const stage = stageOfAlias(input.alias);
    if (stage) {
      await this.setStage({ name: input.name, version: input.version, stage, actor: input.actor, force: input.force, reason: input.reason, requestId: input.requestId, authorization: input.authorization });
      return;
    }
    validateAlias(input.alias);
    const previous = await this.registry.getAlias(input.name, input.alias).catch(() => null);
    await this.registry.setAlias(input.name, input.alias, input.version, input.actor.name);
    this.#audit(input.actor.name, 'model.alias.set', `model:${input.name}/${input.version}`, 'success', input.requestId, { alias: input.alias, previous_version: previous });
    await this.#publish(TOPICS.modelAliasChanged, { name: input.name, alias: input.alias, version: input.version, previous_version: previous, stage: null, actor: input.actor.name });
  }

  /** Removes an alias; removing `production` / `staging` moves that version to stage None. */
  async deleteAlias(input: { name: string; alias: string; actor: Actor; requestId?: string }): Promise<void> {
    const version = await this.registry.getAlias(input.name, input.alias);
    if (stageOfAlias(input.alias)) {
      await this.setStage({ name: input.name, version, stage: 'None', actor: input.actor, requestId: input.requestId });
      return;
    }
    await this.registry.deleteAlias(input.name, input.alias);
    this.#audit(input.actor.name, 'model.alias.delete', `model:${input.name}/${version}`, 'success', input.requestId, { alias: input.alias });
    await this.#publish(TOPICS.modelAliasChanged, { name: input.name, alias: input.alias, version: null, previous_version: version, stage: null, actor: input.actor.name });
  }

  // ── deletion and garbage collection ───────────────────────────────────────────────────────

  /**
   * Soft delete (default): the version disappears from every read and loses its aliases; rows and
   * bytes stay. Hard delete (admin only): rows go, and so do the stored files no other version or
   * run references.
   */
  async deleteVersion(input: { name: string; version: number; hard?: boolean; force?: boolean; reason?: string; actor: Actor; requestId?: string }): Promise<DeleteResult> {
    const { name, version, actor } = input;
    const resource = `model:${name}/${version}`;
    if (input.hard && actor.role !== 'admin') {
      this.#audit(actor.name, 'model.delete', resource, 'denied', input.requestId, { hard: true, reason: 'hard delete requires the admin role' });
      throw new AppError('FORBIDDEN', `only an admin may hard-delete a model version; '${actor.name}' has role '${actor.role}'`);
    }
    const current = await this.registry.getModelVersion(name, version).catch(() => null);
    if (current?.current_stage === 'Production') {
      if (!input.force) {
        throw new AppError('CONFLICT', `version ${version} is the Production version of ${name}; deleting it leaves Production empty. Promote another version first, or (admin) pass force with a reason.`);
      }
      if (actor.role !== 'admin') {
        this.#audit(actor.name, 'model.delete', resource, 'denied', input.requestId, { force: true, reason: 'force requires the admin role' });
        throw new AppError('FORBIDDEN', `only an admin may delete the Production version; '${actor.name}' has role '${actor.role}'`);
      }
      if (!input.reason?.trim()) throw new AppError('INVALID_INPUT', 'deleting the Production version needs a reason (who asked for it and why)');
    }
    let removed: string[] = [];
    let aliases: string[] = [];
    if (input.hard) {
      const before = await this.registry.getModelVersion(name, version, { includeDeleted: true });
      aliases = before.aliases;
      const artifacts = await this.registry.hardDeleteModelVersion(name, version);
      const keys = new Set([...artifacts.map((a) => a.object_key), ...(before.onnx ? [before.onnx.key] : [])]);
      const referenced = await this.#referencedKeys();
      for (const key of keys) {
        if (referenced.has(key)) continue;
        await this.#platform.objects.delete(key);
        removed.push(key);
      }
    } else {
      aliases = await this.registry.softDeleteModelVersion(name, version);
    }
    this.#audit(actor.name, 'model.delete', resource, 'success', input.requestId, { hard: Boolean(input.hard), removed_objects: removed, aliases_removed: aliases });
    await this.#publish(TOPICS.modelDeleted, { name, version, hard: Boolean(input.hard), stage: null, alias: null, aliases_removed: aliases, actor: actor.name });
    for (const alias of aliases) {
      await this.#publish(TOPICS.modelAliasChanged, { name, alias, version: null, previous_version: version, stage: null, actor: actor.name });
    }
    removed = removed.sort();
    return { name, version, hard: Boolean(input.hard), removed_objects: removed };
  }

  /** MLflow's registered-models/create (registration creates models implicitly). ALREADY_EXISTS when taken. */
  async createRegisteredModel(input: { name: string; description?: string; tags?: KeyValue[]; actor: Actor; requestId?: string }): Promise<RegisteredModelRecord> {
    const model = await this.registry.createRegisteredModel({ name: input.name, description: input.description, tags: input.tags, userId: input.actor.name });
    this.#audit(input.actor.name, 'model.create', `model:${model.name}`, 'success', input.requestId, { description: model.description });
    return model;
  }

  /** Renames a model with its versions, aliases and history. NOT_FOUND / ALREADY_EXISTS. */
  async renameRegisteredModel(input: { name: string; newName: string; actor: Actor; requestId?: string }): Promise<RegisteredModelRecord> {
    const model = await this.registry.renameRegisteredModel(input.name, input.newName);
    this.#audit(input.actor.name, 'model.rename', `model:${input.name}`, 'success', input.requestId, { new_name: input.newName });
    return model;
  }

  /** MLflow's registered-models/delete: the model, its tags and aliases go; its versions are soft-deleted. */
  async deleteRegisteredModel(input: { name: string; actor: Actor; requestId?: string }): Promise<void> {
    const versions = await this.registry.deleteRegisteredModel(input.name);
    this.#audit(input.actor.name, 'model.delete', `model:${input.name}`, 'success', input.requestId, { versions, hard: false });
    for (const version of versions) await this.#publish(TOPICS.modelDeleted, { name: input.name, version, hard: false, stage: null, alias: null, actor: input.actor.name });
  }

  async #referencedKeys(): Promise<Set<string>> {
    const [a, b] = await Promise.all([this.registry.referencedObjectKeys(), this.tracking.store.referencedObjectKeys()]);
    return new Set([...a, ...b]);
  }

  /** Removes unreferenced artifacts older than the grace period (artifact-gc.ts). Admin only. */
  collectGarbage(input: { actor: Actor; dryRun?: boolean; minAgeS?: number; requestId?: string }): Promise<GcResult> {
    return collectArtifactGarbage(
      {
        objects: this.#platform.objects,
        referencedKeys: () => this.#referencedKeys(),
        audit: (actor, outcome, requestId, details) => this.#audit(actor, 'artifacts.gc', ARTIFACT_NAMESPACE, outcome, requestId, details),
      },
      input,
    );
  }

  // ── lineage, cards, comparison ────────────────────────────────────────────────────────────

  // ── site calibration ──────────────────────────────────────────────────────────────────────

  /**
   * Fits a threshold and a temperature on a site's labelled cases (scored by the deployment
   * through its serving path) and registers them as a child version with the same ONNX bytes;
   * with `promote`, the child then goes through the promotion gate on that site's data.
   * @throws AppError TOO_FEW_CASES (422) below the minimum; NOT_FOUND; INVALID_INPUT.
   */
  async calibrate(input: CalibrateInput): Promise<CalibrateOutcome> {
    return calibrateVersion(
      {
        registry: this,
        platform: this.#platform,
        audit: (action, resource, outcome, details) => this.#audit(input.actor.name, action, resource, outcome, input.requestId, details),
      },
      input,
    );
  }

  /**
   * Measures where the version's heatmaps fall relative to the lung fields on its validation
   * split and keeps the report on the version (its card shows it).
   * @throws AppError NOT_FOUND; UNPROCESSABLE (no dataset version, no CAM).
   */
  async measureLungFields(name: string, versionOrAlias: string | number, ctx: { actor: Actor; requestId?: string; authorization?: string }): Promise<LungFieldReport> {
    const v = await this.resolve(name, versionOrAlias);
    const resource = `model:${v.name}/${v.version}`;
    try {
      const report = await measureLungFields(
        { platform: this.#platform, setTag: (n, version, value) => this.registry.setModelVersionTag(n, version, { key: LUNG_FIELD_TAG, value }) },
        v,
        { actor: ctx.actor.name, requestId: ctx.requestId, authorization: ctx.authorization },
      );
      this.#audit(ctx.actor.name, 'model.lung_fields', resource, 'success', ctx.requestId, { n: report.n, mean_inside: report.mean_inside, dataset_version: report.dataset_version });
      return report;
    } catch (err) {
      this.#audit(ctx.actor.name, 'model.lung_fields', resource, 'failure', ctx.requestId, { error: (err as Error).message });
      throw err;
    }
  }

}

/** A run's latest value of the first of these metrics it logged (validation AUC for the gate when no model.json says it). */
function runMetric(run: Run | null, keys: string[]): number | null {
  for (const key of keys) {
    const m = run?.data.metrics.find((x) => x.key === key);
    if (m && Number.isFinite(m.value)) return m.value;
  }
  return null;
}

function stageOfAlias(alias: string): Stage | null {
  for (const [stage, a] of Object.entries(STAGE_ALIAS)) if (a === alias) return stage as Stage;
  return null;
}

/** `runs:/<run_id>/<path>` or `mlflow-artifacts:/<experiment>/<run_id>/artifacts/<path>`. */
export function parseRunSource(source: string): { runId: string; path: string } | null {
  const runs = /^runs:\/([0-9a-f]{32})\/?(.*)$/.exec(source);
  if (runs) return { runId: runs[1]!, path: runs[2]!.replace(/\/+$/, '') };
  const proxied = /^mlflow-artifacts:\/+[^/]+\/([0-9a-f]{32})\/artifacts\/?(.*)$/.exec(source);
  if (proxied) return { runId: proxied[1]!, path: proxied[2]!.replace(/\/+$/, '') };
  return null;
}
