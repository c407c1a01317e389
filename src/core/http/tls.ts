import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions, Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { TlsSettings } from '../config/index.js';
import { AppError } from '../errors.js';

/** Paths a request may reach without a client certificate under mTLS (liveness and readiness probes). */
export const CLIENT_CERT_EXEMPT = new Set(['/health', '/ready']);

/** The server's certificate, key and (for mTLS) CA, read from the configured files now. */
export function readServerContext(tls: TlsSettings): SecureContextOptions {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
  };
}

/**
 * Options for Fastify's `https`: the certificate and key, and with a CA the request for a client
 * certificate. Unverified or missing client certificates are not dropped in the handshake but
 * refused per request (`requireClientCertificate`), so liveness probes still answer and every
 * refusal is the JSON error envelope.
 */
export function httpsServerOptions(tls: TlsSettings, opts: { clientCertificates: boolean }): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean; minVersion: 'TLSv1.2' } {
  const askForClientCert = opts.clientCertificates && tls.caFile !== '';
  return { ...readServerContext(tls), requestCert: askForClientCert, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/**
 * Calls `onChange` (debounced) when the content of any of the files changes. Watches the folders,
 * not the files, so a replaced file (rename over it, or a Kubernetes secret's `..data` symlink
 * swap) is seen too. Returns a function that stops watching.
 */
export function watchFiles(files: readonly string[], onChange: () => void, debounceMs = 100): () => void {
  const wanted = files.filter(Boolean);
  const digest = (): string => {
    const h = createHash('sha256');
    for (const f of wanted) {
      try {
        h.update(readFileSync(f));
      } catch {
        h.update(`missing:${f}`);
      }
    }
    return h.digest('hex');
  };
  let last = digest();
  let timer: NodeJS.Timeout | null = null;
  const watchers: FSWatcher[] = [];
  const check = () => {
    timer = null;
    const now = digest();
    if (now === last) return;
    last = now;
    onChange();
  };
  for (const dir of new Set(wanted.map((f) => path.dirname(f)))) {
    try {
      const w = watch(dir, () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(check, debounceMs);
        timer.unref();
      });
      w.unref();
      watchers.push(w);
    } catch {
      // A folder that cannot be watched: the files are still read at start.
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

/**
 * Reloads a listening HTTPS server's certificate, key and CA when their files change: new
 * connections get the new certificate, open ones keep theirs. A half-written or mismatched pair
 * is logged and the previous certificate stays in use.
 */
export function reloadOnChange(server: TlsServer, tls: TlsSettings, logger: Logger): () => void {
  return watchFiles([tls.certFile, tls.keyFile, tls.caFile], () => {
    try {
      server.setSecureContext(readServerContext(tls));
      logger.info({ cert: tls.certFile }, 'TLS certificate reloaded');
    } catch (err) {
      logger.error({ err, cert: tls.certFile }, 'TLS certificate change not applied (unreadable or key does not match); keeping the previous one');
    }
  });
}

/** The subject CN of the verified client certificate on this request's connection, or null. */
export function verifiedClientName(socket: unknown): string | null {
  const s = socket as Partial<TLSSocket> | null;
  if (!s || s.encrypted !== true || !s.authorized || typeof s.getPeerCertificate !== 'function') return null;
  const cn = s.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn ? cn : Array.isArray(cn) ? String(cn[0]) : null;
}

/** Why the connection's client certificate is not acceptable, or null when it is (or the connection is not TLS). */
export function clientCertificateProblem(socket: unknown): string | null {
  const s = socket as Partial<TLSSocket> | null;
  if (!s || s.encrypted !== true) return null;
  if (s.authorized) return null;
  const peer = typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : null;
  const presented = peer && Object.keys(peer).length > 0;
  return presented ? `the client certificate is not trusted (${String(s.authorizationError ?? 'unverified')})` : 'no client certificate was presented';
}

/**
 * mTLS on a service app: every request but the probes needs a client certificate signed by the
 * platform CA — 401 with the reason otherwise. Runs before the API-key check.
 */
export function requireClientCertificates(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    const url = req.url;
    const q = url.indexOf('?');
    if (CLIENT_CERT_EXEMPT.has(q === -1 ? url : url.slice(0, q))) return;
    const problem = clientCertificateProblem(req.raw.socket);
    if (problem) throw new AppError('UNAUTHENTICATED', `this service requires a client certificate signed by the platform CA (mTLS): ${problem}`);
  });
}
