import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Logger } from 'pino';
import type { TlsSettings } from '../config/index.js';
import { SERVICE_TOKEN_HEADER, ServiceTokenSigner, verifyServiceToken } from '../auth/service-token.js';
import { watchFiles } from './tls.js';

export interface ServiceTransportOptions {
  /** The platform's TLS files: trust XRAY_TLS_CA_FILE, present the client certificate. null = plain HTTP. */
  tls: TlsSettings | null;
  /** Secret that signs and verifies service tokens; null = this transport carries none (the gateway). */
  tokenSecret: Uint8Array | null;
  /** The calling service, written into its tokens. */
  caller?: string;
  logger?: Logger;
}

/**
 * How one service reaches another: HTTPS with the platform's CA and client certificate (mTLS;
 * both reloaded when their files change), and a short-lived signed service token per call. The
 * HTTP service clients and the gateway proxy go through it; the receiving side checks with
 * `verify`.
 */
export class ServiceTransport {
  readonly #tls: TlsSettings | null;
  readonly #secret: Uint8Array | null;
  readonly #signer: ServiceTokenSigner | null;
  readonly #logger?: Logger;
  #agent: Agent | null = null;
  #stopWatching: (() => void) | null = null;

  constructor(opts: ServiceTransportOptions) {
    this.#tls = opts.tls;
    this.#secret = opts.tokenSecret;
    this.#signer = opts.tokenSecret ? new ServiceTokenSigner(opts.tokenSecret, opts.caller ?? 'xray') : null;
    this.#logger = opts.logger;
    if (this.#tls) {
      this.#agent = this.#newAgent();
      const tls = this.#tls;
      this.#stopWatching = watchFiles([tls.caFile, tls.clientCertFile, tls.clientKeyFile], () => {
        try {
          const old = this.#agent;
          this.#agent = this.#newAgent();
          void old?.close().catch(() => {});
          this.#logger?.info({ cert: tls.clientCertFile }, 'TLS client certificate reloaded');
        } catch (err) {
          this.#logger?.error({ err }, 'TLS client certificate change not applied; keeping the previous one');
        }
      });
    }
  }

  #newAgent(): Agent {
    const tls = this.#tls!;
    return new Agent({
      connect: {
        ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
        cert: readFileSync(tls.clientCertFile),
        key: readFileSync(tls.clientKeyFile),
        minVersion: 'TLSv1.2',
      },
    });
  }

  /** true when calls carry service tokens. */
  get signsTokens(): boolean {
    return this.#signer !== null;
  }

  /** fetch through this transport (the platform CA and client certificate when TLS is configured). */
  fetch(url: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<Response> {
    if (!this.#agent) return fetch(url, init);
    return undiciFetch(url, { ...(init as object), dispatcher: this.#agent } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
  }

  /** The headers that identify this service to `audience` (a fresh or cached service token). */
  async identityHeaders(audience: string): Promise<Record<string, string>> {
    return this.#signer ? { [SERVICE_TOKEN_HEADER]: await this.#signer.token(audience) } : {};
  }

  /** Checks a presented service token for `audience`. */
  async verify(token: string, audience: string): Promise<{ caller: string } | { problem: string }> {
    if (!this.#secret) return { problem: 'service tokens are not configured here' };
    return verifyServiceToken(this.#secret, token, audience);
  }

  async close(): Promise<void> {
    this.#stopWatching?.();
    await this.#agent?.close().catch(() => {});
    this.#agent = null;
  }
}
