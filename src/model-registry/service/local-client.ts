import { isAppError } from '../../core/errors.js';
import type { ModelRegistryClient, ModelVersionView, RegisterVersionRequest, RegistryCallContext, RunTracker } from '../client/types.js';
import { toVersionView } from '../routes/views.js';
import type { Actor, ModelRegistryService } from './registry-service.js';
import { StoreRunTracker } from './store-run-tracker.js';

const SYSTEM: Actor = { name: 'system', role: 'admin' };

/** The registry's client in embedded mode: the same calls its routes make, without HTTP. */
export class LocalModelRegistryClient implements ModelRegistryClient {
  readonly target = 'in-process';
  readonly #service: ModelRegistryService;
  readonly tracking: RunTracker;

  constructor(service: ModelRegistryService) {
    this.#service = service;
    this.tracking = new StoreRunTracker(service.tracking.store);
  }

  async getVersion(name: string, versionOrAlias: string | number): Promise<ModelVersionView> {
    return toVersionView(await this.#service.resolve(name, versionOrAlias));
  }

  async artifact(name: string, version: number, path: string): Promise<Buffer | null> {
    try {
      return (await this.#service.getArtifact(name, version, path)).data;
    } catch (err) {
      if (isAppError(err) && err.code === 'NOT_FOUND' && (err.details as { missing?: string } | undefined)?.missing === 'artifact') return null;
      throw err;
    }
  }

  async register(request: RegisterVersionRequest, ctx: RegistryCallContext = {}): Promise<ModelVersionView> {
    const version = await this.#service.register({
      ...request,
      actor: (ctx.actor as Actor | undefined) ?? SYSTEM,
      // In-process callers are this platform's own services.
      fromService: true,
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
    });
    return toVersionView(version);
  }
}
