import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { openDatabase, type Database } from './db/index.js';
import { objectStoreSettings, openObjectStore, type ObjectStore } from './objects/index.js';
import { openCache, type Cache } from './cache/index.js';
import { openQueue, type JobQueue } from './queue/index.js';
import { openEventBus, type EventBus } from './events/index.js';
import { AuditLog } from './audit/index.js';
import { ApiKeyStore } from './auth/index.js';
import { LocalServices } from './local-services.js';
import { withStartupRetry } from './startup-retry.js';
import { Durability } from './db/batch-writer.js';
import { ServiceTransport } from './http/service-transport.js';

/**
 * The shared building blocks every service gets: stores picked by configuration, opened once per
 * process (in embedded mode all five services share one SQLite connection and one object store).
 */
export interface Platform {
  readonly config: Config;
  readonly database: Database;
  readonly objects: ObjectStore;
  readonly cache: Cache;
  readonly queue: JobQueue;
  readonly events: EventBus;
  readonly audit: AuditLog;
  readonly keys: ApiKeyStore;
  readonly logger: Logger;
  /** Implementations the services in this process offer each other (see LocalServices). */
  readonly local: LocalServices;
  /** The writers (audit, prediction records) a response waits for: what was answered is stored. */
  readonly durability: Durability;
  /**
   * How this process calls other services: TLS with the platform CA and client certificate, and
   * a signed service token per call (XRAY_SERVICE_TOKEN_SECRET, or a random per-process secret).
   * HTTP service clients take it as `transport`; services verify incoming tokens with it.
   */
  readonly transport: ServiceTransport;
  /** Set on SIGTERM: /ready answers 503 so load balancers stop sending work while requests still succeed. */
  readonly lifecycle: { draining: boolean };
  /** Registers a cleanup to run (in reverse order) before the stores close. */
  onClose(fn: () => Promise<void> | void): void;
  /** Runs cleanups, flushes pending audit writes, closes every store; idempotent. */
  close(): Promise<void>;
}

export interface PlatformOverrides {
  database?: Database;
  objects?: ObjectStore;
  cache?: Cache;
  queue?: JobQueue;
  events?: EventBus;
  logger?: Logger;
  /** PostgreSQL schema (test isolation). */
  schema?: string;
}

export function createLogger(config: Config, name = 'xray'): Logger {
  return pino({ name, level: config.logLevel, base: { pid: process.pid } });
}

export async function openPlatform(config: Config, overrides: PlatformOverrides = {}): Promise<Platform> {
  mkdirSync(config.home, { recursive: true });
  const logger = overrides.logger ?? createLogger(config);
  const opened: { close(): Promise<void> }[] = [];
  try {
    const retry = { timeoutMs: config.startupTimeoutSeconds * 1000, logger };
    const database = overrides.database ?? (await withStartupRetry('the database', () => openDatabase(config.databaseUrl, { schema: overrides.schema ?? (config.databaseSchema || undefined) }), retry));
    if (!overrides.database) opened.push(database);
    const objects =
      overrides.objects ??
      (await openObjectStore(config.objectStoreUrl, objectStoreSettings(config)));
    if (!overrides.objects) opened.push(objects);
    const cache = overrides.cache ?? (await openCache(config.cacheUrl, { maxEntries: config.cacheMaxEntries, namespace: `${config.redisNamespace}:cache` }));
    if (!overrides.cache) opened.push(cache);
    const queue = overrides.queue ?? (await openQueue(config.queueUrl, database, { prefix: config.redisNamespace }));
    if (!overrides.queue) opened.push(queue);
    const events = overrides.events ?? (await openEventBus(config.eventsUrl, { namespace: `${config.redisNamespace}:events` }));
    if (!overrides.events) opened.push(events);
    const audit = new AuditLog(database, { logger });
    const durability = new Durability();
    durability.register(audit.writer);
    const keys = new ApiKeyStore(database);
    // Without a shared secret only this process can sign and verify: fine embedded, refused across processes.
    const transport = new ServiceTransport({
      tls: config.tls,
      tokenSecret: config.serviceTokenSecret ? Buffer.from(config.serviceTokenSecret, 'utf8') : randomBytes(32),
      logger,
    });
    opened.push(transport);
    if (config.auth && config.adminKey) await keys.create('bootstrap-admin', 'admin', config.adminKey);

    const cleanups: (() => Promise<void> | void)[] = [];
    let closing: Promise<void> | null = null;
    return {
      config,
      database,
      objects,
      cache,
      queue,
      events,
      audit,
      keys,
      logger,
      transport,
      local: new LocalServices(),
      durability,
      lifecycle: { draining: false },
      onClose(fn) {
        cleanups.push(fn);
      },
      close() {
        closing ??= (async () => {
          for (const fn of cleanups.reverse()) {
            try {
              await fn();
            } catch (err) {
              logger.error({ err }, 'cleanup failed');
            }
          }
          await queue.close().catch(() => {});
          await audit.flush().catch((err) => logger.error({ err }, 'audit flush failed'));
          await transport.close();
          for (const store of [events, cache, objects, database]) {
            if (opened.includes(store)) await store.close().catch(() => {});
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const store of opened.reverse()) await store.close().catch(() => {});
    throw err;
  }
}
