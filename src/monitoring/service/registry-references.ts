import type { Platform } from '../../core/platform.js';
import { isAppError } from '../../core/errors.js';
import { modelRegistryClient } from '../../model-registry/client/index.js';

/** The artifact a registered model version may ship with its reference statistics. */
export const REFERENCE_ARTIFACT = 'reference.json';

/** Reads a model version's `reference.json` document from the registry; null when it has none. */
export type RegistryReferenceLoader = (model: string, version: string) => Promise<unknown | null>;

/**
 * Reads the artifact through the model registry's client (in-process or HTTP). Versions without
 * the artifact give null; an unknown model or version is null too (the reference is optional).
 */
export function registryReferenceLoader(platform: Platform): RegistryReferenceLoader {
  const registry = modelRegistryClient(platform);
  return async (model, version) => {
    const n = Number(version);
    if (!Number.isInteger(n) || n < 1) return null;
    try {
      const data = await registry.artifact(model, n, REFERENCE_ARTIFACT);
      return data ? (JSON.parse(data.toString('utf8')) as unknown) : null;
    } catch (err) {
      if (isAppError(err) && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  };
}

/** Model name and version from a registry event payload (registered / stage changed). */
export function modelFromEvent(payload: unknown): { model: string; version: string } | null {
  const p = (payload ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : null);
  const model = str(p.name) ?? str(p.model) ?? str(p.modelName) ?? str(p.model_name);
  const version = str(p.version) ?? str(p.modelVersion) ?? str(p.model_version);
  return model && version ? { model, version } : null;
}
