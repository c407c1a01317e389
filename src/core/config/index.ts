import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { isIP } from 'node:net';

import { configSchema, SECRET_SETTINGS, type RawConfig } from './schema.js';
import { ConfigError } from './errors.js';
import { loadMonitoringSettings, type MonitoringSettings } from './monitoring.js';
import { dicomNetworkSettings, type DicomNetworkSettings } from './dicom-network.js';
import { oidcSettings, sessionSettings, type OidcSettings, type SessionSettings } from './sign-in.js';

export { configSchema, SECRET_SETTINGS };

export const SERVICE_NAMES = ['data-pipeline', 'training', 'model-registry', 'deployment', 'monitoring'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface Config {
  readonly home: string;
  readonly host: string;
  readonly ports: Readonly<Record<ServiceName | 'gateway', number>>;
  readonly serviceUrls: Readonly<Record<ServiceName, string>>;
  readonly databaseUrl: string;
  /** PostgreSQL schema ('' = the database default). */
  readonly databaseSchema: string;
  readonly objectStoreUrl: string;
  readonly s3: {
    readonly endpoint: string;
    readonly region: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly forcePathStyle: boolean;
    /** Server-side encryption on every write ('' = bucket default). */
    readonly sse: '' | 'AES256' | 'aws:kms';
    readonly sseKmsKeyId: string;
  };
  /** Master key file of the filesystem store's envelope encryption ('' = not encrypted). */
  readonly objectKeyFile: string;
  readonly cacheUrl: string;
  readonly cacheMaxEntries: number;
  readonly queueUrl: string;
  readonly eventsUrl: string;
  /** Prefix of the platform's Redis keys, queues and channels. */
  readonly redisNamespace: string;
  readonly auth: boolean;
  readonly adminKey: string;
  readonly logLevel: RawConfig['XRAY_LOG_LEVEL'];
  readonly maxUploadBytes: number;
  /** Image decoding worker pool: threads (0 = cores), per-task wall time and per-thread heap. */
  readonly decode: { readonly threads: number; readonly timeoutMs: number; readonly memoryMb: number };
  /** ONNX Runtime intra-op threads per served model (0 = half the cores, at least 1). */
  readonly inferenceThreads: number;
  readonly importRoot: string;
  readonly corsOrigins: readonly string[];
  readonly allowedHosts: readonly string[];
  /** Send HSTS: XRAY_HSTS, or always when the platform serves TLS itself. */
  readonly hsts: boolean;
  /** HTTPS served by the gateway and services (XRAY_TLS_*); null = plain HTTP. */
  readonly tls: TlsSettings | null;
  /** Shared secret of service tokens ('' = a random per-process secret). */
  readonly serviceTokenSecret: string;
  readonly python: string;
  readonly trainerConcurrency: number;
  readonly seedModel: boolean;
  readonly defaultModel: string;
  readonly promotionMargin: number;
  /** Auth off on a non-loopback interface was acknowledged (XRAY_INSECURE). */
  readonly insecure: boolean;
  /** How long start-up retries an unreachable engine. */
  readonly startupTimeoutSeconds: number;
  /** Secret file with the patient-pseudonym salt; '' = kept in the database. */
  readonly patientSaltFile: string;
  /** Seconds between SIGTERM (not ready) and closing. */
  readonly drainSeconds: number;
  /** Bearer token GET /metrics requires; '' = open. */
  readonly metricsToken: string;
  /** Lockout after repeated wrong API keys (see AuthGuard). */
  readonly authGuard: { maxFailures: number; windowSeconds: number; lockoutSeconds: number };
  /** Request rate limits per caller and per address (0 = off), see installRateLimits. */
  readonly rateLimit: { perCaller: number; perIp: number; windowSeconds: number };
  /** Proxies whose X-Forwarded-For is believed (Fastify trustProxy); empty = none. */
  readonly trustProxy: readonly string[];
  /** 'required': promotion to Production needs a passing canary load in the deployment. */
  readonly promotionCanary: 'required' | 'off';
  readonly webDir: string;
  readonly projectRoot: string;
  /** Scheduled backups (XRAY_BACKUP_*): target '' = none scheduled; intervalHours 0 = off. */
  readonly backup: { readonly target: string; readonly intervalHours: number; readonly keepDaily: number; readonly keepWeekly: number };
  /** The monitoring service's thresholds, schedule and alert channels (XRAY_DRIFT_*, XRAY_ALERT_*, …). */
  readonly monitoring: Readonly<MonitoringSettings>;
  /** PACS connectivity of the data pipeline: C-STORE SCP, auto-predict destination (XRAY_DIMSE_*, XRAY_DICOM_*). */
  readonly dicomNetwork: DicomNetworkSettings;
  /** Web sign-in sessions (XRAY_SESSION_*): null = no session cookies accepted. */
  readonly session: SessionSettings | null;
  /** Sign-in at the hospital's identity provider (XRAY_OIDC_*): null = API keys only. */
  readonly oidc: OidcSettings | null;
}

/** Files of the platform's TLS material (absolute paths; read and watched by src/core/http/tls.ts). */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle: mTLS between services ('' = no client certificates). */
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export { ConfigError } from './errors.js';
export type { OidcSettings, SessionSettings } from './sign-in.js';
export { parseRoleMap } from './sign-in.js';
export { monitoringSettingsSchema, loadMonitoringSettings, monitoringSettings, type MonitoringSettings } from './monitoring.js';

/** The project root: two levels above src/core/config. */
export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../../..');

function readConfigFile(file: string): Record<string, string> {
  if (!existsSync(file)) throw new ConfigError(`XRAY_CONFIG_FILE: file '${file}' does not exist`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`XRAY_CONFIG_FILE: '${file}' is not valid JSON (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`XRAY_CONFIG_FILE: '${file}' must hold a JSON object of XRAY_* keys`);
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}

function parseServiceUrls(raw: string, host: string, ports: Config['ports'], scheme: 'http' | 'https'): Record<ServiceName, string> {
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const urls = Object.fromEntries(SERVICE_NAMES.map((s) => [s, `${scheme}://${local}:${ports[s]}`])) as Record<ServiceName, string>;
  for (const pair of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, url] = pair.split('=');
    if (!url || !(SERVICE_NAMES as readonly string[]).includes(name!)) {
      throw new ConfigError(`XRAY_SERVICE_URLS: '${pair}' is not name=url with name one of ${SERVICE_NAMES.join(', ')}`);
    }
    urls[name as ServiceName] = url.replace(/\/$/, '');
  }
  return urls;
}

/**
 * Reads the configuration from environment variables (and the optional JSON file named by
 * XRAY_CONFIG_FILE; environment wins). A bad value throws ConfigError naming the variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const fileValues = env.XRAY_CONFIG_FILE ? readConfigFile(env.XRAY_CONFIG_FILE) : {};
  const all = resolveSecretFiles({ ...fileValues, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')) });
  const merged: Record<string, string | undefined> = {};
  for (const key of Object.keys(configSchema.shape)) {
    if (all[key] !== undefined && all[key] !== '') merged[key] = all[key];
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(merged[String(i.path[0])])})`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return fromRaw(result.data, loadMonitoringSettings(all));
}

/**
 * `<NAME>_FILE` for every secret setting: the value is read from that file (one trailing newline
 * dropped). Both set, or an unreadable or empty file, is a ConfigError naming the variable.
 */
export function resolveSecretFiles(values: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...values };
  for (const name of SECRET_SETTINGS) {
    const file = values[`${name}_FILE`];
    if (!file) continue;
    if (values[name]) throw new ConfigError(`${name} and ${name}_FILE are both set; give the secret one way`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${name}_FILE: cannot read '${file}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const value = text.replace(/\r?\n$/, '');
    if (!value) throw new ConfigError(`${name}_FILE: '${file}' is empty`);
    out[name] = value;
  }
  return out;
}

function tlsSettings(raw: RawConfig): TlsSettings | null {
  const given = [raw.XRAY_TLS_CERT_FILE, raw.XRAY_TLS_KEY_FILE, raw.XRAY_TLS_CA_FILE, raw.XRAY_TLS_CLIENT_CERT_FILE, raw.XRAY_TLS_CLIENT_KEY_FILE].some(Boolean);
  if (!given) return null;
  if (!raw.XRAY_TLS_CERT_FILE || !raw.XRAY_TLS_KEY_FILE) {
    throw new ConfigError('XRAY_TLS_CERT_FILE and XRAY_TLS_KEY_FILE must both be set to serve HTTPS (the other XRAY_TLS_* settings need them)');
  }
  if (Boolean(raw.XRAY_TLS_CLIENT_CERT_FILE) !== Boolean(raw.XRAY_TLS_CLIENT_KEY_FILE)) {
    throw new ConfigError('XRAY_TLS_CLIENT_CERT_FILE and XRAY_TLS_CLIENT_KEY_FILE go together');
  }
  const settings = {
    certFile: path.resolve(raw.XRAY_TLS_CERT_FILE),
    keyFile: path.resolve(raw.XRAY_TLS_KEY_FILE),
    caFile: raw.XRAY_TLS_CA_FILE ? path.resolve(raw.XRAY_TLS_CA_FILE) : '',
    clientCertFile: path.resolve(raw.XRAY_TLS_CLIENT_CERT_FILE || raw.XRAY_TLS_CERT_FILE),
    clientKeyFile: path.resolve(raw.XRAY_TLS_CLIENT_KEY_FILE || raw.XRAY_TLS_KEY_FILE),
  };
  for (const [name, file] of [
    ['XRAY_TLS_CERT_FILE', settings.certFile],
    ['XRAY_TLS_KEY_FILE', settings.keyFile],
    ['XRAY_TLS_CA_FILE', settings.caFile],
    ['XRAY_TLS_CLIENT_CERT_FILE', settings.clientCertFile],
    ['XRAY_TLS_CLIENT_KEY_FILE', settings.clientKeyFile],
  ] as const) {
    if (file && !existsSync(file)) throw new ConfigError(`${name}: file '${file}' does not exist`);
  }
  return Object.freeze(settings);
}

/** XRAY_TRUST_PROXY as a list: proxy-addr's names, IPs and CIDRs (checked here, not at the first request). */
function trustedProxies(value: string): string[] {
  const list = value.split(',').map((v) => v.trim()).filter(Boolean);
  for (const entry of list) {
    const [addr, bits, extra] = entry.split('/');
    const named = ['loopback', 'linklocal', 'uniquelocal'].includes(entry);
    const ok = named || (extra === undefined && isIP(addr ?? '') !== 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(addr!) === 4 ? 32 : 128))));
    if (!ok) throw new ConfigError(`XRAY_TRUST_PROXY: '${entry}' is not an IP address, a CIDR or one of loopback, linklocal, uniquelocal`);
  }
  return list;
}

function fromRaw(raw: RawConfig, monitoring: MonitoringSettings): Config {
  const home = path.resolve(raw.XRAY_HOME);
  const ports = {
    'data-pipeline': raw.XRAY_PORT_DATA,
    training: raw.XRAY_PORT_TRAINING,
    'model-registry': raw.XRAY_PORT_REGISTRY,
    deployment: raw.XRAY_PORT_DEPLOYMENT,
    monitoring: raw.XRAY_PORT_MONITORING,
    gateway: raw.XRAY_PORT_GATEWAY,
  } as const;
  const databaseUrl = raw.XRAY_DATABASE_URL || `sqlite:${path.join(home, 'xray.db')}`;
  const objectStoreUrl = raw.XRAY_OBJECT_STORE_URL || `file:${path.join(home, 'objects')}`;
  for (const [name, value, schemes] of [
    ['XRAY_DATABASE_URL', databaseUrl, ['sqlite:', 'postgres:', 'postgresql:']],
    ['XRAY_OBJECT_STORE_URL', objectStoreUrl, ['file:', 's3:']],
    ['XRAY_CACHE_URL', raw.XRAY_CACHE_URL, ['memory:', 'redis:', 'rediss:']],
    ['XRAY_QUEUE_URL', raw.XRAY_QUEUE_URL, ['local:', 'memory:', 'redis:', 'rediss:']],
    ['XRAY_BACKUP_TARGET', raw.XRAY_BACKUP_TARGET || 'file:', ['file:', 's3:']],
  ] as const) {
    if (!schemes.some((s) => value.startsWith(s))) {
      throw new ConfigError(`${name}: '${value}' has an unknown scheme; use one of ${schemes.join(' ')}`);
    }
  }
  // The local queue recovers 'active' jobs on start, which is only safe when one process consumes:
  // PostgreSQL means replicas, and replicas share the queue through Redis (BullMQ).
  if (databaseUrl.startsWith('postgres') && !raw.XRAY_QUEUE_URL.startsWith('redis')) {
    throw new ConfigError(
      `XRAY_QUEUE_URL: '${raw.XRAY_QUEUE_URL}' is a single-process queue and cannot run on PostgreSQL, where several replicas share the database; set XRAY_QUEUE_URL=redis://host:6379/0 (BullMQ)`,
    );
  }
  if (raw.XRAY_SERVICE_TOKEN_SECRET && raw.XRAY_SERVICE_TOKEN_SECRET.length < 32) {
    throw new ConfigError('XRAY_SERVICE_TOKEN_SECRET must be at least 32 characters (e.g. openssl rand -base64 48)');
  }
  const tls = tlsSettings(raw);
  if (raw.XRAY_S3_SSE_KMS_KEY_ID && raw.XRAY_S3_SSE !== 'aws:kms') throw new ConfigError('XRAY_S3_SSE_KMS_KEY_ID needs XRAY_S3_SSE=aws:kms');
  if (raw.XRAY_OBJECT_KEY_FILE && !existsSync(raw.XRAY_OBJECT_KEY_FILE)) throw new ConfigError(`XRAY_OBJECT_KEY_FILE: file '${raw.XRAY_OBJECT_KEY_FILE}' does not exist`);
  if (raw.XRAY_DATABASE_SCHEMA && !databaseUrl.startsWith('postgres')) throw new ConfigError('XRAY_DATABASE_SCHEMA needs a postgres:// XRAY_DATABASE_URL');
  const eventsUrl =
    raw.XRAY_EVENTS_URL ||
    (raw.XRAY_QUEUE_URL.startsWith('redis') ? raw.XRAY_QUEUE_URL : raw.XRAY_CACHE_URL.startsWith('redis') ? raw.XRAY_CACHE_URL : 'memory:');
  return Object.freeze({
    home,
    host: raw.XRAY_HOST,
    ports: Object.freeze(ports),
    serviceUrls: Object.freeze(parseServiceUrls(raw.XRAY_SERVICE_URLS, raw.XRAY_HOST, ports, tls ? 'https' : 'http')),
    databaseUrl,
    databaseSchema: raw.XRAY_DATABASE_SCHEMA,
    objectStoreUrl,
    s3: Object.freeze({
      endpoint: raw.XRAY_S3_ENDPOINT,
      region: raw.XRAY_S3_REGION,
      accessKeyId: raw.XRAY_S3_ACCESS_KEY_ID,
      secretAccessKey: raw.XRAY_S3_SECRET_ACCESS_KEY,
      forcePathStyle: raw.XRAY_S3_FORCE_PATH_STYLE,
      sse: raw.XRAY_S3_SSE,
      sseKmsKeyId: raw.XRAY_S3_SSE_KMS_KEY_ID,
    }),
    objectKeyFile: raw.XRAY_OBJECT_KEY_FILE ? path.resolve(raw.XRAY_OBJECT_KEY_FILE) : '',
    cacheUrl: raw.XRAY_CACHE_URL,
    cacheMaxEntries: raw.XRAY_CACHE_MAX_ENTRIES,
    queueUrl: raw.XRAY_QUEUE_URL,
    eventsUrl,
    redisNamespace: raw.XRAY_REDIS_NAMESPACE,
    auth: raw.XRAY_AUTH,
    adminKey: raw.XRAY_ADMIN_KEY,
    logLevel: raw.XRAY_LOG_LEVEL,
    maxUploadBytes: Math.round(raw.XRAY_MAX_UPLOAD_MB * 1024 * 1024),
    decode: { threads: raw.XRAY_DECODE_THREADS, timeoutMs: raw.XRAY_DECODE_TIMEOUT_MS, memoryMb: raw.XRAY_DECODE_MEMORY_MB },
    inferenceThreads: raw.XRAY_INFERENCE_THREADS,
    importRoot: path.resolve(raw.XRAY_IMPORT_ROOT || path.join(home, 'import')),
    corsOrigins: Object.freeze(raw.XRAY_CORS_ORIGINS.split(',').map((o) => o.trim().replace(/\/$/, '')).filter(Boolean)),
    allowedHosts: Object.freeze(raw.XRAY_ALLOWED_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)),
    hsts: raw.XRAY_HSTS || tls !== null,
    tls,
    serviceTokenSecret: raw.XRAY_SERVICE_TOKEN_SECRET,
    python: raw.XRAY_PYTHON,
    trainerConcurrency: raw.XRAY_TRAINER_CONCURRENCY,
    seedModel: raw.XRAY_SEED_MODEL,
    defaultModel: raw.XRAY_DEFAULT_MODEL,
    promotionMargin: raw.XRAY_PROMOTION_MARGIN,
    insecure: raw.XRAY_INSECURE,
    startupTimeoutSeconds: raw.XRAY_STARTUP_TIMEOUT_S,
    patientSaltFile: raw.XRAY_PATIENT_SALT_FILE ? path.resolve(raw.XRAY_PATIENT_SALT_FILE) : '',
    drainSeconds: raw.XRAY_DRAIN_S,
    metricsToken: raw.XRAY_METRICS_TOKEN,
    authGuard: Object.freeze({ maxFailures: raw.XRAY_AUTH_MAX_FAILURES, windowSeconds: raw.XRAY_AUTH_FAILURE_WINDOW_S, lockoutSeconds: raw.XRAY_AUTH_LOCKOUT_S }),
    rateLimit: Object.freeze({ perCaller: raw.XRAY_RATE_LIMIT_PER_CALLER, perIp: raw.XRAY_RATE_LIMIT_PER_IP, windowSeconds: raw.XRAY_RATE_LIMIT_WINDOW_S }),
    trustProxy: Object.freeze(trustedProxies(raw.XRAY_TRUST_PROXY)),
    promotionCanary: raw.XRAY_PROMOTION_CANARY,
    webDir: path.resolve(raw.XRAY_WEB_DIR || path.join(PROJECT_ROOT, 'web', 'dist')),
    projectRoot: PROJECT_ROOT,
    backup: Object.freeze({ target: raw.XRAY_BACKUP_TARGET, intervalHours: raw.XRAY_BACKUP_INTERVAL_H, keepDaily: raw.XRAY_BACKUP_KEEP_DAILY, keepWeekly: raw.XRAY_BACKUP_KEEP_WEEKLY }),
    monitoring: Object.freeze(monitoring),
    dicomNetwork: dicomNetworkSettings(raw),
    session: sessionSettings(raw),
    oidc: oidcSettings(raw, { tls: tls !== null, hsts: raw.XRAY_HSTS }),
  });
}

/** true for an interface only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Safe by default: a platform other hosts can reach must check API keys. Refuses auth off on a
 * non-loopback XRAY_HOST unless XRAY_INSECURE acknowledges it.
 * @throws ConfigError naming the settings to change.
 */
export function checkExposure(config: Config): void {
  if (config.auth || config.insecure || isLoopbackHost(config.host)) return;
  throw new ConfigError(
    `XRAY_HOST=${config.host} lets other hosts reach the platform, but XRAY_AUTH is off, so anyone on the network could read predictions and change models. Turn XRAY_AUTH=on (and create keys with xray keys create), listen on 127.0.0.1, or set XRAY_INSECURE=on to accept the risk.`,
  );
}

/** A config for tests: embedded engines under a given home, quiet logs, overrides applied. */
export function testConfig(home: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({ XRAY_HOME: home, XRAY_LOG_LEVEL: 'silent', XRAY_SEED_MODEL: 'off', ...overrides });
}

export type { RawConfig };
