/**
 * Reading the platform's error envelope `{ error: { code, message, details } }` from a non-2xx
 * answer — one parser for the CLI and the web UI (import-free: the UI bundles it).
 */
export interface ErrorEnvelopeParts {
  code: string;
  message: string;
  details?: unknown;
}

/** The code, message and details a failed response carries; a body that is not the envelope keeps its text. */
export function readErrorEnvelope(status: number, statusText: string, text: string): ErrorEnvelopeParts {
  const fallback: ErrorEnvelopeParts = { code: `HTTP_${status}`, message: text.trim() || statusText || `request failed with status ${status}` };
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null;
    const e = body?.error;
    if (e && typeof e.message === 'string') {
      return { code: typeof e.code === 'string' ? e.code : fallback.code, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}) };
    }
  } catch {
    /* not JSON: keep the text */
  }
  return fallback;
}
