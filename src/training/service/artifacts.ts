import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { contentKey, putContentAddressed, type ObjectStore } from '../../core/objects/index.js';
import type { Calibration } from '../../core/ml/metrics.js';
import { reliabilityPng, rocCurvePng, type RocCurveInput } from '../../core/ml/plots.js';
import type { EvaluationMetrics } from '../runner/events.js';
import type { ArtifactRef } from '../store/types.js';

/** Object store namespace of training artifacts (content-addressed: `training/ab/cd/<sha256>.<ext>`). */
export const ARTIFACT_NAMESPACE = 'training';

const CONTENT_TYPES: Record<string, string> = {
  '.onnx': 'application/octet-stream',
  '.pt': 'application/octet-stream',
  '.json': 'application/json',
  '.png': 'image/png',
};

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Streams a local file into the object store under its sha256 (no copy when already there). */
export async function storeFile(objects: ObjectStore, file: string): Promise<ArtifactRef> {
  const ext = path.extname(file).toLowerCase();
  const contentType = CONTENT_TYPES[ext] ?? 'application/octet-stream';
  const sha256 = await sha256File(file);
  const key = contentKey(ARTIFACT_NAMESPACE, sha256, ext);
  const bytes = (await stat(file)).size;
  if (!(await objects.exists(key))) await objects.putStream(key, createReadStream(file), contentType);
  return { key, sha256, bytes, contentType, file: path.basename(file) };
}

/** Stores bytes (a rendered plot) content-addressed. */
export async function storeBytes(objects: ObjectStore, data: Buffer, file: string): Promise<ArtifactRef> {
  const ext = path.extname(file).toLowerCase();
  const contentType = CONTENT_TYPES[ext] ?? 'application/octet-stream';
  const { key, sha256 } = await putContentAddressed(objects, ARTIFACT_NAMESPACE, data, ext, contentType);
  return { key, sha256, bytes: data.length, contentType, file };
}

/** Copies an object to a local file (atomically), e.g. a checkpoint to resume from on another machine. */
export async function fetchToFile(objects: ObjectStore, key: string, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await pipeline(await objects.getStream(key), createWriteStream(tmp));
  await rename(tmp, file);
}

/** The worker reports empty bins with null means; the plotting code wants numbers. */
function toCalibration(c: NonNullable<EvaluationMetrics['calibration']>): Calibration {
  return {
    ece: c.ece ?? 0,
    bins: c.bins.map((b) => ({ lo: b.lo, hi: b.hi, count: b.count, mean_pred: b.mean_pred ?? 0, frac_pos: b.frac_pos ?? 0 })),
  };
}

/**
 * ROC curves of every evaluated split in one chart, and the validation reliability diagram.
 * Returns only the plots the evaluation has data for.
 */
export async function renderEvaluationPlots(
  evaluations: Record<string, EvaluationMetrics>,
  title: string,
): Promise<{ roc?: Buffer; calibration?: Buffer }> {
  const curves: RocCurveInput[] = Object.entries(evaluations)
    .filter(([, m]) => (m.roc?.length ?? 0) > 1)
    .map(([split, m]) => ({ label: split, roc: m.roc!, auc: m.auc }));
  const out: { roc?: Buffer; calibration?: Buffer } = {};
  if (curves.length) out.roc = await rocCurvePng(curves, { title: `ROC — ${title}` });
  const val = evaluations.val;
  if (val?.calibration && val.calibration.bins.length) out.calibration = await reliabilityPng(toCalibration(val.calibration), { title: `Reliability (val) — ${title}` });
  return out;
}
