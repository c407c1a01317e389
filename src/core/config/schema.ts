import { z } from 'zod';

const port = z.coerce.number().int().min(1).max(65535);
const onOff = z
  .enum(['on', 'off', 'true', 'false', '1', '0'])
  .transform((v) => v === 'on' || v === 'true' || v === '1');

/**
 * Every configuration variable the platform reads, with its default. The README's
 * configuration table is generated from the `describe` texts (scripts/config-table.mjs).
 */
export const configSchema = z.object({
  XRAY_HOME: z.string().min(1).default('./.xray').describe('Data directory for all embedded state (SQLite file, object store, logs).'),
  XRAY_HOST: z.string().min(1).default('127.0.0.1').describe('Interface every service listens on (0.0.0.0 in containers).'),
  XRAY_PORT_DATA: port.default(8001).describe('Port of the data pipeline service.'),
  XRAY_PORT_TRAINING: port.default(8002).describe('Port of the training service.'),
  XRAY_PORT_REGISTRY: port.default(8003).describe('Port of the model registry service.'),
  XRAY_PORT_DEPLOYMENT: port.default(8004).describe('Port of the deployment (prediction) service.'),
  XRAY_PORT_MONITORING: port.default(8005).describe('Port of the monitoring service.'),
  XRAY_PORT_GATEWAY: port.default(8080).describe('Port of the gateway (web UI and /api/<service>/ proxy).'),
  XRAY_SERVICE_URLS: z.string().default('').describe('Comma list name=url overriding where the gateway and services reach each other, e.g. "model-registry=http://registry:8003".'),
  XRAY_DATABASE_URL: z.string().default('').describe('Relational store: sqlite:<path> (default $XRAY_HOME/xray.db) or postgres://user@host:5432/db.'),
  XRAY_DATABASE_SCHEMA: z.string().regex(/^([a-z_][a-z0-9_]{0,62})?$/, 'a lower-case PostgreSQL identifier').default('').describe('PostgreSQL schema the platform keeps its tables in (created if missing); empty = the database default (public). Several installations can share one database.'),
  XRAY_OBJECT_STORE_URL: z.string().default('').describe('Object store: file:<dir> (default $XRAY_HOME/objects) or s3://bucket/prefix.'),
  XRAY_S3_ENDPOINT: z.string().default('').describe('S3 endpoint URL for MinIO or another S3-compatible server (empty = AWS).'),
  XRAY_S3_REGION: z.string().default('us-east-1').describe('S3 region.'),
  XRAY_S3_ACCESS_KEY_ID: z.string().default('').describe('S3 access key (empty = the AWS default credential chain).'),
  XRAY_S3_SECRET_ACCESS_KEY: z.string().default('').describe('S3 secret key.'),
  XRAY_S3_FORCE_PATH_STYLE: onOff.default(true).describe('Use path-style S3 URLs (needed by MinIO).'),
  XRAY_S3_SSE: z.enum(['', 'AES256', 'aws:kms']).default('').describe('S3 server-side encryption requested on every write: AES256 (SSE-S3) or aws:kms (SSE-KMS). Empty = the bucket default.'),
  XRAY_S3_SSE_KMS_KEY_ID: z.string().default('').describe('KMS key id or ARN for XRAY_S3_SSE=aws:kms (empty = the account default aws/s3 key).'),
  XRAY_OBJECT_KEY_FILE: z.string().default('').describe('Filesystem object store: encrypt every object at rest (AES-256-GCM, a data key per object wrapped by a master key). The file holds master keys, one per line (openssl rand -base64 32): the first is current, later ones only decrypt older objects; rotate with xray objects reencrypt.'),
  XRAY_CACHE_URL: z.string().default('memory:').describe('Cache: memory: (in-process LRU) or redis://host:6379/0.'),
  XRAY_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(10000).describe('Entry limit of the in-memory cache.'),
  XRAY_QUEUE_URL: z.string().default('local:').describe('Job queue: local: (one process, persisted in the relational store; SQLite only) or redis://host:6379/0 (BullMQ; required with PostgreSQL, where replicas share the database).'),
  XRAY_REDIS_NAMESPACE: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('xray').describe('Prefix of every Redis key, queue and pub/sub channel the platform uses, so several installations can share one Redis.'),
  XRAY_EVENTS_URL: z.string().default('').describe('Event bus: empty = follow XRAY_CACHE_URL/XRAY_QUEUE_URL (Redis pub/sub when either is Redis), memory: = in-process.'),
  XRAY_AUTH_MAX_FAILURES: z.coerce.number().int().min(0).max(100000).default(10).describe('Wrong API keys allowed per IP address (and per key prefix) in one window before a lockout (0 = no lockout).'),
  XRAY_AUTH_FAILURE_WINDOW_S: z.coerce.number().int().min(1).max(86400).default(60).describe('The window wrong keys are counted in, in seconds; denials are also audited once per 1, 10, 100, … per window.'),
  XRAY_AUTH_LOCKOUT_S: z.coerce.number().int().min(1).max(86400).default(300).describe('How long an address (or key prefix) past the limit gets 429 with Retry-After, in seconds.'),
  XRAY_RATE_LIMIT_WINDOW_S: z.coerce.number().int().min(1).max(3600).default(60).describe('The window request rate limits are counted in, in seconds.'),
  XRAY_RATE_LIMIT_PER_CALLER: z.coerce.number().int().min(0).max(100_000_000).default(60000).describe('Requests one authenticated caller (an API key, a signed-in person) may make to one service per window; past it 429 with Retry-After (0 = no limit). Generous by default (1000/s): a busy prediction client is not a threat.'),
  XRAY_RATE_LIMIT_PER_IP: z.coerce.number().int().min(0).max(100_000_000).default(120000).describe('Requests one client address may make to one service (and to the gateway) per window, counted before authentication; /health, /ready and /metrics are exempt (0 = no limit). Generous by default: one address may be a NAT or proxy of many callers.'),
  XRAY_TRUST_PROXY: z.string().default('loopback').describe('Comma list of proxy addresses (IPs, CIDRs, or loopback / linklocal / uniquelocal) whose X-Forwarded-For names the client, so rate limits, lockouts and audit records see the client behind the gateway or NGINX, not the proxy. Default loopback: the gateway on the same host. Empty = trust no proxy.'),
  XRAY_DRAIN_S: z.coerce.number().min(0).max(600).default(0).describe('On SIGTERM, answer /ready with 503 and keep serving this many seconds before closing (let the load balancer notice; 10 in Kubernetes).'),
  XRAY_PATIENT_SALT_FILE: z.string().default('').describe('Secret file holding the salt of DICOM patient pseudonyms and UID remapping (>= 32 characters; a Kubernetes secret or Vault agent file). Empty = a salt kept in the database (embedded use).'),
  XRAY_DIMSE_PORT: z.coerce.number().int().min(0).max(65535).default(0).describe('Port of the DICOM C-STORE SCP (DIMSE) the data pipeline listens on, on XRAY_HOST, so modalities and PACS can push images (C-ECHO answered). 0 = off.'),
  XRAY_DIMSE_AE_TITLE: z.string().regex(/^[A-Za-z0-9 _.-]{1,16}$/, '1-16 characters A-Z 0-9 space _ . -').default('XRAY_MLOPS').describe('AE title of the C-STORE SCP; associations calling another title are rejected.'),
  XRAY_DIMSE_ALLOWED_AES: z.string().default('').describe('Comma list of calling AE titles allowed to associate with the C-STORE SCP (DIMSE has no API keys). Empty = any calling AE.'),
  XRAY_DICOM_AUTOPREDICT_MODEL: z.string().regex(/^([A-Za-z0-9._-]{1,128})?$/).default('').describe('Registered model to run on every DICOM image arriving over STOW-RS or C-STORE (its production alias); the result goes to XRAY_DICOM_RESULT_DESTINATION as a DICOM SR plus a Secondary Capture of the heatmap. Empty = off.'),
  XRAY_DICOM_RESULT_DESTINATION: z.string().default('').describe('Where auto-predict results go: a STOW-RS URL (http(s)://host/dicom-web, /studies is added) or a C-STORE peer AE@host:port.'),
  XRAY_DICOM_AUTOPREDICT_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8).describe('Tries per auto-predict job (prediction and delivery of its SR + SC) before it is failed; jobs wait on the platform queue (XRAY_QUEUE_URL) between tries.'),
  XRAY_DICOM_AUTOPREDICT_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(2000).describe('Delay before the first auto-predict retry, doubled after each failed try (8 tries at 2000: about 4 minutes in all), so a destination or deployment outage is waited out.'),
  XRAY_DICOM_AUTOPREDICT_KEY: z.string().default('').describe('API key (clinician or higher) auto-predict presents to the deployment service when XRAY_AUTH is on; empty = the STOW-RS caller\'s own key (C-STORE arrivals then cannot be predicted with auth on).'),
  XRAY_STARTUP_TIMEOUT_S: z.coerce.number().min(0).max(3600).default(60).describe('At start, keep retrying an engine that is not reachable yet (PostgreSQL starting, DNS not ready) for this long, with backoff.'),
  XRAY_INSECURE: onOff.default(false).describe('Acknowledge running with auth off on an interface other hosts can reach (XRAY_HOST not loopback); without it such a start is refused.'),
  XRAY_METRICS_TOKEN: z.string().default('').describe('When set, GET /metrics needs `Authorization: Bearer <token>` (give it to the Prometheus scrape job); empty = open.'),
  XRAY_AUTH: onOff.default(false).describe('Require API keys (on/off). Off by default in embedded mode.'),
  XRAY_ADMIN_KEY: z.string().default('').describe('Bootstrap admin API key created (hashed) at start when auth is on.'),
  XRAY_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level of the JSON logs.'),
  XRAY_MAX_UPLOAD_MB: z.coerce.number().positive().max(4096).default(64).describe('Largest accepted upload, in MiB (413 above).'),
  XRAY_DECODE_THREADS: z.coerce.number().int().min(0).max(64).default(0).describe('Image decoding worker threads shared by ingest, prediction and explanation (0 = one per core).'),
  XRAY_INFERENCE_THREADS: z.coerce.number().int().min(0).max(256).default(0).describe('ONNX Runtime intra-op threads per served model (0 = half the cores, at least 1: the image decoding workers use the rest; measured on 2 cores, one thread served EfficientNet-B0 with ~15% less CPU per request and a lower one-client latency than two).'),
  XRAY_DECODE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(20_000).describe('Wall-time limit for decoding one image in a worker; the worker is replaced and the file refused with 422 above it.'),
  XRAY_DECODE_MEMORY_MB: z.coerce.number().int().min(64).max(16_384).default(1024).describe('Heap limit of each image decoding worker thread, in MiB; a task that needs more is refused with 422 and the worker replaced.'),
  XRAY_IMPORT_ROOT: z.string().default('').describe('Server-side folder imports (and dataset_dir / model paths) are allowed under this root only (default: $XRAY_HOME/import).'),
  XRAY_CORS_ORIGINS: z.string().default('').describe('Comma list of extra origins (scheme://host:port) allowed to make state-changing requests; a foreign Origin is refused with 403. Empty = same origin only.'),
  XRAY_ALLOWED_HOSTS: z.string().default('').describe('Comma list of Host header values (host:port) accepted on state-changing requests; empty = any.'),
  XRAY_HSTS: onOff.default(false).describe('Send Strict-Transport-Security when TLS is terminated in front of the platform (a TLS proxy); always sent when XRAY_TLS_CERT_FILE is set.'),
  XRAY_TLS_CERT_FILE: z.string().default('').describe('PEM certificate (chain) the gateway and every service serve HTTPS with; reloaded when the file changes. Empty = plain HTTP (put a TLS proxy in front). Needs XRAY_TLS_KEY_FILE.'),
  XRAY_TLS_KEY_FILE: z.string().default('').describe('PEM private key of XRAY_TLS_CERT_FILE; reloaded when the file changes.'),
  XRAY_TLS_CA_FILE: z.string().default('').describe('PEM CA bundle for mTLS between services: services require a client certificate signed by it (except /health and /ready), and service-to-service calls and the gateway trust it for server certificates. Empty = no client certificates.'),
  XRAY_TLS_CLIENT_CERT_FILE: z.string().default('').describe('PEM client certificate services and the gateway present to other services (default: XRAY_TLS_CERT_FILE). Its subject CN names the service (e.g. CN=model-registry) to count as a service identity.'),
  XRAY_TLS_CLIENT_KEY_FILE: z.string().default('').describe('PEM private key of XRAY_TLS_CLIENT_CERT_FILE (default: XRAY_TLS_KEY_FILE).'),
  XRAY_SERVICE_TOKEN_SECRET: z.string().default('').describe('Shared secret (>= 32 characters, the same on every service) signing the short-lived service tokens each service-to-service call carries; internal routes refuse callers without one. Empty = a random per-process secret (embedded mode only).'),
  XRAY_OIDC_ISSUER: z.string().default('').describe('Issuer URL of the hospital identity provider (OpenID Connect: a Keycloak realm URL, https://login.microsoftonline.com/<tenant>/v2.0, an Okta authorization server): people sign in to the web UI with it (authorization code + PKCE). https only (http only on loopback, for tests). Needs XRAY_AUTH=on, XRAY_OIDC_CLIENT_ID, XRAY_OIDC_ROLE_MAP and XRAY_SESSION_SECRET. Empty = API keys only.'),
  XRAY_OIDC_CLIENT_ID: z.string().default('').describe('Client id of the platform registered at the identity provider (a web application; redirect URI = XRAY_OIDC_REDIRECT_URL, post-logout redirect URI = its origin + "/").'),
  XRAY_OIDC_CLIENT_SECRET: z.string().default('').describe('Client secret of XRAY_OIDC_CLIENT_ID (client_secret_basic). Empty = a public client (PKCE only).'),
  XRAY_OIDC_REDIRECT_URL: z.string().default('').describe('The callback URL registered at the identity provider: the address browsers use for the gateway + /auth/callback. Empty = http(s)://XRAY_HOST:XRAY_PORT_GATEWAY/auth/callback.'),
  XRAY_OIDC_SCOPES: z.string().default('openid profile email').describe('Scopes asked of the identity provider (space separated; must include openid). Add offline_access where the provider issues refresh tokens only with it (Entra ID, Okta), and the scope that releases XRAY_OIDC_ROLE_CLAIM if it needs one.'),
  XRAY_OIDC_ROLE_CLAIM: z.string().regex(/^[A-Za-z0-9_:/.-]{1,200}$/).default('groups').describe('Claim of the ID token (or, when absent there, of the userinfo answer) holding the person\'s groups or roles: a list or a string; a dotted path reaches nested claims (Keycloak: realm_access.roles).'),
  XRAY_OIDC_ROLE_MAP: z.string().default('').describe('Comma list group=role mapping identity-provider groups to platform roles (viewer, clinician, ml-engineer, admin), e.g. "radiologists=clinician,ml=ml-engineer,it=admin". A person gets the highest role of their groups; one with no mapped group is refused sign-in.'),
  XRAY_SESSION_SECRET: z.string().default('').describe('Secret (>= 32 characters, the same on the gateway and every service) signing the web sign-in session cookies (HS256) and encrypting the refresh cookie; services verify sessions with it. Needed by XRAY_OIDC_ISSUER.'),
  XRAY_SESSION_TTL_S: z.coerce.number().int().min(60).max(3600).default(900).describe('Lifetime of a session cookie, in seconds; the web UI renews it through POST /auth/refresh (which asks the identity provider again) before it ends.'),
  XRAY_SESSION_MAX_AGE_S: z.coerce.number().int().min(300).max(7 * 86400).default(43200).describe('Longest time after signing in that sessions are renewed (default 12 h, a shift); then the person signs in again.'),
  XRAY_BACKUP_TARGET: z.string().default('').describe('Where scheduled backups go: file:<dir> or s3://bucket/prefix (another bucket or site; the XRAY_S3_* credentials and encryption apply). Empty = no scheduled backups; POST /backups and xray backup create then write to file:$XRAY_HOME/backups.'),
  XRAY_BACKUP_INTERVAL_H: z.coerce.number().min(0).max(24 * 31).default(24).describe('Hours between scheduled backups to XRAY_BACKUP_TARGET, run once per cluster by the monitoring service (0 = off).'),
  XRAY_BACKUP_KEEP_DAILY: z.coerce.number().int().min(0).max(3650).default(7).describe('After each scheduled backup, keep the newest backup of each of the last N days (with XRAY_BACKUP_KEEP_WEEKLY; both 0 = keep every backup).'),
  XRAY_BACKUP_KEEP_WEEKLY: z.coerce.number().int().min(0).max(520).default(4).describe('…and of the last N ISO weeks; other backups, and objects only they listed, are deleted.'),
  XRAY_PYTHON: z.string().default('').describe('Python interpreter for the training worker (default: the first of /usr/bin/python3, python3 that imports torch).'),
  XRAY_TRAINER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1).describe('Training jobs run at once.'),
  XRAY_DEFAULT_MODEL: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/).default('pneumonia').describe('Registered model the deployment service serves by default (its production alias).'),
  XRAY_PROMOTION_MARGIN: z.coerce.number().min(0).max(1).default(0.01).describe('Largest validation-AUC drop a promotion to Production may carry without an admin override.'),
  XRAY_PROMOTION_CANARY: z
    .enum(['required', 'off'])
    .default('required')
    .describe("Before a version becomes Production, the deployment service canary-loads it (ONNX loads, input size = recorded preprocessing, reference images give their recorded outputs); 'off' skips this and says so in every verdict (a registry run without a deployment)."),
  XRAY_SEED_MODEL: onOff.default(true).describe('Register the shipped default model as pneumonia v1 (production) on first start.'),
  XRAY_WEB_DIR: z.string().default('').describe('Folder of the built web UI the gateway serves (default web/dist).'),
});

export type RawConfig = z.infer<typeof configSchema>;

/**
 * Settings that hold secrets (keys, passwords, tokens, URLs that may carry credentials). Each may
 * instead be given as `<NAME>_FILE`: the path of a file holding the value (a Kubernetes secret or
 * Vault agent file; one trailing newline is dropped). Setting both is an error.
 */
export const SECRET_SETTINGS = [
  'XRAY_DATABASE_URL',
  'XRAY_S3_ACCESS_KEY_ID',
  'XRAY_S3_SECRET_ACCESS_KEY',
  'XRAY_CACHE_URL',
  'XRAY_QUEUE_URL',
  'XRAY_EVENTS_URL',
  'XRAY_METRICS_TOKEN',
  'XRAY_ADMIN_KEY',
  'XRAY_SERVICE_TOKEN_SECRET',
  'XRAY_OIDC_CLIENT_SECRET',
  'XRAY_SESSION_SECRET',
  'XRAY_BACKUP_KEY',
  'XRAY_DICOM_AUTOPREDICT_KEY',
  'XRAY_ALERT_WEBHOOK_URL',
  'XRAY_ALERT_SMTP_URL',
] as const;
