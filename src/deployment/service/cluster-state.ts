import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { EventBus } from '../../core/events/index.js';
import type { LoadedModelInfo, ModelRepository, RegistryLoad } from '../model-repository.js';
import type { AbRouter } from './ab-router.js';
import type { DesiredLoad, ReplicaHeartbeat, RoutingStore, ServedModel } from '../store/routing-store.js';

/** Topic on which replicas tell each other that the desired loads changed (payload: {model, unloaded?, from}). */
export const LOADS_TOPIC = 'deployment.loads_changed';
/** Every replica reconciles with the desired state and heartbeats this often, so a missed event heals. */
export const RECONCILE_MS = 15_000;

/** What every replica should serve, aliases resolved now. */
export interface DesiredModel {
  name: string;
  version: string;
  /** Served when a request names no version. */
  default: boolean;
  /** Why: 'production alias', 'load' or 'routing'. */
  reason: string;
}

/** What each live replica serves against the desired state (GET /models/cluster). */
export interface ClusterView {
  /** Every live replica serves every desired version (and the desired defaults as defaults). */
  converged: boolean;
  desired: DesiredModel[];
  replicas: {
    id: string;
    host: string;
    /** The replica that answered. */
    self: boolean;
    last_seen: number;
    converged: boolean;
    missing: DesiredModel[];
    serving: ServedModel[];
    problems: unknown[];
  }[];
  /** Heartbeats older than three periods: stopped or cut-off replicas (kept an hour). */
  stale: { id: string; host: string; last_seen: number }[];
}

export interface ClusterStateDeps {
  repository: ModelRepository;
  router: AbRouter;
  store: RoutingStore;
  events: EventBus;
  logger: Logger;
  defaultModel: string;
  /** Reconcile + heartbeat period (default RECONCILE_MS; 0 = only at start and on events). */
  reconcileMs?: number;
  /** The manager's serialised alias load (audited; failures become serving problems). */
  followAlias(name: string, alias: string, quietIfMissing: boolean): Promise<unknown>;
  /** Loads a routed version if it is not loaded (failures logged). */
  ensure(name: string, version: string): Promise<void>;
  problems(): unknown[];
  /** Runs a background task the manager waits for on stop. */
  track(p: Promise<unknown>): void;
}

/**
 * Cluster-wide model state (issue 16 item 1). What each deployment serves is desired state in the
 * database: routing configs (deployment_routing), the loads operators asked for through the
 * registry (deployment_loads: a version or an alias, default or not) and the default model's
 * production alias (the registry). Every replica converges on it at start, on an event (Redis
 * pub/sub when scaled: routing, loads, registry alias and stage changes) and every period, then
 * heartbeats what it serves (deployment_replicas), so any replica can say what all serve.
 * Local ONNX files (`/models/load {path}`) stay per replica: the file is on one host.
 */
export class ClusterState {
  readonly #d: ClusterStateDeps;
  readonly id = `${os.hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #reconciling: Promise<void> | null = null;
  #stopped = false;
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(deps: ClusterStateDeps) {
    this.#d = deps;
  }

  get #period(): number {
    return this.#d.reconcileMs ?? RECONCILE_MS;
  }

  /** Records what this replica serves now (after a load or unload). */
  touch(): void {
    this.#d.track(this.#heartbeat());
  }

  /** Whether a cluster-wide default load replaces following `model`'s production alias. */
  async pinsDefault(model: string): Promise<boolean> {
    return (await this.#d.store.listLoads()).some((l) => l.model === model && l.makeDefault);
  }

  /**
   * Applies the desired loads once `after` (the default model's first load) settles — a version
   * loaded first would become the default and then be retired by it — heartbeats, listens for load
   * events and starts the periodic reconcile.
   */
  async start(after: Promise<unknown> = Promise.resolve()): Promise<void> {
    this.#unsubscribe = await this.#d.events.subscribe(LOADS_TOPIC, (p: unknown) => this.#onEvent(p));
    const loads = await this.#d.store.listLoads();
    this.#d.track(
      after
        .catch(() => {})
        .then(async () => {
          if (this.#d.repository.hasSource) await this.#applyLoads(loads);
          await this.#heartbeat();
        }),
    );
    if (this.#period > 0) {
      this.#timer = setInterval(() => void this.reconcile().catch((err: unknown) => this.#d.logger.warn({ err }, 'reconciling the served models failed')), this.#period);
      this.#timer.unref();
    }
  }

  /** Stops reconciling and removes this replica's heartbeat. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#unsubscribe?.().catch(() => {});
    await this.#reconciling?.catch(() => {});
    await this.#d.store.removeReplica(this.id).catch(() => {});
  }

  /** A registry load made here becomes desired state, and the other replicas are told. */
  async recordLoad(req: RegistryLoad, info: LoadedModelInfo, actor: string): Promise<void> {
    const byVersion = req.version !== undefined;
    await this.#d.store.putLoad({
      model: req.name,
      ref: byVersion ? info.version : (req.alias ?? 'production'),
      refKind: byVersion ? 'version' : 'alias',
      makeDefault: req.makeDefault ?? true,
      batching: (req.batching as Record<string, number> | undefined) ?? null,
      updatedBy: actor,
      updatedAt: Date.now(),
    });
    await this.#d.events.publish(LOADS_TOPIC, { model: req.name, from: this.id }).catch(() => {});
    this.#d.track(this.#heartbeat());
  }

  /** An unload made here drops the matching desired loads, and the other replicas unload the same versions. */
  async recordUnload(name: string, version: string | undefined, unloaded: string[]): Promise<void> {
    for (const l of (await this.#d.store.listLoads()).filter((x) => x.model === name)) {
      if (version === undefined || l.ref === version || unloaded.includes(l.ref)) await this.#d.store.deleteLoads(name, l.ref);
    }
    await this.#d.events.publish(LOADS_TOPIC, { model: name, unloaded, from: this.id }).catch(() => {});
    this.#d.track(this.#heartbeat());
  }

  /**
   * Converges this replica on the desired state — routing, loads, the default model's production
   * alias — then heartbeats what it serves. One at a time.
   */
  reconcile(): Promise<void> {
    this.#reconciling ??= (async () => {
      try {
        const { store, repository: repo, router } = this.#d;
        const configs = await store.list();
        for (const config of configs) {
          for (const v of config.variants) await this.#d.ensure(config.model, v.version);
          router.set(config);
        }
        for (const config of router.list()) if (!configs.some((c) => c.model === config.model)) router.delete(config.model);
        const loads = await store.listLoads();
        if (repo.hasSource) {
          await this.#applyLoads(loads);
          const model = this.#d.defaultModel;
          const pinned = loads.some((l) => l.model === model && l.makeDefault);
          if (!pinned && (repo.followedAlias(model) === 'production' || repo.defaultVersion(model) === null)) {
            const wanted = await repo.resolveVersion(model, 'production').catch(() => null);
            if (wanted && wanted !== repo.defaultVersion(model)) await this.#d.followAlias(model, 'production', true);
          }
        }
        await this.#heartbeat();
      } finally {
        this.#reconciling = null;
      }
    })();
    return this.#reconciling;
  }

  /** What every replica should serve now (aliases resolved through the registry). */
  async desired(): Promise<DesiredModel[]> {
    const repo = this.#d.repository;
    const out: DesiredModel[] = [];
    const add = (d: DesiredModel) => {
      const same = out.find((x) => x.name === d.name && x.version === d.version);
      if (!same) out.push(d);
      else same.default ||= d.default;
    };
    const loads = await this.#d.store.listLoads();
    for (const l of loads) {
      const version = l.refKind === 'version' ? l.ref : await repo.resolveVersion(l.model, l.ref).catch(() => null);
      if (version) add({ name: l.model, version, default: l.makeDefault, reason: 'load' });
    }
    if (repo.hasSource && !loads.some((l) => l.model === this.#d.defaultModel && l.makeDefault)) {
      const version = await repo.resolveVersion(this.#d.defaultModel, 'production').catch(() => null);
      if (version) add({ name: this.#d.defaultModel, version, default: true, reason: 'production alias' });
    }
    for (const config of await this.#d.store.list()) for (const v of config.variants) add({ name: config.model, version: v.version, default: false, reason: 'routing' });
    return out;
  }

  /** Every live replica's served set against the desired state. */
  async view(now = Date.now()): Promise<ClusterView> {
    await this.#heartbeat();
    const period = this.#period || RECONCILE_MS;
    const [desired, beats] = await Promise.all([this.desired(), this.#d.store.replicas({ pruneBefore: now - 3_600_000 })]);
    const liveSince = now - 3 * period;
    const replicas = beats
      .filter((b) => b.heartbeatAt >= liveSince)
      .map((b) => {
        const missing = desired.filter((d) => !b.serving.some((s) => s.name === d.name && s.version === d.version && (!d.default || s.default)));
        return { id: b.id, host: b.host, self: b.id === this.id, last_seen: b.heartbeatAt, converged: missing.length === 0, missing, serving: b.serving, problems: b.problems };
      });
    const stale = beats.filter((b) => b.heartbeatAt < liveSince).map((b) => ({ id: b.id, host: b.host, last_seen: b.heartbeatAt }));
    return { converged: replicas.every((r) => r.converged), desired, replicas, stale };
  }

  /** Loads the desired loads this replica does not hold yet; a failure is logged and retried next period. */
  async #applyLoads(loads: DesiredLoad[]): Promise<void> {
    const repo = this.#d.repository;
    for (const l of loads) {
      try {
        if (l.refKind === 'version') {
          const ready = repo.isReady(l.model, l.ref) && (!l.makeDefault || repo.defaultVersion(l.model) === l.ref);
          if (!ready) await repo.load({ name: l.model, version: l.ref, makeDefault: l.makeDefault, ...(l.batching ? { batching: l.batching } : {}) });
        } else if (repo.followedAlias(l.model) !== l.ref || repo.defaultVersion(l.model) !== (await repo.resolveVersion(l.model, l.ref))) {
          await this.#d.followAlias(l.model, l.ref, false);
        }
      } catch (err) {
        this.#d.logger.error({ err, model: l.model, ref: l.ref }, 'loading a cluster-wide load failed; retrying at the next reconcile');
      }
    }
  }

  #onEvent(payload: unknown): void {
    const p = (payload ?? {}) as { model?: unknown; unloaded?: unknown; from?: unknown };
    if (p.from === this.id || typeof p.model !== 'string' || this.#stopped) return;
    const model = p.model;
    const unloaded = Array.isArray(p.unloaded) ? p.unloaded.filter((v): v is string => typeof v === 'string') : [];
    this.#d.track(
      (async () => {
        for (const v of unloaded) if (this.#d.repository.isReady(model, v)) await this.#d.repository.unload(model, v).catch(() => []);
        await this.reconcile();
      })(),
    );
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopped) return;
    const serving: ServedModel[] = this.#d.repository.list().map((m) => ({ name: m.name, version: m.version, default: m.isDefault, alias: m.alias ?? null }));
    const beat: ReplicaHeartbeat = { id: this.id, host: os.hostname(), serving, problems: this.#d.problems(), startedAt: this.#startedAt, heartbeatAt: Date.now() };
    await this.#d.store.heartbeat(beat).catch((err: unknown) => this.#d.logger.warn({ err }, 'could not record the heartbeat of this replica'));
  }
}
