import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { withClusterLock } from '../../core/db/cluster-lock.js';
import { AppError, isAppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import { lungFieldReport } from '../routes/schemas.js';
import { LUNG_FIELD_TAG } from './lung-field-record.js';
import { ModelRegistryService, type Actor } from './registry-service.js';

/**
 * The shipped default model: `models/<name>/model.onnx` (+ `model.json`, `model-card.md`,
 * `reference.json`, `lung-fields.json`) in the project. On the first start of an embedded platform it becomes
 * version 1 of `<name>` in stage Production, so /predict answers at once.
 */

export const SEED_ACTOR: Actor = { name: 'system', role: 'admin' };

export interface SeedOptions {
  /** Folder holding `<name>/model.onnx` (default `<project>/models`). */
  modelsDir?: string;
  /** Model name (default `config.defaultModel`). */
  name?: string;
}

export type SeedResult =
  | { status: 'seeded'; name: string; version: number }
  | { status: 'exists'; name: string }
  | { status: 'absent'; name: string; file: string }
  | { status: 'skipped'; name: string; reason: string };

async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function parseJsonFile(file: string, bytes: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new AppError('UNPROCESSABLE', `${file} is not a JSON object`);
}

async function registryHas(registry: ModelRegistryService, name: string): Promise<boolean> {
  try {
    await registry.registry.getRegisteredModel(name);
    return true;
  } catch (err) {
    if (isAppError(err) && err.code === 'NOT_FOUND') return false;
    throw err;
  }
}

/**
 * Registers the shipped model as version 1 of `name` and promotes it to Production (alias
 * `production`), as actor 'system' in the audit trail — with `config.seedModel` on, when the file
 * exists and the registry has no model of that name yet. Scaled, replicas starting together take
 * a cluster-wide lock for this, so the model is registered once.
 * Idempotent: once the model exists nothing is read or written. The start path costs one
 * registry lookup; the copy into the object store happens once.
 * @throws AppError when the shipped files are unusable (a malformed model.json, an ONNX file the
 *   registry refuses); the caller decides whether that stops the start.
 */
export async function seedDefaultModel(platform: Platform, options: SeedOptions = {}): Promise<SeedResult> {
  const { config, logger } = platform;
  const name = options.name ?? config.defaultModel;
  if (!config.seedModel) return { status: 'skipped', name, reason: 'XRAY_SEED_MODEL is off' };
  const dir = path.join(options.modelsDir ?? path.join(config.projectRoot, 'models'), name);
  const onnxFile = path.join(dir, 'model.onnx');
  const present = await stat(onnxFile).then((s) => s.isFile(), () => false);
  if (!present) {
    logger.info({ file: onnxFile }, `no shipped model at ${path.relative(config.projectRoot, onnxFile) || onnxFile}; /predict needs a model registered and promoted (see docs/TRAINING.md)`);
    return { status: 'absent', name, file: onnxFile };
  }
  // Replicas booting together on an empty PostgreSQL database: one registers, the others wait for
  // the lock and then find the model.
  return withClusterLock(platform.database, `seed-model:${name}`, () => seedUnderLock(platform, name, dir, onnxFile));
}

async function seedUnderLock(platform: Platform, name: string, dir: string, onnxFile: string): Promise<SeedResult> {
  const { logger } = platform;
  const registry = new ModelRegistryService(platform);
  if (await registryHas(registry, name)) return { status: 'exists', name };

  const [onnx, metaBytes, card, reference, lungFields] = await Promise.all([
    readFile(onnxFile),
    readOptional(path.join(dir, 'model.json')),
    readOptional(path.join(dir, 'model-card.md')),
    readOptional(path.join(dir, 'reference.json')),
    readOptional(path.join(dir, 'lung-fields.json')),
  ]);
  const metadata = metaBytes ? parseJsonFile('model.json', metaBytes) : null;
  if (reference) parseJsonFile('reference.json', reference);
  // The lung-field heatmap report measured on the model's own validation split (docs/TRAINING.md):
  // kept on the version like a measured one, so the card shows it from the first start.
  const tags = [{ key: 'xray.seeded_from', value: `models/${name}` }];
  if (lungFields) {
    const report = lungFieldReport.safeParse(parseJsonFile('lung-fields.json', lungFields));
    if (!report.success) throw new AppError('UNPROCESSABLE', `lung-fields.json is not a lung-field report: ${report.error.issues[0]?.message ?? 'invalid'}`);
    tags.push({ key: LUNG_FIELD_TAG, value: JSON.stringify(report.data) });
  }
  const extraArtifacts: { path: string; data: Buffer; contentType: string }[] = [];
  if (reference) extraArtifacts.push({ path: 'reference.json', data: reference, contentType: 'application/json' });
  if (card) extraArtifacts.push({ path: 'model-card.md', data: card, contentType: 'text/markdown' });

  const version = await registry.register({
    name,
    actor: SEED_ACTOR,
    source: { kind: 'upload', data: onnx, filename: 'model.onnx' },
    metadata,
    description: `The default model shipped with xray-mlops (models/${name}), registered at first start.`,
    tags,
    extraArtifacts,
  });
  // No production version exists yet, so the gate passes when model.json records a validation AUC;
  // `force` only matters for a shipped model without one, and the reason says why.
  const staged = await registry.setStage({
    name,
    version: version.version,
    stage: 'Production',
    actor: SEED_ACTOR,
    force: true,
    reason: 'shipped default model, seeded at first start',
    skipCanary: 'the shipped model is registered at first start, before the deployment runs; the deployment loads it right after, and a failed load raises "model not serving"',
  });
  logger.info(
    { model: name, version: version.version, val_auc: version.val_auc, forced: Boolean(staged.verdict?.forced) },
    `registered the shipped model as ${name} v${version.version} (Production)`,
  );
  return { status: 'seeded', name, version: version.version };
}
