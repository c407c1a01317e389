import type { FastifyInstance } from 'fastify';
import { checkExposure, loadConfig, ConfigError, SERVICE_NAMES, type Config, type ServiceName } from './core/config/index.js';
import { openPlatform, createLogger, type Platform } from './core/platform.js';
import { SERVICE_BUILDERS } from './services.js';
import { buildGatewayApp } from './gateway/app.js';

export interface RunningPlatform {
  platform: Platform;
  apps: Map<ServiceName | 'gateway', FastifyInstance>;
  urls: Record<string, string>;
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  /** Services to run in this process (default: all five). */
  services?: readonly ServiceName[];
  /** Also run the gateway (default: when all services run). */
  gateway?: boolean;
  /** Listen on port 0 (random free ports) — for tests. */
  randomPorts?: boolean;
  platform?: Platform;
}

const PROVIDERS_FIRST: readonly ServiceName[] = ['model-registry', 'data-pipeline'];

/** Opens the stores once and starts the requested services (and the gateway) listening. */
export async function startPlatform(opts: StartOptions): Promise<RunningPlatform> {
  const { config } = opts;
  checkExposure(config);
  const services = opts.services ?? SERVICE_NAMES;
  const platform = opts.platform ?? (await openPlatform(config));
  if (services.length > 0 && services.length < SERVICE_NAMES.length && (config.auth || config.tls?.caFile) && !config.serviceTokenSecret) {
    platform.logger.warn(
      'services run in separate processes but XRAY_SERVICE_TOKEN_SECRET is not set: calls to internal routes (the promotion canary) from other processes are refused unless the caller presents a client certificate whose CN names its service; set the same secret on every service',
    );
  }
  // ── Shipped default model: on the first embedded start, models/<default>/model.onnx becomes
  // version 1 in Production, before the deployment service looks for it. Never blocks the start.
  if (config.seedModel && services.length > 0) {
    const { seedDefaultModel } = await import('./model-registry/service/seed-model.js');
    await seedDefaultModel(platform).catch((err: unknown) => platform.logger.warn({ err }, 'could not register the shipped model; starting without it'));
  }
  const apps = new Map<ServiceName | 'gateway', FastifyInstance>();
  const urls: Record<string, string> = {};
  try {
    // Services others read at boot (the deployment loads its production model from the registry)
    // offer their in-process clients first, so embedded mode never falls back to HTTP at start.
    const waves = [services.filter((n) => PROVIDERS_FIRST.includes(n)), services.filter((n) => !PROVIDERS_FIRST.includes(n))];
    const built: (readonly [ServiceName, FastifyInstance])[] = [];
    for (const wave of waves) built.push(...(await Promise.all(wave.map(async (name) => [name, await SERVICE_BUILDERS[name](platform)] as const))));
    for (const [name, app] of built) {
      apps.set(name, app);
      const address = await app.listen({ host: config.host, port: opts.randomPorts ? 0 : config.ports[name] });
      urls[name] = address;
    }
    if (opts.gateway ?? services.length === SERVICE_NAMES.length) {
      let gatewayConfig = config;
      if (opts.randomPorts) {
        const serviceUrls = { ...config.serviceUrls } as Record<ServiceName, string>;
        for (const name of services) serviceUrls[name] = urls[name]!;
        gatewayConfig = { ...config, serviceUrls };
      }
      const gw = await buildGatewayApp(gatewayConfig, platform.logger, { audit: platform.audit, cache: platform.cache, lifecycle: platform.lifecycle });
      apps.set('gateway', gw);
      urls.gateway = await gw.listen({ host: config.host, port: opts.randomPorts ? 0 : config.ports.gateway });
    }
  } catch (err) {
    await Promise.allSettled([...apps.values()].map((a) => a.close()));
    if (!opts.platform) await platform.close();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    platform,
    apps,
    urls,
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...apps.values()].map((a) => a.close()));
        if (!opts.platform) await platform.close();
      })();
      return closing;
    },
  };
}

/**
 * CLI/`npm start` entry: start, print where, stop cleanly on SIGINT/SIGTERM. `services` narrows the
 * process to some services; `[]` with `gateway` runs the gateway alone (scaled: sign-in and the UI
 * behind NGINX, which proxies /api itself).
 */
export async function runFromCli(services?: readonly ServiceName[], options: { gateway?: boolean } = {}): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
    checkExposure(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`xray: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config);
  const started = Date.now();
  let running: RunningPlatform;
  try {
    running = await startPlatform({ config, services, gateway: options.gateway });
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    console.error(`xray: failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
  const lines = Object.entries(running.urls).map(([name, url]) => `  ${name.padEnd(15)} ${url}`);
  console.error(`xray-mlops up in ${Date.now() - started} ms (data: ${config.home})\n${lines.join('\n')}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Drain: not ready at once (the load balancer stops sending), still serving for XRAY_DRAIN_S,
    // then close — in-flight requests and batches finish, queues stop taking work.
    running.platform.lifecycle.draining = true;
    console.error(`xray: ${signal} received, draining for ${config.drainSeconds} s, then shutting down`);
    const timer = setTimeout(() => process.exit(1), 15000 + config.drainSeconds * 1000);
    timer.unref();
    if (config.drainSeconds > 0) await new Promise((r) => setTimeout(r, config.drainSeconds * 1000));
    await running.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runFromCli();
}
