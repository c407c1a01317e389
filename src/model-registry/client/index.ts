import { preferLocal } from '../../core/local-services.js';
import type { Platform } from '../../core/platform.js';
import { HttpModelRegistryClient } from './http-client.js';
import { MODEL_REGISTRY_LOCAL_KEY, type ModelRegistryClient } from './types.js';

export * from './types.js';
export * from './variant.js';
export { HttpModelRegistryClient } from './http-client.js';

/**
 * The model registry client for this platform, decided per call: the in-process registry when one
 * runs in this process (embedded mode), else HTTP to XRAY_SERVICE_URLS' model-registry URL.
 */
export function modelRegistryClient(platform: Platform): ModelRegistryClient {
  return preferLocal(platform.local, MODEL_REGISTRY_LOCAL_KEY, new HttpModelRegistryClient(platform.config.serviceUrls['model-registry'], { transport: platform.transport }));
}
