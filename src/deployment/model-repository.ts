import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AppError } from '../core/errors.js';
import { sha256Hex } from '../core/objects/index.js';
import { DEFAULT_BATCHING, GPU_BATCHING, checkBatching, type BatchingOptions } from './service/batcher.js';
import { executionProviders } from './service/execution-providers.js';
import type { DeploymentMetrics } from './service/metrics.js';
import type { ModelSource } from './service/model-source.js';
import { OnnxModel, type ModelDescription, type ModelIdentity } from './service/onnx-model.js';

export interface LoadOptions {
  /** Overrides of the default batching knobs for this model version. */
  batching?: Partial<BatchingOptions>;
  /**
   * Serve this version when a request names no version (default true). The version it replaces
   * is unloaded after its in-flight requests finish, unless routing still uses it.
   */
  makeDefault?: boolean;
}

/** Load through the model source (registry) by version or alias. */
export interface RegistryLoad extends LoadOptions {
  name: string;
  version?: string;
  alias?: string;
}

/** Load an ONNX file from disk (development). */
export interface LocalLoad extends LoadOptions {
  path: string;
  name?: string;
  version?: string;
}

export interface LoadedModelInfo extends ModelDescription {
  /** true for the version served when a request names none. */
  isDefault: boolean;
  stats: { batches: number; items: number; meanBatchSize: number };
}

export interface ModelRepositoryOptions {
  logger?: Logger;
  metrics?: DeploymentMetrics;
  source?: ModelSource | null;
  defaultBatching?: Partial<BatchingOptions>;
  /** Intra-op threads per session (default: cores). */
  threads?: number;
  /** ORT intra-op thread spinning (default off; see ModelOptions.spinning). */
  spinning?: boolean;
  /** Folders local ONNX paths must be under (resolved, symlinks followed). */
  allowedRoots: string[];
  /** Name given to local models loaded without one. */
  defaultName: string;
  /** Versions routing still needs; they are not unloaded when a new default replaces them. */
  isPinned?: (name: string, version: string) => boolean;
}

interface Entry {
  defaultVersion: string | null;
  /** Registry alias the default was loaded through ('production'); followed on alias events. */
  followAlias: string | null;
  versions: Map<string, OnnxModel>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Owns the ONNX sessions (KServe's model repository): loads from the registry or a local file,
 * warms up, and swaps atomically — the old session keeps serving until the new one is warm, the
 * reference is swapped in one step, and the old one is disposed after its in-flight requests
 * drain, so a swap fails no request. The data plane only looks models up.
 */
export class ModelRepository {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<OnnxModel>>();
  /** Loads in progress per model name, from the registry lookup to the swap (not only the session build). */
  readonly #pending = new Map<string, Set<Promise<unknown>>>();
  readonly #options: ModelRepositoryOptions;
  readonly #defaultBatching: BatchingOptions;
  #source: ModelSource | null;
  #closed = false;

  constructor(options: ModelRepositoryOptions) {
    this.#options = options;
    this.#source = options.source ?? null;
    const onGpu = executionProviders()[0] === 'cuda';
    this.#defaultBatching = { ...DEFAULT_BATCHING, ...(onGpu ? GPU_BATCHING : {}), ...options.defaultBatching };
    checkBatching(this.#defaultBatching);
  }

  get hasSource(): boolean {
    return this.#source !== null;
  }

  get source(): ModelSource | null {
    return this.#source;
  }

  /** The version `ref` (a version or an alias) resolves to in the registry, or null when it does not. */
  async resolveVersion(name: string, ref: string): Promise<string | null> {
    if (!this.#source) return null;
    return this.#source.resolve(name, ref).then((r) => r.version, () => null);
  }

  setSource(source: ModelSource | null): void {
    this.#source = source;
  }

  /** true while any load is in progress. */
  get loading(): boolean {
    return this.#loading.size > 0;
  }

  /**
   * Loads a registry model by version or alias (default alias 'production').
   * @throws AppError SERVICE_UNAVAILABLE without a registry; the source's errors; UNPROCESSABLE
   *   for a model that breaks the serving contract.
   */
  load(req: RegistryLoad): Promise<LoadedModelInfo> {
    return this.#trackPending(req.name, this.#loadFromRegistry(req));
  }

  /** true while a load of `name` is in progress (any version). */
  isLoading(name: string): boolean {
    return (this.#pending.get(name)?.size ?? 0) > 0 || this.#loadingName(name);
  }

  /**
   * Waits, at most `timeoutMs`, for the loads of `name` in progress to finish — so a request that
   * arrives while a replica is loading its model is answered once it is in, not refused. Returns
   * at once when `name` (and `version`) is ready or nothing is loading it.
   */
  async whenLoaded(name: string, version: string | null | undefined, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isReady(name, version) && this.isLoading(name)) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      const loads = [...(this.#pending.get(name) ?? []), ...[...this.#loading].filter(([k]) => k.startsWith(`${name}@`)).map(([, p]) => p)];
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(loads), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  }

  #trackPending<T>(name: string, p: Promise<T>): Promise<T> {
    let set = this.#pending.get(name);
    if (!set) this.#pending.set(name, (set = new Set()));
    set.add(p);
    const done = (): void => {
      set.delete(p);
      if (set.size === 0 && this.#pending.get(name) === set) this.#pending.delete(name);
    };
    p.then(done, done);
    return p;
  }

  async #loadFromRegistry(req: RegistryLoad): Promise<LoadedModelInfo> {
    if (!this.#source) {
      throw new AppError('SERVICE_UNAVAILABLE', 'no model registry is available to this deployment service; load a local ONNX file with {path}');
    }
    checkName(req.name);
    const ref = req.version ?? req.alias ?? 'production';
    const resolved = await this.#source.resolve(req.name, ref);
    const existing = this.#entries.get(resolved.name)?.versions.get(resolved.version);
    if (existing && existing.state === 'ready' && !req.batching) {
      // Already serving this version: only the default pointer may move.
      this.#setDefault(resolved.name, resolved.version, req.makeDefault ?? true, req.version ? null : resolved.alias);
      return this.info(resolved.name, resolved.version);
    }
    const bytes = await resolved.fetch();
    const identity: ModelIdentity = {
      name: resolved.name,
      version: resolved.version,
      alias: resolved.alias,
      source: { kind: 'registry', uri: resolved.uri },
      preprocessing: resolved.preprocessing,
      threshold: resolved.threshold,
      temperature: resolved.temperature ?? null,
    };
    await this.loadBytes(bytes, identity, { ...req, followAlias: req.version ? null : resolved.alias });
    return this.info(resolved.name, resolved.version);
  }

  /**
   * Loads an ONNX file from disk (development). The path must be under one of the allowed roots.
   * Name defaults to the service's default model name; version to `local-<sha256 prefix>`.
   * @throws AppError FORBIDDEN outside the allowed roots, NOT_FOUND when missing, UNPROCESSABLE.
   */
  async loadLocal(req: LocalLoad): Promise<LoadedModelInfo> {
    const file = await this.#checkPath(req.path);
    const bytes = await readFile(file);
    const name = req.name ?? this.#options.defaultName;
    checkName(name);
    const version = req.version ?? `local-${sha256Hex(bytes).slice(0, 12)}`;
    checkName(version, 'version');
    await this.loadBytes(bytes, { name, version, alias: null, source: { kind: 'file', uri: file } }, { ...req, followAlias: null });
    return this.info(name, version);
  }

  /**
   * Creates, checks and warms a session from bytes, then swaps it in. Concurrent loads of the
   * same name and version share one session.
   */
  async loadBytes(bytes: Uint8Array, identity: ModelIdentity, opts: LoadOptions & { followAlias?: string | null } = {}): Promise<OnnxModel> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the model repository is closed');
    checkName(identity.name);
    checkName(identity.version, 'version');
    const key = `${identity.name}@${identity.version}`;
    const inFlight = this.#loading.get(key);
    if (inFlight) {
      const model = await inFlight;
      this.#setDefault(identity.name, identity.version, opts.makeDefault ?? true, opts.followAlias ?? null);
      return model;
    }
    const batching = { ...this.#defaultBatching, ...opts.batching };
    checkBatching(batching);
    const metrics = this.#options.metrics;
    const labels = { model: identity.name, version: identity.version };
    const started = performance.now();
    const p = OnnxModel.create(bytes, identity, {
      batching,
      threads: this.#options.threads,
      spinning: this.#options.spinning,
      logger: this.#options.logger,
      hooks: metrics
        ? {
            onBatch: (size) => metrics.batchSize.observe(labels, size),
            onDepth: (depth) => metrics.queueDepth.set(labels, depth),
          }
        : {},
    });
    this.#loading.set(key, p);
    let model: OnnxModel;
    try {
      model = await p;
    } catch (err) {
      metrics?.modelLoads.inc({ model: identity.name, outcome: 'failure' });
      throw err;
    } finally {
      this.#loading.delete(key);
    }
    if (this.#closed) {
      await model.retire();
      throw new AppError('SERVICE_UNAVAILABLE', 'the model repository closed during the load');
    }
    metrics?.modelLoads.inc({ model: identity.name, outcome: 'success' });
    const entry = this.#entry(identity.name);
    const replaced = entry.versions.get(identity.version);
    entry.versions.set(identity.version, model); // the swap: new requests see the new session from here on
    this.#setDefault(identity.name, identity.version, opts.makeDefault ?? true, opts.followAlias ?? null);
    if (replaced && replaced !== model) void replaced.retire();
    this.#options.logger?.info(
      { model: identity.name, version: identity.version, ms: Math.round(performance.now() - started), heatmap: model.heatmapMethod },
      'model loaded',
    );
    return model;
  }

  /**
   * Unloads one version, or every version of a model. Requests in flight finish first.
   * @returns the versions unloaded.
   * @throws AppError MODEL_NOT_FOUND when nothing matches; CONFLICT when routing still uses it.
   */
  async unload(name: string, version?: string): Promise<string[]> {
    const entry = this.#entries.get(name);
    const versions = version ? [version] : [...(entry?.versions.keys() ?? [])];
    if (!entry || versions.length === 0 || versions.some((v) => !entry.versions.has(v))) {
      throw new AppError('MODEL_NOT_FOUND', `model '${name}'${version ? ` version '${version}'` : ''} is not loaded`);
    }
    const pinned = versions.filter((v) => this.#options.isPinned?.(name, v));
    if (pinned.length > 0) {
      throw new AppError('CONFLICT', `routing for '${name}' still uses version(s) ${pinned.join(', ')}; change or delete the routing first`);
    }
    const retiring: Promise<void>[] = [];
    for (const v of versions) {
      retiring.push(entry.versions.get(v)!.retire());
      entry.versions.delete(v);
      this.#options.metrics?.queueDepth.remove({ model: name, version: v });
    }
    if (entry.defaultVersion && !entry.versions.has(entry.defaultVersion)) {
      entry.defaultVersion = entry.versions.size === 1 ? [...entry.versions.keys()][0]! : null;
      entry.followAlias = null;
    }
    if (entry.versions.size === 0) this.#entries.delete(name);
    await Promise.all(retiring);
    return versions;
  }

  /**
   * The model that serves `name` (and `version`, else the default version).
   * @throws AppError MODEL_NOT_READY when it is not loaded.
   */
  lookup(name: string, version?: string | null): OnnxModel {
    const entry = this.#entries.get(name);
    const v = version ?? entry?.defaultVersion ?? null;
    const model = v ? entry?.versions.get(v) : undefined;
    if (!model || model.state !== 'ready') {
      const loaded = entry ? [...entry.versions.keys()] : [];
      const hint = loaded.length
        ? ` (loaded versions: ${loaded.join(', ')})`
        : this.#loadingName(name)
          ? ' (it is loading; retry shortly)'
          : '; load it with POST /models/load';
      throw new AppError('MODEL_NOT_READY', `model '${name}'${version ? ` version '${version}'` : ''} is not loaded${hint}`, { retryAfter: 5 });
    }
    return model;
  }

  /** true when `name` (and `version`, else its default) is loaded and ready. */
  isReady(name: string, version?: string | null): boolean {
    try {
      this.lookup(name, version);
      return true;
    } catch {
      return false;
    }
  }

  /** Names with at least one loaded version. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  defaultVersion(name: string): string | null {
    return this.#entries.get(name)?.defaultVersion ?? null;
  }

  /** The alias the default version of `name` follows ('production'), if any. */
  followedAlias(name: string): string | null {
    return this.#entries.get(name)?.followAlias ?? null;
  }

  info(name: string, version: string): LoadedModelInfo {
    const entry = this.#entries.get(name);
    const model = entry?.versions.get(version);
    if (!entry || !model) throw new AppError('MODEL_NOT_FOUND', `model '${name}' version '${version}' is not loaded`);
    return { ...model.describe(), isDefault: entry.defaultVersion === version, stats: model.batcher.stats };
  }

  list(): LoadedModelInfo[] {
    const out: LoadedModelInfo[] = [];
    for (const [name, entry] of this.#entries) for (const version of entry.versions.keys()) out.push(this.info(name, version));
    return out;
  }

  /** Unloads everything (waiting for in-flight requests). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#loading.values()]);
    const all = [...this.#entries.values()].flatMap((e) => [...e.versions.values()]);
    this.#entries.clear();
    await Promise.all(all.map((m) => m.retire()));
  }

  #entry(name: string): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      entry = { defaultVersion: null, followAlias: null, versions: new Map() };
      this.#entries.set(name, entry);
    }
    return entry;
  }

  #setDefault(name: string, version: string, makeDefault: boolean, followAlias: string | null): void {
    const entry = this.#entry(name);
    if (!makeDefault && entry.defaultVersion) return;
    const previous = entry.defaultVersion;
    entry.defaultVersion = version;
    entry.followAlias = followAlias;
    if (previous && previous !== version && !this.#options.isPinned?.(name, previous)) {
      const old = entry.versions.get(previous);
      entry.versions.delete(previous);
      this.#options.metrics?.queueDepth.remove({ model: name, version: previous });
      if (old) void old.retire();
    }
  }

  #loadingName(name: string): boolean {
    return [...this.#loading.keys()].some((k) => k.startsWith(`${name}@`));
  }

  async #checkPath(p: string): Promise<string> {
    if (typeof p !== 'string' || p.length === 0 || p.includes('\0')) throw new AppError('INVALID_INPUT', 'path must be a non-empty file path');
    const abs = path.resolve(p);
    const lexical = this.#options.allowedRoots.map((r) => path.resolve(r));
    const roots = await Promise.all(lexical.map((r) => realpath(r).catch(() => r)));
    const under = (candidate: string, list: string[]) => list.some((r) => candidate === r || candidate.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
    // One answer for every path outside the roots, existing or not, so the API does not reveal what exists there.
    const outside = () => new AppError('FORBIDDEN', 'model files may only be loaded from under XRAY_HOME or XRAY_IMPORT_ROOT');
    if (!under(abs, [...lexical, ...roots])) throw outside();
    let real: string;
    try {
      real = await realpath(abs);
    } catch {
      throw new AppError('NOT_FOUND', `model file '${abs}' does not exist`);
    }
    if (!under(real, roots)) throw outside();
    const st = await stat(real);
    if (!st.isFile()) throw new AppError('INVALID_INPUT', `'${abs}' is not a file`);
    return real;
  }
}

function checkName(value: string, what = 'model name'): void {
  if (!NAME.test(value)) throw new AppError('INVALID_INPUT', `${what} '${value}' must be 1–128 of A-Z a-z 0-9 . _ - (starting with a letter or digit)`);
}
