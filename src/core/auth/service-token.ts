import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

/** Header a service-to-service call carries its service token in (apart from the caller's own credential). */
export const SERVICE_TOKEN_HEADER = 'x-service-token';
const ISSUER = 'xray-service';
/** A token lives this long; a caller signs a fresh one well before. */
export const SERVICE_TOKEN_TTL_S = 60;

export interface ServiceTokenClaims {
  /** The calling service (informational: every holder of the shared secret may sign). */
  caller: string;
  /** The service the token is for; another service refuses it. */
  audience: string;
}

/** Signs a short-lived HS256 service token for one target service. */
export async function signServiceToken(secret: Uint8Array, claims: ServiceTokenClaims, ttlSeconds = SERVICE_TOKEN_TTL_S): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(claims.caller)
    .setAudience(claims.audience)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .setJti(randomUUID())
    .sign(secret);
}

/**
 * Verifies a service token for `audience`: signature (HS256 only), issuer, audience, expiry (30 s
 * clock tolerance). Returns the caller's name, or the reason it is refused.
 */
export async function verifyServiceToken(secret: Uint8Array, token: string, audience: string): Promise<{ caller: string } | { problem: string }> {
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: ISSUER, audience, clockTolerance: 30, requiredClaims: ['exp', 'iat', 'sub'] });
    return { caller: String(payload.sub) };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { problem: 'the service token has expired' };
    if (err instanceof joseErrors.JWTClaimValidationFailed) return { problem: `the service token is not for this service (${err.claim})` };
    return { problem: 'the service token is not valid (signature or format)' };
  }
}

/** Caches one token per audience and re-signs it when half its lifetime is gone. */
export class ServiceTokenSigner {
  readonly #secret: Uint8Array;
  readonly #caller: string;
  readonly #cache = new Map<string, { token: string; renewAt: number }>();

  constructor(secret: Uint8Array, caller: string) {
    this.#secret = secret;
    this.#caller = caller;
  }

  async token(audience: string): Promise<string> {
    const hit = this.#cache.get(audience);
    if (hit && hit.renewAt > Date.now()) return hit.token;
    const token = await signServiceToken(this.#secret, { caller: this.#caller, audience });
    this.#cache.set(audience, { token, renewAt: Date.now() + (SERVICE_TOKEN_TTL_S * 1000) / 2 });
    return token;
  }
}
