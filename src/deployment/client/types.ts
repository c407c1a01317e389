/** What the deployment service's client offers other services (import-free: types only). */

export type CanaryCheckName = 'resolve' | 'load' | 'contract' | 'warm_up' | 'reference';

export interface CanaryCheck {
  name: CanaryCheckName;
  passed: boolean;
  message: string;
}

/**
 * A canary load: the version loaded into a session of its own (never served), checked against
 * the serving contract and its recorded reference outputs, then released.
 */
export interface CanaryReport {
  name: string;
  version: string;
  servable: boolean;
  /** One sentence: why it will serve, or the first check that failed. */
  message: string;
  input_size: number | null;
  preprocessing: { size: number; hash: string } | null;
  /** The comparison with the outputs recorded at training time; null when none were recorded. */
  reference: { n: number; max_abs_diff: number; tolerance: number } | null;
  checks: CanaryCheck[];
  duration_ms: number;
}

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
