import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/**
 * A real OpenID Connect provider for the sign-in tests: the certified `oidc-provider` package on a
 * loopback port, with its development login and consent pages (any password is accepted; the
 * login name is the account). Authorization code + PKCE (required), refresh tokens, revocation,
 * RP-initiated logout. Claims: `groups` (scope groups), profile, email — in userinfo, as most
 * providers do for scope claims when an access token is issued.
 */
export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Counts of what the provider saw (token grants by type, revocations, end-session calls). */
  seen: { grants: Record<string, number>; revocations: number; endSessions: number };
  close(): Promise<void>;
}

/** Accounts: login name → claims. */
export const IDP_USERS: Record<string, { name: string; email: string; groups: string[] }> = {
  alice: { name: 'Alice Radiologist', email: 'alice@hospital.test', groups: ['radiologists', 'staff'] },
  bob: { name: 'Bob Engineer', email: 'bob@hospital.test', groups: ['ml'] },
  visitor: { name: 'Vic Visitor', email: 'vic@hospital.test', groups: ['visitors'] },
};

export async function startTestIdp(opts: { redirectUri: string; postLogoutRedirectUri: string; refreshTokenTtlS?: number }): Promise<TestIdp> {
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'xray-mlops';
  const clientSecret = 'test-client-secret-0123456789abcdef';
  const seen = { grants: {} as Record<string, number>, revocations: 0, endSessions: 0 };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [opts.redirectUri],
        post_logout_redirect_uris: [opts.postLogoutRedirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], groups: ['groups'] },
    findAccount: async (_ctx: unknown, id: string) => {
      const user = IDP_USERS[id];
      if (!user) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, ...user }) };
    },
    features: { devInteractions: { enabled: true }, revocation: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    issueRefreshToken: async () => true,
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: opts.refreshTokenTtlS ?? 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    cookies: { keys: ['test-idp-cookie-key-0123456789abcdef'] },
  });
  provider.on('grant.success', (ctx: unknown) => {
    const type = String((ctx as { oidc?: { params?: { grant_type?: string } } }).oidc?.params?.grant_type ?? 'unknown');
    seen.grants[type] = (seen.grants[type] ?? 0) + 1;
  });
  provider.on('end_session.success', () => {
    seen.endSessions++;
  });
  const callback = provider.callback();
  handler = (req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/token/revocation')) res.on('finish', () => res.statusCode === 200 && seen.revocations++);
    callback(req, res);
  };
  return {
    issuer,
    clientId,
    clientSecret,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
