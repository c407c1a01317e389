import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { mlflowMetric, mlflowRun } from './wire.js';
import { AppError, type ErrorCode } from '../../../core/errors.js';
import { toErrorBody } from '../../../core/http/index.js';
import type { ModelVersionRecord, RegisteredModelRecord } from '../../store/registry-store.js';
import type { Experiment, Metric, Run } from '../../store/tracking-store.js';
import type { Actor } from '../../service/registry-service.js';
import type { RequestContext } from '../../service/tracking-service.js';

/**
 * MLflow answers errors as `{ "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…" }`, not with
 * our envelope; MLflow clients parse that body, so routes under /api/2.0/mlflow* answer it.
 */
const MLFLOW_ERRORS: Partial<Record<ErrorCode | string, [string, number]>> = {
  INVALID_INPUT: ['INVALID_PARAMETER_VALUE', 400],
  UNPROCESSABLE: ['INVALID_PARAMETER_VALUE', 400],
  BAD_REQUEST: ['BAD_REQUEST', 400],
  PAYLOAD_TOO_LARGE: ['INVALID_PARAMETER_VALUE', 400],
  UNSUPPORTED_MEDIA_TYPE: ['INVALID_PARAMETER_VALUE', 400],
  NOT_FOUND: ['RESOURCE_DOES_NOT_EXIST', 404],
  MODEL_NOT_FOUND: ['RESOURCE_DOES_NOT_EXIST', 404],
  ROUTE_NOT_FOUND: ['ENDPOINT_NOT_FOUND', 404],
  ALREADY_EXISTS: ['RESOURCE_ALREADY_EXISTS', 400],
  CONFLICT: ['INVALID_STATE', 400],
  GATE_FAILED: ['INVALID_STATE', 400],
  UNAUTHENTICATED: ['UNAUTHENTICATED', 401],
  FORBIDDEN: ['PERMISSION_DENIED', 403],
  RATE_LIMITED: ['REQUEST_LIMIT_EXCEEDED', 429],
  NOT_IMPLEMENTED: ['NOT_IMPLEMENTED', 501],
  SERVICE_UNAVAILABLE: ['TEMPORARILY_UNAVAILABLE', 503],
};

export function toMlflowError(err: unknown): { status: number; body: { error_code: string; message: string } } {
  const { status, body } = toErrorBody(err);
  const mapped = MLFLOW_ERRORS[body.error.code];
  if (mapped) return { status: mapped[1], body: { error_code: mapped[0], message: body.error.message } };
  return { status: status >= 500 ? status : 400, body: { error_code: status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST', message: body.error.message } };
}

/** Scoped error + not-found handlers answering MLflow's error format. */
export function installMlflowErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toMlflowError(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: body.error_code, msg: body.message }, 'request rejected');
    void reply.status(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error_code: 'ENDPOINT_NOT_FOUND', message: `No API endpoint for ${req.method} ${req.url.split('?')[0]}` });
  });
}

export const mlflowError = z.object({ error_code: z.string(), message: z.string() });
export const mlflowErrors = { 400: mlflowError, 401: mlflowError, 403: mlflowError, 404: mlflowError, 500: mlflowError } as const;

/** Parses a request against a zod schema, failing like MLflow (INVALID_PARAMETER_VALUE). */
export function parseRequest<T extends z.ZodType>(schema: T, data: unknown): z.output<T> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'request';
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  throw new AppError(
    'INVALID_INPUT',
    missing ? `Missing value for required parameter '${field}'. See the API docs for more information about request parameters.` : `Invalid value for parameter '${field}' supplied: ${issue.message}`,
  );
}

/** GET and DELETE requests may carry their fields in the query string or a JSON body (MLflow's Python client uses the body). */
export function requestFields(req: FastifyRequest): Record<string, unknown> {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const body = req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body) ? (req.body as Record<string, unknown>) : {};
  return { ...query, ...body };
}

export function actorOf(req: FastifyRequest): Actor {
  return { name: req.principal.name, role: req.principal.role };
}

export function contextOf(req: FastifyRequest): RequestContext {
  return { actor: req.principal.name, requestId: req.id };
}

// ── request field types ─────────────────────────────────────────────────────────────────────

/** int64 fields arrive as JSON numbers or, from protobuf's JSON printer, as decimal strings. */
export const int64 = z.union([z.number().int(), z.string().regex(/^-?\d+$/).transform(Number)]);

/** A double that may be 'NaN' / 'Infinity' / '-Infinity' (protobuf JSON) or a numeric string. */
export const double = z.union([
  z.number(),
  z.string().transform((s, ctx) => {
    const t = s.trim();
    if (t === 'NaN') return NaN;
    if (t === 'Infinity' || t === '+Infinity') return Infinity;
    if (t === '-Infinity') return -Infinity;
    const n = Number(t);
    if (t === '' || Number.isNaN(n)) {
      ctx.addIssue({ code: 'custom', message: `Got invalid value ${s}; please specify value as a valid double (64-bit floating point)` });
      return z.NEVER;
    }
    return n;
  }),
]);

/** A repeated query parameter: one value or several. */
export const repeated = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

export const keyValue = z.object({ key: z.string(), value: z.union([z.string(), z.number(), z.boolean()]).transform(String) });
export const maxResults = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).optional();
export const viewType = z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional();

// ── response shapes (MLflow's protobuf JSON) ────────────────────────────────────────────────

const kv = z.object({ key: z.string(), value: z.string() });
export const mlflowExperiment = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string(),
  lifecycle_stage: z.string(),
  last_update_time: z.number(),
  creation_time: z.number(),
  tags: z.array(kv),
});
export { mlflowMetric, mlflowRun, mlflowRunInfo } from './wire.js';
export const mlflowModelVersion = z.object({
  name: z.string(),
  version: z.string(),
  creation_timestamp: z.number(),
  last_updated_timestamp: z.number(),
  user_id: z.string(),
  current_stage: z.string(),
  description: z.string(),
  source: z.string(),
  run_id: z.string().optional(),
  run_link: z.string().optional(),
  status: z.string(),
  status_message: z.string().optional(),
  tags: z.array(kv),
  aliases: z.array(z.string()),
});
export const mlflowRegisteredModel = z.object({
  name: z.string(),
  creation_timestamp: z.number(),
  last_updated_timestamp: z.number(),
  user_id: z.string(),
  description: z.string(),
  latest_versions: z.array(mlflowModelVersion),
  tags: z.array(kv),
  aliases: z.array(z.object({ alias: z.string(), version: z.string() })),
});
export const empty = z.object({});

export function toMlflowMetricValue(value: number): number | 'NaN' | 'Infinity' | '-Infinity' {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

export function toMlflowMetric(m: Metric): z.infer<typeof mlflowMetric> {
  return { key: m.key, value: toMlflowMetricValue(m.value), timestamp: m.timestamp, step: m.step };
}

export function toMlflowRun(run: Run): z.infer<typeof mlflowRun> {
  return { info: run.info, data: { metrics: run.data.metrics.map(toMlflowMetric), params: run.data.params, tags: run.data.tags }, inputs: run.inputs };
}

export function toMlflowExperiment(e: Experiment): z.infer<typeof mlflowExperiment> {
  return e;
}

export function toMlflowModelVersion(v: ModelVersionRecord): z.infer<typeof mlflowModelVersion> {
  return {
    name: v.name,
    version: String(v.version),
    creation_timestamp: v.creation_timestamp,
    last_updated_timestamp: v.last_updated_timestamp,
    user_id: v.user_id,
    current_stage: v.current_stage,
    description: v.description,
    source: v.source,
    ...(v.run_id ? { run_id: v.run_id } : {}),
    ...(v.run_link ? { run_link: v.run_link } : {}),
    status: v.status,
    ...(v.status_message ? { status_message: v.status_message } : {}),
    tags: v.tags,
    aliases: v.aliases,
  };
}

export function toMlflowRegisteredModel(m: RegisteredModelRecord): z.infer<typeof mlflowRegisteredModel> {
  return {
    name: m.name,
    creation_timestamp: m.creation_timestamp,
    last_updated_timestamp: m.last_updated_timestamp,
    user_id: m.user_id,
    description: m.description,
    latest_versions: m.latest_versions.map(toMlflowModelVersion),
    tags: m.tags,
    aliases: m.aliases.map((a) => ({ alias: a.alias, version: String(a.version) })),
  };
}

/** Adds `next_page_token` only when there is a next page (MLflow omits it on the last page). */
export function withToken<T extends object>(body: T, token: string | undefined): T & { next_page_token?: string } {
  return token ? { ...body, next_page_token: token } : body;
}

export function versionNumber(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new AppError('INVALID_INPUT', `Parameter 'version' must be an integer, got '${String(v)}'.`);
  return n;
}
