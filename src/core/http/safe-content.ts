import type { FastifyReply } from 'fastify';

/** Content types stored bytes may be served with; everything else goes out as an attachment of octet-stream. */
const ALLOWED = new Set(['image/png', 'image/jpeg', 'application/json', 'application/dicom', 'application/octet-stream']);

/** Active content a browser would render or run on our origin. */
const ACTIVE = /html|xml|svg|javascript|ecmascript|css/i;

/** Maps a declared content type to one from the allow-list (ONNX and anything unknown → application/octet-stream). */
export function safeContentType(declared: string | null | undefined): string {
  const base = String(declared ?? '').split(';')[0]!.trim().toLowerCase();
  return ALLOWED.has(base) ? base : 'application/octet-stream';
}

/** True when a response content type is active content (HTML, SVG, XML, script, CSS). */
export function isActiveContentType(type: string | undefined | null): boolean {
  return typeof type === 'string' && ACTIVE.test(type);
}

/**
 * Headers for stored bytes (artifacts, images): an allow-listed type, nosniff, a sandbox CSP and
 * `Content-Disposition: attachment`, so nothing uploaded can run as a page on the UI's origin
 * (an <img> still renders allowed images; a navigation downloads).
 */
export function storedBytesHeaders(reply: FastifyReply, declared: string | null | undefined, filename?: string): FastifyReply {
  const safeName = (filename ?? 'download').split('/').pop()!.replace(/[^A-Za-z0-9._-]/g, '_') || 'download';
  return reply
    .type(safeContentType(declared))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('content-disposition', `attachment; filename="${safeName}"`);
}
