import type { Platform } from '../../core/platform.js';
import { AppError } from '../../core/errors.js';
import type { PreprocessSpecInput } from '../../core/imaging/index.js';
import { modelRegistryClient, variantServability, type ModelRegistryClient } from '../../model-registry/client/index.js';
import type { ModelSource, ResolvedModelVersion } from './model-source.js';

/** The file the registry keeps a version's ONNX graph under. */
const MODEL_FILE = 'model.onnx';

const SPEC_KEYS = ['size', 'mode', 'pad', 'format'] as const;

/** The spec fields of a recorded preprocessing block (`{ size, mode, pad, format, hash }`), or null. */
export function specOf(recorded: unknown): PreprocessSpecInput | null {
  if (!recorded || typeof recorded !== 'object' || Array.isArray(recorded)) return null;
  const r = recorded as Record<string, unknown>;
  const spec = Object.fromEntries(SPEC_KEYS.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
  return Object.keys(spec).length > 0 ? (spec as PreprocessSpecInput) : null;
}

/**
 * The serving temperature of a site-calibrated version (metadata.site_calibration.temperature),
 * or null. The trainer's own `temperature` is not this one: it is already inside the ONNX graph.
 */
export function siteTemperature(metadata: unknown): number | null {
  const cal = metadata && typeof metadata === 'object' ? (metadata as Record<string, unknown>).site_calibration : null;
  const t = cal && typeof cal === 'object' ? (cal as Record<string, unknown>).temperature : null;
  return typeof t === 'number' && Number.isFinite(t) && t > 0 ? t : null;
}

/**
 * The model registry, through its client (in-process in embedded mode, HTTP otherwise), as the
 * deployment service's {@link ModelSource}: resolves versions and aliases, reads the ONNX file and
 * the other files registered with a version.
 */
export class RegistryModelSource implements ModelSource {
  readonly #registry: ModelRegistryClient;

  constructor(registry: ModelRegistryClient) {
    this.#registry = registry;
  }

  async resolve(name: string, versionOrAlias: string): Promise<ResolvedModelVersion> {
    const v = await this.#registry.getVersion(name, versionOrAlias);
    if (!v.onnx) throw new AppError('UNPROCESSABLE', `model '${name}' version ${v.version} has no ONNX artifact to serve`);
    const variant = variantServability(v.metadata);
    if (!variant.servable) throw new AppError('NOT_SERVABLE', `model '${name}' version ${v.version} may not serve: ${variant.message}`);
    const isNumber = /^v?\d+$/i.test(versionOrAlias.trim()) || versionOrAlias.trim().toLowerCase() === 'latest';
    const artifact = (path: string) => this.#registry.artifact(v.name, v.version, path);
    return {
      name: v.name,
      version: String(v.version),
      alias: isNumber ? null : versionOrAlias.trim(),
      preprocessing: specOf(v.preprocessing),
      threshold: v.threshold,
      temperature: siteTemperature(v.metadata),
      uri: `models:/${v.name}/${v.version}`,
      fetch: async () => {
        const bytes = await artifact(MODEL_FILE);
        if (!bytes) throw new AppError('UNPROCESSABLE', `model '${name}' version ${v.version} has no ${MODEL_FILE} to serve`);
        return bytes;
      },
      fetchArtifact: artifact,
    };
  }
}

/** The registry source for this platform (its registry client, chosen in one place). */
export function openRegistrySource(platform: Platform): ModelSource {
  return new RegistryModelSource(modelRegistryClient(platform));
}
