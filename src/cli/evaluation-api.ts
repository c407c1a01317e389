import type { z } from 'zod';
import { AppError } from '../core/errors.js';
import type { exportManifestSchema } from '../data-pipeline/routes/schemas.js';
import type { ClassLabel, Split } from '../data-pipeline/store/types.js';
import type { ScoreReport } from '../deployment/client/scoring.js';
import type { modelVersionView } from '../model-registry/routes/schemas.js';
import type { ServiceClient } from './client.js';
import type { DatasetReader, EvaluatedModel, EvaluationScorer, ScorerImage, ScorerResult } from './evaluation.js';

/**
 * A registered version evaluated through the platform's API with the caller's key: the version is
 * resolved in the model registry, its images are scored by the deployment's POST /models/score
 * (the serving path in a session of its own; nothing recorded as a prediction) and a dataset
 * version's items come from the data pipeline.
 */

type VersionView = z.infer<typeof modelVersionView>;
type ExportManifest = z.infer<typeof exportManifestSchema>;

/** Images per POST /models/score (the services' multipart file limit is 1000). */
export const SCORE_BATCH = 500;

export interface PlatformApi {
  registry: ServiceClient;
  deployment: ServiceClient;
  data: ServiceClient;
}

const isVersionNumber = (ref: string) => /^v?\d+$/i.test(ref);

function recordedOf(v: VersionView): EvaluatedModel['recorded'] {
  const m = v.metrics ?? {};
  const ci = Array.isArray(m.auc_ci) && m.auc_ci.length === 2 ? (m.auc_ci as [number, number]) : null;
  const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return { val_auc: v.val_auc, auc_ci: ci, sensitivity: n(m.sensitivity), specificity: n(m.specificity), dataset_version: v.dataset_version };
}

export class ApiEvaluationScorer implements EvaluationScorer {
  readonly takesStoredImages = true;
  readonly batchSize = SCORE_BATCH;
  #served: ScoreReport | null = null;

  private constructor(
    readonly api: PlatformApi,
    readonly version: VersionView,
    readonly alias: string | null,
  ) {}

  /** Resolves `name@ref` (alias, number, `v3`, `latest`) in the registry. @throws ApiError NOT_FOUND. */
  static async open(api: PlatformApi, target: { name: string; ref: string }): Promise<ApiEvaluationScorer> {
    const ref = isVersionNumber(target.ref) ? target.ref.replace(/^v/i, '') : target.ref;
    const { model_version } = await api.registry.get<{ model_version: VersionView }>(`/models/${encodeURIComponent(target.name)}/versions/${encodeURIComponent(ref)}`);
    return new ApiEvaluationScorer(api, model_version, isVersionNumber(target.ref) || target.ref.toLowerCase() === 'latest' ? null : target.ref);
  }

  get model(): EvaluatedModel {
    const s = this.#served;
    if (!s) throw new AppError('UNPROCESSABLE', 'the model is described by the deployment once it has scored an image');
    const v = this.version;
    return {
      name: s.name,
      version: s.version,
      alias: this.alias,
      source: { kind: 'registry', uri: s.uri },
      sha256: s.onnx_sha256,
      threshold: s.threshold,
      threshold_source: v.threshold === null || v.threshold_method === 'default' ? 'default' : 'registry',
      input_size: s.input_size,
      preprocessing: { ...s.preprocessing },
      heatmap_method: s.heatmap_method,
      recorded: recordedOf(v),
    };
  }

  async score(images: ScorerImage[], options: { reference: boolean }): Promise<ScorerResult[]> {
    const name = this.version.name;
    const version = String(this.version.version);
    const hashes = images.flatMap((i) => ('sha256' in i ? [i.sha256] : []));
    let body: unknown;
    if (hashes.length === images.length) body = { name, version, hashes, ...(options.reference ? { reference: true } : {}) };
    else {
      if (hashes.length > 0) throw new AppError('INVALID_INPUT', 'score either files or stored images in one call');
      const form = new FormData();
      form.append('name', name);
      form.append('version', version);
      if (options.reference) form.append('reference', 'true');
      for (const img of images as Extract<ScorerImage, { bytes: Uint8Array }>[]) form.append('file', new Blob([Uint8Array.from(img.bytes)], { type: 'application/octet-stream' }), img.filename);
      body = form;
    }
    const report = await this.api.deployment.post<ScoreReport>('/models/score', body);
    this.#served = report;
    return report.results.map((r) =>
      r.ok ? { ok: true, probability: r.probability, ...(r.reference ? { reference: r.reference } : {}) } : { ok: false, code: r.error.code, message: r.error.message },
    );
  }
}

/** A dataset version's items and stored bytes, from the data pipeline's API. */
export class ApiDatasetReader implements DatasetReader {
  constructor(readonly data: ServiceClient) {}

  async items(version: string, split: Split): Promise<{ hash: string; label: ClassLabel }[]> {
    const manifest = await this.data.get<ExportManifest>(`/versions/${encodeURIComponent(version)}/manifest`);
    return manifest.items.filter((i) => i.split === split).map((i) => ({ hash: i.hash, label: i.label }));
  }

  async bytes(hash: string): Promise<Uint8Array> {
    const res = await fetch(this.data.url(`/images/${hash}/content`), { headers: this.data.apiKey ? { authorization: `Bearer ${this.data.apiKey}` } : {} });
    if (!res.ok) throw new AppError(res.status === 404 ? 'NOT_FOUND' : 'UNPROCESSABLE', `image ${hash}: ${res.status} ${await res.text()}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}
