import { z } from 'zod';

/**
 * Answers of the gateway's /auth/* routes (src/gateway/oidc.ts). Import-free besides zod, so the
 * web UI takes its types from here (web/src/api/auth.ts) instead of restating them.
 */
export const authConfigSchema = z.object({
  /** API keys or a session are required (XRAY_AUTH). */
  auth: z.boolean(),
  /** Sign-in with the hospital's identity provider is configured (XRAY_OIDC_ISSUER). */
  oidc: z.boolean(),
});

export const sessionUserSchema = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string().nullable(),
  role: z.enum(['viewer', 'clinician', 'ml-engineer', 'admin']),
  groups: z.array(z.string()),
});

/** GET /auth/me and POST /auth/refresh. */
export const sessionSchema = z.object({ user: sessionUserSchema, expires_at: z.string() });

/** POST /auth/logout: where to send the browser to end the identity provider's session too (null: the provider has no end-session endpoint). */
export const logoutSchema = z.object({ signed_out: z.literal(true), logout_url: z.string().nullable() });

export type AuthConfig = z.infer<typeof authConfigSchema>;
export type SessionInfo = z.infer<typeof sessionSchema>;
export type LogoutResult = z.infer<typeof logoutSchema>;
