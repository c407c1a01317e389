import type { Platform } from '../../core/platform.js';
import { AppError, isAppError } from '../../core/errors.js';
import { sharedImagePool } from '../../core/imaging/image-pool.js';
import { parsePreprocessSpec } from '../../core/imaging/preprocess-spec.js';
import { buildLungAtlas, lungFieldMass, summarizeLungFieldMass, type LungAtlas } from '../../core/ml/lung-fields.js';
import { dataPipelineClient, type VersionItem } from '../../data-pipeline/client/index.js';
import { deploymentScorer } from '../../deployment/client/scoring.js';
import type { ModelVersionRecord } from '../store/registry-store.js';
import type { LungFieldReport } from './model-card-types.js';

/** Training images averaged into the atlas, and validation images measured (evenly spaced by hash). */
const ATLAS_IMAGES = 200;
const MEASURED_IMAGES = 500;

export const ATLAS_KIND = 'mean-train-otsu-in-thorax-prior';
export const ATLAS_DESCRIPTION =
  "A fixed atlas, not a segmentation: the mean of the training split's preprocessed images, thresholded (Otsu) inside two generous ellipses where the lungs of a frontal chest radiograph lie, one connected region per side. Aerated lung is the darkest tissue inside the thorax, so this is where lungs usually are; a rotated, off-centre or shallow-inspiration image has its lungs elsewhere, and mass near the boundary is uncertain.";

export interface LungFieldDeps {
  platform: Platform;
  setTag: (name: string, version: number, value: string) => Promise<void>;
}

/**
 * The atlas's lung fields' bounding box in fractions of the model input (end exclusive): with a
 * margin, a box for the `input_crop` training hyper-parameter.
 */
export function atlasBox(atlas: Pick<LungAtlas, 'bbox' | 'side'>): { top: number; bottom: number; left: number; right: number } {
  const { bbox, side } = atlas;
  return { top: bbox.y0 / side, bottom: bbox.y1 / side, left: bbox.x0 / side, right: bbox.x1 / side };
}

/** Every k-th item in hash order, at most n: deterministic and spread over the split. */
function spread(items: VersionItem[], n: number): VersionItem[] {
  const sorted = [...items].sort((a, b) => (a.hash < b.hash ? -1 : 1));
  if (sorted.length <= n) return sorted;
  return Array.from({ length: n }, (_, i) => sorted[Math.floor((i * sorted.length) / n)]!);
}

/**
 * Measures how much of the version's class-activation mass falls inside the lung fields on its
 * dataset version's validation split: the atlas from its training split (preprocessed like the
 * model's inputs), the maps from the deployment's scorer (the serving path's CAM). Stored on the
 * version (tag {@link LUNG_FIELD_TAG}) so its model card shows it.
 * @throws AppError UNPROCESSABLE without a recorded dataset version, training or validation
 *   images, or a model without a class-activation map.
 */
export async function measureLungFields(
  deps: LungFieldDeps,
  v: ModelVersionRecord,
  ctx: { actor: string; requestId?: string; authorization?: string },
): Promise<LungFieldReport> {
  if (!v.dataset_version) throw new AppError('UNPROCESSABLE', `version ${v.version} of '${v.name}' records no dataset version: the lung-field atlas is built from its training split`);
  const call = { authorization: ctx.authorization, requestId: ctx.requestId };
  const data = dataPipelineClient(deps.platform);
  const items = await data.versionItems(v.dataset_version, call).catch((err: unknown) => {
    if (isAppError(err) && (err.code === 'NOT_FOUND' || err.code === 'INVALID_INPUT')) {
      throw new AppError('UNPROCESSABLE', `version ${v.version} of '${v.name}' records dataset version '${v.dataset_version}', which the data pipeline does not have: the lung-field atlas is built from its training split`);
    }
    throw err;
  });
  const train = spread(items.filter((i) => i.split === 'train'), ATLAS_IMAGES);
  const val = spread(items.filter((i) => i.split === 'val'), MEASURED_IMAGES);
  if (train.length === 0 || val.length === 0) throw new AppError('UNPROCESSABLE', `dataset version ${v.dataset_version} has ${train.length} training and ${val.length} validation images; both are needed`);

  const recorded = v.preprocessing && typeof v.preprocessing === 'object' ? (v.preprocessing as Record<string, unknown>) : null;
  const spec = parsePreprocessSpec(recorded ? { size: recorded.size, mode: recorded.mode, pad: recorded.pad, format: recorded.format } : { size: v.input_size ?? undefined });
  const pool = sharedImagePool(deps.platform);
  const images: { pixels: Uint8Array; size: number }[] = [];
  for (let i = 0; i < train.length; i += 8) {
    const batch = await Promise.all(train.slice(i, i + 8).map(async (item) => (await pool.run(await data.imageBytes(item.hash, call), spec)).pixels));
    for (const pixels of batch) images.push({ pixels, size: spec.size });
  }
  const atlas = buildLungAtlas(images);

  const report = await deploymentScorer(deps.platform).score(v.name, v.version, val.map((i) => ({ sha256: i.hash })), { ...call, actor: ctx.actor }, { cam: true });
  const measured: { label: string; mass: ReturnType<typeof lungFieldMass> }[] = [];
  let failed = 0;
  report.results.forEach((r, i) => {
    if (!r.ok) failed++;
    else if (r.cam) measured.push({ label: val[i]!.label, mass: lungFieldMass({ grid: Float32Array.from(r.cam.grid), h: r.cam.h, w: r.cam.w }, atlas) });
  });
  if (measured.length === 0) {
    throw new AppError('UNPROCESSABLE', failed === val.length ? `none of the ${val.length} validation images could be scored` : `'${v.name}' v${v.version} has no class-activation map (no features output), so there is no heatmap to locate`);
  }
  const summary = summarizeLungFieldMass(measured);
  const out: LungFieldReport = {
    method: 'cam',
    split: 'val',
    dataset_version: v.dataset_version,
    atlas: { kind: ATLAS_KIND, description: ATLAS_DESCRIPTION, train_images: atlas.images, side: atlas.side, coverage: atlas.coverage, bbox: atlasBox(atlas) },
    n: summary.n,
    failed,
    empty: summary.empty,
    mean_inside: summary.mean_inside,
    median_inside: summary.median_inside,
    p10_inside: summary.p10_inside,
    share_mostly_outside: summary.share_mostly_outside,
    regions: summary.regions,
    by_label: summary.by_label,
    measured_by: ctx.actor,
    measured_at: new Date().toISOString(),
  };
  await deps.setTag(v.name, v.version, JSON.stringify(out));
  return out;
}
