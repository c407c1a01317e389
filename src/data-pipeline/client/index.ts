import { preferLocal } from '../../core/local-services.js';
import type { Platform } from '../../core/platform.js';
import { HttpDataPipelineClient } from './http-client.js';
import { DATA_PIPELINE_LOCAL_KEY, type DataPipelineClient } from './types.js';

export * from './types.js';
export { HttpDataPipelineClient } from './http-client.js';

/**
 * The data pipeline client for this platform, decided per call: the in-process data pipeline when
 * one runs in this process (embedded mode), else HTTP to XRAY_SERVICE_URLS' data-pipeline URL.
 */
export function dataPipelineClient(platform: Platform): DataPipelineClient {
  return preferLocal(platform.local, DATA_PIPELINE_LOCAL_KEY, new HttpDataPipelineClient(platform.config.serviceUrls['data-pipeline'], { transport: platform.transport }));
}
