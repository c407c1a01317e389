import type { Logger } from 'pino';
import type { AuditLog } from '../../core/audit/index.js';
import { AppError } from '../../core/errors.js';
import { TOPICS, type EventBus } from '../../core/events/index.js';
import type { Caller } from '../dataplane.js';
import type { LoadedModelInfo, LocalLoad, ModelRepository, RegistryLoad } from '../model-repository.js';
import type { CanaryReport } from '../client/types.js';
import { normaliseRouting, type AbRouter } from './ab-router.js';
import { runCanary } from './canary.js';
import { ClusterState, type ClusterView } from './cluster-state.js';
import type { RoutingConfig, RoutingStore } from '../store/routing-store.js';

/** Topic on which replicas tell each other that a routing config changed. */
export const ROUTING_TOPIC = 'deployment.routing_changed';

export interface ModelManagerDeps {
  repository: ModelRepository;
  router: AbRouter;
  routingStore: RoutingStore;
  events: EventBus;
  audit: AuditLog;
  logger: Logger;
  /** Model loaded at start (its 'production' alias) and served when a request names none. */
  defaultModel: string;
  service?: string;
  /** Period of the cluster-state reconcile and heartbeat (default 15 s; 0 = start and events only). */
  reconcileMs?: number;
}

/** A model whose alias this deployment follows but could not load: what it serves instead. */
export interface ServingProblem {
  model: string;
  alias: string;
  /** The version the alias points to, when the registry could say. */
  wanted_version: string | null;
  /** The version still answering requests, or null when nothing serves. */
  serving_version: string | null;
  error: { code: string; message: string };
  since: number;
}

export interface RoutingInput {
  model: string;
  mode: 'split' | 'shadow';
  sticky?: boolean;
  variants: { name?: string; version: string; weight?: number }[];
}

/**
 * Model lifecycle around the repository (KServe's model repository extension): audited load and
 * unload, A/B and shadow routing (persisted, shared between replicas), loading the default
 * model's 'production' version at start, and following the registry's alias and stage events so
 * a promotion is served without a restart.
 */
export class ModelManager {
  readonly #d: ModelManagerDeps;
  readonly #unsubscribe: (() => Promise<void>)[] = [];
  readonly #background = new Set<Promise<unknown>>();
  /** Serialises registry-driven reloads per model name. */
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Resolves when stop() begins: ends the retry waits of loads whose registry was unreachable. */
  #stopping: (() => void) | null = null;
  readonly #stopped = new Promise<void>((resolve) => (this.#stopping = resolve));
  readonly #problems = new Map<string, ServingProblem>();
  #startingUp = false;
  #closing = false;

  readonly #cluster: ClusterState;

  constructor(deps: ModelManagerDeps) {
    this.#d = deps;
    this.#cluster = new ClusterState({
      repository: deps.repository,
      router: deps.router,
      store: deps.routingStore,
      events: deps.events,
      logger: deps.logger,
      defaultModel: deps.defaultModel,
      reconcileMs: deps.reconcileMs,
      followAlias: (name, alias, quiet) => this.#followAlias(name, alias, quiet),
      ensure: (name, version) => this.#ensure(name, version),
      problems: () => this.problems(),
      track: (p) => this.#track(p),
    });
  }

  /** What every replica serves against the desired state (GET /models/cluster). */
  cluster(): Promise<ClusterView> {
    return this.#cluster.view();
  }

  /** Converges this replica on the cluster's desired state now (also runs every period). */
  reconcile(): Promise<void> {
    return this.#cluster.reconcile();
  }

  get defaultModel(): string {
    return this.#d.defaultModel;
  }

  models(): LoadedModelInfo[] {
    return this.#d.repository.list();
  }

  routing(): RoutingConfig[] {
    return this.#d.router.list();
  }

  /**
   * true while the default model's first load at start is in progress (readiness). It ends when
   * the load settles, or when the registry turns out unreachable: a replica that could wait for
   * the registry forever reports ready and answers MODEL_NOT_READY meanwhile.
   */
  get startingUp(): boolean {
    return this.#startingUp;
  }

  /** Followed aliases this deployment could not load (shown on GET /models and as a banner in the UI). */
  problems(): ServingProblem[] {
    return [...this.#problems.values()];
  }

  /** Canary-loads a registered version without serving it (the promotion gate's servability check). */
  async canary(name: string, version: string, caller: Caller): Promise<CanaryReport> {
    return this.#audited('model.canary', `model:${name}/${version}`, caller, {}, () => runCanary(this.#d.repository.source, name, version, this.#d.logger));
  }

  /** Loads a registered version or alias here and makes it desired state: every replica loads it. */
  async load(req: RegistryLoad, caller: Caller): Promise<LoadedModelInfo> {
    return this.#audited('model.load', `model:${req.name}`, caller, { version: req.version, alias: req.alias }, async () => {
      const info = await this.#d.repository.load(req);
      await this.#cluster.recordLoad(req, info, caller.actor);
      return info;
    });
  }

  async loadLocal(req: LocalLoad, caller: Caller): Promise<LoadedModelInfo> {
    return this.#audited('model.load', `model:${req.name ?? this.#d.defaultModel}`, caller, { path: req.path, version: req.version }, () =>
      this.#d.repository.loadLocal(req),
    );
  }

  async unload(name: string, version: string | undefined, caller: Caller): Promise<string[]> {
    return this.#audited('model.unload', `model:${name}`, caller, { version }, async () => {
      const unloaded = await this.#d.repository.unload(name, version);
      await this.#cluster.recordUnload(name, version, unloaded);
      return unloaded;
    });
  }

  /**
   * Sets a model's routing. Versions not loaded yet are loaded from the registry (without
   * becoming the default).
   * @throws AppError INVALID_INPUT, MODEL_NOT_READY when a version cannot be loaded.
   */
  async setRouting(input: RoutingInput, caller: Caller): Promise<RoutingConfig> {
    const config = normaliseRouting(input, caller.actor);
    return this.#audited('routing.set', `model:${config.model}`, caller, { mode: config.mode, variants: config.variants }, async () => {
      const repo = this.#d.repository;
      for (const v of config.variants) {
        if (repo.isReady(config.model, v.version)) continue;
        if (!repo.hasSource) {
          throw new AppError('MODEL_NOT_READY', `version '${v.version}' of '${config.model}' is not loaded; load it first (POST /models/load)`);
        }
        try {
          await repo.load({ name: config.model, version: v.version, makeDefault: false });
        } catch (err) {
          if (err instanceof AppError && (err.code === 'NOT_FOUND' || err.code === 'MODEL_NOT_FOUND')) {
            throw new AppError('MODEL_NOT_FOUND', `version '${v.version}' of '${config.model}' is neither loaded nor in the registry`);
          }
          throw err;
        }
      }
      await this.#d.routingStore.put(config);
      this.#d.router.set(config);
      await this.#d.events.publish(ROUTING_TOPIC, { model: config.model }).catch(() => {});
      return config;
    });
  }

  async deleteRouting(model: string, caller: Caller): Promise<boolean> {
    return this.#audited('routing.delete', `model:${model}`, caller, {}, async () => {
      const deleted = await this.#d.routingStore.delete(model);
      this.#d.router.delete(model);
      await this.#d.events.publish(ROUTING_TOPIC, { model }).catch(() => {});
      return deleted;
    });
  }

  /**
   * Restores routing, subscribes to registry and routing events and starts loading the default
   * model's production version in the background (requests get MODEL_NOT_READY until it is in).
   */
  async start(): Promise<void> {
    for (const config of await this.#d.routingStore.list()) this.#d.router.set(config);
    const ev = this.#d.events;
    this.#unsubscribe.push(await ev.subscribe(TOPICS.modelAliasChanged, (p: unknown) => this.#onRegistryEvent(p)));
    this.#unsubscribe.push(await ev.subscribe(TOPICS.modelStageChanged, (p: unknown) => this.#onRegistryEvent(p)));
    this.#unsubscribe.push(await ev.subscribe(ROUTING_TOPIC, (p: unknown) => this.#onRoutingEvent(p)));
    let first: Promise<unknown> = Promise.resolve();
    if (this.#d.repository.hasSource) {
      // A default pinned cluster-wide (POST /models/load with default) replaces following production.
      if (!(await this.#cluster.pinsDefault(this.#d.defaultModel))) {
        this.#startingUp = true;
        this.#track((first = this.#followAlias(this.#d.defaultModel, 'production', true)));
        void first.finally(() => (this.#startingUp = false));
      }
      for (const config of this.#d.router.list()) {
        for (const v of config.variants) this.#track(this.#ensure(config.model, v.version));
      }
    }
    await this.#cluster.start(first);
  }

  /** Unsubscribes and waits for background loads. */
  async stop(): Promise<void> {
    this.#closing = true;
    this.#stopping?.();
    for (const u of this.#unsubscribe.splice(0)) await u().catch(() => {});
    await this.#cluster.stop();
    await Promise.allSettled([...this.#background]);
  }

  /** Background loads finished (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  #onRegistryEvent(payload: unknown): void {
    const p = (payload ?? {}) as Record<string, unknown>;
    const name = str(p.name) ?? str(p.model) ?? str(p.modelName) ?? str(p.model_name);
    if (!name) return;
    const alias = str(p.alias) ?? (isProductionStage(p.stage ?? p.toStage ?? p.to_stage ?? p.newStage) ? 'production' : null);
    if (!alias) return;
    const repo = this.#d.repository;
    const followed = repo.followedAlias(name);
    const loaded = repo.names().includes(name);
    // Follow the alias the served default was loaded through; load the default model's production on first promotion.
    if (followed === alias || (!loaded && name === this.#d.defaultModel && alias === 'production')) {
      this.#track(this.#followAlias(name, alias, false));
    }
  }

  #onRoutingEvent(payload: unknown): void {
    const model = str((payload as Record<string, unknown> | null)?.model);
    if (!model) return;
    this.#track(
      (async () => {
        const config = await this.#d.routingStore.get(model);
        if (!config) this.#d.router.delete(model);
        else {
          for (const v of config.variants) await this.#ensure(model, v.version);
          this.#d.router.set(config);
        }
      })(),
    );
  }

  #followAlias(name: string, alias: string, quietIfMissing: boolean): Promise<unknown> {
    const previous = this.#chains.get(name) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        try {
          const info = await this.#loadRetryingUnreachable(name, alias);
          this.#d.audit.record({
            actor: 'system',
            action: 'model.load',
            resource: `model:${name}`,
            service: this.#d.service ?? 'deployment',
            details: { version: info.version, alias, reason: 'registry alias' },
          });
          this.#cluster.touch();
          if (this.#problems.delete(`${name}@${alias}`)) {
            await this.#d.events.publish(TOPICS.modelServing, { name, alias, version: info.version, at: Date.now() }).catch(() => {});
          }
        } catch (err) {
          // Stopped while waiting for an unreachable registry: nothing failed, the replica is going away.
          if (this.#closing) return;
          const code = err instanceof AppError ? err.code : 'INTERNAL';
          if (quietIfMissing && (code === 'NOT_FOUND' || code === 'MODEL_NOT_FOUND')) {
            this.#d.logger.info({ model: name, alias }, 'no registered version to load at start');
            return;
          }
          await this.#loadFailed(name, alias, err);
        }
      });
    this.#chains.set(name, next);
    void next.finally(() => {
      if (this.#chains.get(name) === next) this.#chains.delete(name);
    });
    return next;
  }

  /**
   * Loads `name`@`alias`, retrying with backoff (0.5 s doubling to 10 s) while the registry is
   * unreachable — at start it may not be up yet (replicas start in any order) — until it answers or
   * this manager stops. Any other error is final.
   */
  async #loadRetryingUnreachable(name: string, alias: string) {
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        return await this.#d.repository.load({ name, alias });
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE' && (err.details as { unreachable?: boolean } | undefined)?.unreachable)) throw err;
        this.#startingUp = false;
        this.#d.logger.warn({ model: name, alias, retryInMs: delay }, `the registry is unreachable; loading ${name}@${alias} again in ${delay} ms`);
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([this.#stopped.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), delay)))]);
        clearTimeout(timer);
        if (stopped) throw err;
      }
    }
  }

  /**
   * A followed alias could not be loaded: the previous version keeps serving (or nothing does).
   * Logged, audited (outcome failure) and published, so monitoring raises "model not serving"
   * and GET /models (the UI's banner) says what serves instead.
   */
  async #loadFailed(name: string, alias: string, err: unknown): Promise<void> {
    const code = err instanceof AppError ? err.code : 'INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    const wanted = await this.#d.repository.resolveVersion(name, alias);
    const serving = this.#d.repository.defaultVersion(name);
    const problem: ServingProblem = {
      model: name,
      alias,
      wanted_version: wanted,
      serving_version: serving,
      error: { code, message },
      since: this.#problems.get(`${name}@${alias}`)?.since ?? Date.now(),
    };
    this.#problems.set(`${name}@${alias}`, problem);
    this.#d.logger.error({ err, model: name, alias, wanted, serving }, 'loading the aliased model version failed; the previous version keeps serving');
    this.#d.audit.record({
      actor: 'system',
      action: 'model.load',
      resource: `model:${name}`,
      outcome: 'failure',
      service: this.#d.service ?? 'deployment',
      details: { alias, version: wanted, serving_version: serving, reason: 'registry alias', error: message },
    });
    await this.#d.events.publish(TOPICS.modelLoadFailed, { ...problem, name, version: wanted, at: Date.now() }).catch(() => {});
  }

  async #ensure(name: string, version: string): Promise<void> {
    if (this.#d.repository.isReady(name, version) || !this.#d.repository.hasSource) return;
    try {
      await this.#d.repository.load({ name, version, makeDefault: false });
    } catch (err) {
      this.#d.logger.error({ err, model: name, version }, 'loading a routed version failed');
    }
  }

  #track(p: Promise<unknown>): void {
    const t = p.catch(() => {}).finally(() => this.#background.delete(t));
    this.#background.add(t);
  }

  async #audited<T>(action: string, resource: string, caller: Caller, details: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    const base = { actor: caller.actor, action, resource, requestId: caller.requestId, service: this.#d.service ?? 'deployment' };
    try {
      const result = await fn();
      this.#d.audit.record({ ...base, outcome: 'success', details });
      return result;
    } catch (err) {
      this.#d.audit.record({ ...base, outcome: 'failure', details: { ...details, error: err instanceof Error ? err.message : String(err) } });
      throw err;
    }
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function isProductionStage(v: unknown): boolean {
  return typeof v === 'string' && v.toLowerCase() === 'production';
}
