/**
 * Scoring through the deployment's serving path, for services that calibrate or evaluate a
 * version on labelled cases (the model registry's site calibration): the same decode +
 * preprocessing (worker pool) and ONNX Runtime session class as /predict, in a session of its own
 * that never serves, with nothing recorded as a prediction. Import-free apart from types and the
 * HTTP client, like the rest of client/.
 */
import { AppError } from '../../core/errors.js';
import { preferLocal } from '../../core/local-services.js';
import type { Platform } from '../../core/platform.js';
import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { PredictionStats } from '../store/prediction-store.js';
import type { CallContext } from './types.js';

/** One case: image bytes (an upload) or the sha256 of an image the data pipeline stores. */
export type ScoreImage = { bytes: Uint8Array; filename?: string } | { sha256: string };

/** A class-activation map on the model's feature grid (row-major, ReLU'd and normalised to [0, 1]). */
export interface ScoreCam {
  h: number;
  w: number;
  grid: number[];
}

/** One image's drift-reference row: what /predict records for monitoring (image statistics, the embedding). */
export interface ScoreReference {
  stats: PredictionStats;
  /** The data plane's embedding of the features (null for a model without a features output). */
  embedding: number[] | null;
}

export type ScoreResult =
  | { ok: true; raw_probability: number; probability: number; cam?: ScoreCam | null; reference?: ScoreReference }
  | { ok: false; error: { code: string; message: string } };

export interface ScoreOptions {
  /** Also return each image's class-activation map (null for a model without a CAM: no features output). */
  cam?: boolean;
  /** Also return each image's drift-reference row (`xray evaluate --reference`). */
  reference?: boolean;
}

/** The answer of POST /models/score: one result per image, in order. */
export interface ScoreReport {
  name: string;
  version: string;
  onnx_sha256: string;
  threshold: number;
  /** The site temperature the version serves with (null: none); `probability` has it applied, `raw_probability` not. */
  temperature: number | null;
  input_size: number;
  preprocessing_hash: string;
  /** The recorded preprocessing spec, its hash, and whether the file's own hash matches it. */
  preprocessing: Record<string, unknown>;
  /** Where the session's ONNX file came from (models:/name/version). */
  uri: string;
  heatmap_method: string;
  results: ScoreResult[];
  duration_ms: number;
}

/** At most this many images per call. */
export const MAX_SCORE_IMAGES = 2000;

export interface DeploymentScorer {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * Scores images with a registered version (by number). Each image succeeds or fails on its own.
   * @throws AppError MODEL_NOT_FOUND / NOT_FOUND for an unknown version; UNPROCESSABLE when it cannot
   *   load; INVALID_INPUT for an empty or too long list, or bytes and hashes mixed.
   */
  score(name: string, version: number | string, images: ScoreImage[], ctx?: CallContext, options?: ScoreOptions): Promise<ScoreReport>;
}

/** Key under which an in-process deployment offers its scorer (LocalServices). */
export const DEPLOYMENT_SCORER_LOCAL_KEY = 'deployment.scorer';

/** The deployment's scorer over HTTP (POST /models/score, an internal route: service token). */
export class HttpDeploymentScorer implements DeploymentScorer {
  readonly #http: ServiceHttpClient;

  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    // Hundreds of images through a fresh session on a busy CPU: allow minutes.
    this.#http = new ServiceHttpClient(baseUrl, { service: 'deployment', timeoutMs: opts.timeoutMs ?? 600_000, transport: opts.transport });
  }

  get target(): string {
    return this.#http.baseUrl;
  }

  score(name: string, version: number | string, images: ScoreImage[], ctx: CallContext = {}, options: ScoreOptions = {}): Promise<ScoreReport> {
    const headers = { authorization: ctx.authorization, 'x-request-id': ctx.requestId };
    const hashes = images.flatMap((i) => ('sha256' in i ? [i.sha256] : []));
    if (hashes.length > 0 && hashes.length < images.length) throw new AppError('INVALID_INPUT', 'score either uploaded images or stored hashes, not both in one call');
    if (hashes.length === images.length) {
      return this.#http.call<ScoreReport>('POST', '/models/score', { body: { name, version: String(version), hashes, ...(options.cam ? { cam: true } : {}), ...(options.reference ? { reference: true } : {}) }, headers, idempotent: true });
    }
    const form = new FormData();
    form.append('name', name);
    form.append('version', String(version));
    if (options.cam) form.append('cam', 'true');
    if (options.reference) form.append('reference', 'true');
    images.forEach((img, i) => {
      const bytes = 'bytes' in img ? img.bytes : new Uint8Array();
      form.append('file', new Blob([Uint8Array.from(bytes)], { type: 'application/octet-stream' }), 'bytes' in img && img.filename ? img.filename : `image-${i}`);
    });
    return this.#http.call<ScoreReport>('POST', '/models/score', { form, headers, idempotent: true });
  }
}

/** The scorer for this platform: the in-process deployment when one runs here, else HTTP. */
export function deploymentScorer(platform: Platform): DeploymentScorer {
  return preferLocal(platform.local, DEPLOYMENT_SCORER_LOCAL_KEY, new HttpDeploymentScorer(platform.config.serviceUrls.deployment, { transport: platform.transport }));
}
