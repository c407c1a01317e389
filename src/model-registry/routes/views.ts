import type { z } from 'zod';
import type { ModelVersionRecord, StageEvent } from '../store/registry-store.js';
import { variantOf, variantServability } from '../client/variant.js';
import { siteCalibrationOf } from '../service/site-calibration-record.js';
import type { ModelVersionView, stageEvent } from './schemas.js';

/** A version as the registry API shows it; `full` adds the trainer's metadata (model.json). */
export function toVersionView(v: ModelVersionRecord, full = true): ModelVersionView {
  const metrics = v.metrics && !full ? Object.fromEntries(Object.entries(v.metrics).filter(([k]) => k !== 'roc' && k !== 'calibration')) : v.metrics;
  return {
    name: v.name,
    version: v.version,
    stage: v.current_stage,
    aliases: v.aliases,
    description: v.description,
    created: v.creation_timestamp,
    updated: v.last_updated_timestamp,
    user_id: v.user_id,
    source: v.source,
    run_id: v.run_id,
    status: v.status,
    tags: v.tags,
    deleted: v.deleted_at !== null,
    onnx: v.onnx,
    input_name: v.input_name,
    input_size: v.input_size,
    has_features: v.has_features,
    threshold: v.threshold,
    threshold_method: v.threshold_method,
    temperature: siteCalibrationOf(v)?.temperature ?? null,
    preprocessing: v.preprocessing ?? null,
    preprocessing_hash: v.preprocessing_hash,
    dataset_version: v.dataset_version,
    code_version: v.code_version,
    parent: v.parent,
    val_auc: v.val_auc,
    metrics,
    ...(full ? { metadata: v.metadata } : {}),
    gate: v.gate,
    variant: variantView(v.metadata),
  };
}

function variantView(metadata: unknown): ModelVersionView['variant'] {
  const variant = variantOf(metadata);
  if (variant === null) return null;
  const verdict = variantServability(metadata);
  if ('malformed' in variant) {
    // The trainer's bare "int8" marker (an INT8 file registered on its own) still names its kind.
    const kind = (metadata as Record<string, unknown>).variant === 'int8' ? 'int8' : 'unknown';
    return { kind, of: null, gate_passed: false, message: verdict.servable ? '' : verdict.message };
  }
  return { kind: variant.kind, of: variant.of, gate_passed: variant.gate.passed, message: verdict.servable ? variant.gate.message : verdict.message };
}

export function toStageEventView(e: StageEvent): z.infer<typeof stageEvent> {
  return { id: e.id, version: e.version, from_stage: e.from_stage, to_stage: e.to_stage, outcome: e.outcome, actor: e.actor, forced: e.forced, reason: e.reason, verdict: e.verdict, created_at: e.created_at };
}
