import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js';
import { isEngineUnavailable } from '../startup-retry.js';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'PAYLOAD_TOO_LARGE',
  FST_FILES_LIMIT: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_INPUT',
  FST_ERR_VALIDATION: 'INVALID_INPUT',
  FST_MULTIPART_INVALID_CONTENT_TYPE: 'INVALID_INPUT',
  FST_NO_FORM_DATA: 'INVALID_INPUT',
};

/** Body parse failures from busboy (@fastify/multipart) carry no code: unterminated body, missing boundary. */
const MULTIPART_PARSE = /^(Unexpected end of (form|file|multipart data)|Multipart: Boundary not found|Malformed part header|Part terminated early)/;

/** Maps any error to the envelope `{ error: { code, message } }`; hides 5xx details. */
export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof AppError) {
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.details !== undefined) body.error.details = err.details;
    return { status: err.status, body };
  }
  const fe = err as FastifyError & { validation?: unknown };
  if (hasZodFastifySchemaValidationErrors(fe)) {
    const issues = fe.validation.map((v) => ({ path: v.instancePath || '/', message: v.message }));
    const where = fe.validationContext ? `${fe.validationContext} ` : '';
    const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return { status: 400, body: { error: { code: 'INVALID_INPUT', message: `invalid ${where}${summary}`.trim(), details: issues } } };
  }
  if (fe?.code && FASTIFY_CODES[fe.code]) {
    const code = FASTIFY_CODES[fe.code]!;
    const message = fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? `malformed JSON body: ${fe.message}` : fe.message;
    return { status: ERROR_STATUS[code], body: { error: { code, message } } };
  }
  if (typeof fe?.message === 'string' && MULTIPART_PARSE.test(fe.message) && !(typeof fe.statusCode === 'number' && fe.statusCode >= 500 && fe.code)) {
    return { status: 400, body: { error: { code: 'INVALID_INPUT', message: `malformed multipart body: ${fe.message}` } } };
  }
  if (fe?.validation) {
    return { status: 400, body: { error: { code: 'INVALID_INPUT', message: fe.message } } };
  }
  const status = typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status < 500) {
    const code = (Object.entries(ERROR_STATUS).find(([, s]) => s === status)?.[0] ?? 'BAD_REQUEST') as ErrorCode;
    return { status, body: { error: { code, message: fe.message } } };
  }
  if (isEngineUnavailable(err)) {
    return { status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE', message: 'a storage engine this request needs (database, Redis) is unreachable right now; retry shortly' } } };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the service log for the request id' } } };
}

export function installErrorHandlers(app: FastifyInstance, options: { notFound?: boolean } = {}): void {
  app.setErrorHandler((err, req, reply) => {
    // A multipart body that ends before its closing boundary surfaces as a premature stream close: the client's fault.
    const truncatedUpload =
      (err as { code?: string } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE' && /^multipart\//i.test(String(req.headers['content-type'] ?? ''));
    const { status, body } = truncatedUpload
      ? { status: 400, body: { error: { code: 'INVALID_INPUT', message: 'malformed multipart body: it ended before the closing boundary' } } as ErrorBody }
      : toErrorBody(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: body.error.code, msg: body.error.message }, 'request rejected');
    if (isResponseSerializationError(err)) req.log.error({ err }, 'response did not match its schema');
    if ((status === 503 || status === 429) && err instanceof AppError && (err.details as { retryAfter?: number } | undefined)?.retryAfter) {
      reply.header('Retry-After', String((err.details as { retryAfter: number }).retryAfter));
    }
    else if (status === 503 && !(err instanceof AppError)) reply.header('Retry-After', '5');
    void reply.status(status).type('application/json').send(body);
  });
  if (options.notFound !== false) {
    app.setNotFoundHandler((req, reply) => {
      void reply.status(404).send(routeNotFound(req.method, req.url));
    });
  }
}

export function routeNotFound(method: string, url: string): ErrorBody {
  return { error: { code: 'ROUTE_NOT_FOUND', message: `no route ${method} ${url.split('?')[0]}` } };
}
