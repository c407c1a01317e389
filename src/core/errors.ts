/**
 * Coded application errors. Stores and services throw these; one Fastify error
 * handler (src/core/http/error-handler.ts) maps them to `{ error: { code, message } }`.
 */
export const ERROR_STATUS = {
  INVALID_INPUT: 400,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  GATE_FAILED: 422,
  NOT_SERVABLE: 422,
  TOO_FEW_CASES: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  NOT_IMPLEMENTED: 501,
  SERVICE_UNAVAILABLE: 503,
  MODEL_NOT_READY: 503,
  QUEUE_FULL: 503,
  TRAINER_RUNTIME_MISSING: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }
}

export const notFound = (what: string, id: string): AppError =>
  new AppError('NOT_FOUND', `${what} '${id}' does not exist`);

export const invalidInput = (message: string, details?: unknown): AppError =>
  new AppError('INVALID_INPUT', message, details);

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
