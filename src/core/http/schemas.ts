import { z } from 'zod';

/** The one error envelope every endpoint answers with; use it in route response schemas. */
export const errorEnvelope = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

/** Standard error responses to spread into a route's `response` schema. */
export const errorResponses = {
  400: errorEnvelope,
  401: errorEnvelope,
  403: errorEnvelope,
  404: errorEnvelope,
  409: errorEnvelope,
  413: errorEnvelope,
  415: errorEnvelope,
  422: errorEnvelope,
  500: errorEnvelope,
  503: errorEnvelope,
} as const;

/** Paging query parameters: `page_size`, `page_token`. */
export const pageQuery = z.object({
  page_size: z.coerce.number().int().min(1).max(1000).default(100),
  page_token: z.string().max(512).optional(),
});
