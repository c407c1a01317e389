import type { Platform } from '../../core/platform.js';
import { HttpDeploymentClient } from './http-client.js';
import { DEPLOYMENT_LOCAL_KEY, type CallContext, type CanaryReport, type DeploymentClient } from './types.js';

export * from './types.js';
export { HttpDeploymentClient } from './http-client.js';

/**
 * The deployment client for this platform, decided per call: the in-process deployment when one
 * runs in this process (embedded mode), else HTTP to XRAY_SERVICE_URLS' deployment URL.
 */
export function deploymentClient(platform: Platform): DeploymentClient {
  const http = new HttpDeploymentClient(platform.config.serviceUrls.deployment, { transport: platform.transport });
  const pick = (): DeploymentClient => platform.local.get<DeploymentClient>(DEPLOYMENT_LOCAL_KEY) ?? http;
  return {
    get target() {
      return pick().target;
    },
    canary(name: string, version: number | string, ctx?: CallContext): Promise<CanaryReport> {
      return pick().canary(name, version, ctx);
    },
  };
}
