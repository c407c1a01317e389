/** What the deployment service's client offers other services (import-free: types only). */
import type { z } from 'zod';
import type { canaryReportSchema } from '../routes/schemas.js';

/**
 * A canary load: the version loaded into a session of its own (never served), checked against
 * the serving contract and its recorded reference outputs, then released. The type is the route's
 * response schema, so the in-process and HTTP clients return the same shape by construction.
 */
export type CanaryReport = z.infer<typeof canaryReportSchema>;
export type CanaryCheck = CanaryReport['checks'][number];
export type CanaryCheckName = CanaryCheck['name'];

/** How a call is made on behalf of someone: their credential travels with it (HTTP). */
export interface CallContext {
  authorization?: string;
  requestId?: string;
  actor?: string;
}

/** The deployment service, as other services see it. */
export interface DeploymentClient {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * Canary-loads a registered version without serving it.
   * @throws AppError MODEL_NOT_FOUND for an unknown model/version; SERVICE_UNAVAILABLE when the
   *   deployment cannot be reached (details.unreachable) or has no registry.
   */
  canary(name: string, version: number | string, ctx?: CallContext): Promise<CanaryReport>;
}

/** Key under which an in-process deployment offers its client (LocalServices). */
export const DEPLOYMENT_LOCAL_KEY = 'deployment.client';
