import type { Platform } from '../../core/platform.js';
import { AppError, isAppError } from '../../core/errors.js';
import type { PreprocessSpecInput } from '../../core/imaging/index.js';
import { ModelRegistryService } from '../../model-registry/service/registry-service.js';
import type { ModelSource, ResolvedModelVersion } from './model-source.js';

const SPEC_KEYS = ['size', 'mode', 'pad', 'format'] as const;

/** The spec fields of a recorded preprocessing block (`{ size, mode, pad, format, hash }`), or null. */
function specOf(recorded: unknown): PreprocessSpecInput | null {
  if (!recorded || typeof recorded !== 'object' || Array.isArray(recorded)) return null;
  const r = recorded as Record<string, unknown>;
  const spec = Object.fromEntries(SPEC_KEYS.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
  return Object.keys(spec).length > 0 ? (spec as PreprocessSpecInput) : null;
}

/**
 * The model registry (same database and object store, in-process) as the deployment service's
 * {@link ModelSource}: resolves versions and aliases, reads the ONNX artifact's bytes.
 */
export class RegistryModelSource implements ModelSource {
  readonly #registry: ModelRegistryService;
  readonly #platform: Platform;

  constructor(platform: Platform, registry = new ModelRegistryService(platform)) {
    this.#platform = platform;
    this.#registry = registry;
  }

  async resolve(name: string, versionOrAlias: string): Promise<ResolvedModelVersion> {
    const v = await this.#registry.resolve(name, versionOrAlias);
    const onnx = v.onnx;
    if (!onnx) throw new AppError('UNPROCESSABLE', `model '${name}' version ${v.version} has no ONNX artifact to serve`);
    const isNumber = /^v?\d+$/i.test(versionOrAlias.trim()) || versionOrAlias.trim().toLowerCase() === 'latest';
    return {
      name: v.name,
      version: String(v.version),
      alias: isNumber ? null : versionOrAlias.trim(),
      preprocessing: specOf(v.preprocessing),
      threshold: v.threshold,
      uri: `models:/${v.name}/${v.version}`,
      fetch: () => this.#platform.objects.get(onnx.key),
      fetchArtifact: async (artifactPath: string) => {
        try {
          return (await this.#registry.getArtifact(v.name, v.version, artifactPath)).data;
        } catch (err) {
          if (isAppError(err) && err.code === 'NOT_FOUND') return null;
          throw err;
        }
      },
    };
  }
}

/** The registry source for this platform. */
export async function openRegistrySource(platform: Platform): Promise<ModelSource | null> {
  return new RegistryModelSource(platform);
}
