import { createHash } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import type { RoutingConfig, RoutingVariant } from '../store/routing-store.js';

/** Where one request goes: the variant that answers and the shadows that get a copy. */
export interface RouteDecision {
  variant: RoutingVariant;
  shadows: RoutingVariant[];
  mode: 'split' | 'shadow';
}

const MAX_VARIANTS = 8;

/**
 * Checks and completes a routing config: 2–8 variants with distinct versions, names defaulting to
 * A, B, C…, non-negative weights with a positive sum in split mode.
 * @throws AppError INVALID_INPUT.
 */
export function normaliseRouting(input: {
  model: string;
  mode: 'split' | 'shadow';
  sticky?: boolean;
  variants: { name?: string; version: string; weight?: number }[];
}, actor: string): RoutingConfig {
  const { model, mode, variants } = input;
  if (variants.length < 2 || variants.length > MAX_VARIANTS) {
    throw new AppError('INVALID_INPUT', `routing needs 2 to ${MAX_VARIANTS} variants, got ${variants.length}`);
  }
  const versions = new Set(variants.map((v) => v.version));
  if (versions.size !== variants.length) throw new AppError('INVALID_INPUT', 'each routing variant must name a different version');
  const out: RoutingVariant[] = variants.map((v, i) => ({
    name: v.name ?? String.fromCharCode(65 + i),
    version: v.version,
    weight: v.weight ?? (mode === 'shadow' ? (i === 0 ? 1 : 0) : 1),
  }));
  if (new Set(out.map((v) => v.name)).size !== out.length) throw new AppError('INVALID_INPUT', 'variant names must be distinct');
  for (const v of out) {
    if (!(Number.isFinite(v.weight) && v.weight >= 0)) throw new AppError('INVALID_INPUT', `variant ${v.name}: weight must be a number ≥ 0`);
    if (!/^[A-Za-z0-9._-]{1,32}$/.test(v.name)) throw new AppError('INVALID_INPUT', `variant name '${v.name}' must be 1–32 of A-Z a-z 0-9 . _ -`);
  }
  if (mode === 'split' && out.reduce((s, v) => s + v.weight, 0) <= 0) throw new AppError('INVALID_INPUT', 'split weights must not all be 0');
  return { model, mode, sticky: input.sticky ?? true, variants: out, updatedBy: actor, updatedAt: Date.now() };
}

/** A number in [0, 1) fixed by (model, client key): the same client lands on the same variant. */
export function stickyPoint(model: string, clientKey: string): number {
  return createHash('sha256').update(model).update('\0').update(clientKey).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * A/B and shadow routing per model name. In split mode a request picks a variant by weight — by a
 * hash of its client key when the config is sticky and a key is given, at random otherwise. In
 * shadow mode the first variant answers and every other one receives a mirrored copy.
 */
export class AbRouter {
  readonly #configs = new Map<string, RoutingConfig>();

  set(config: RoutingConfig): void {
    this.#configs.set(config.model, config);
  }

  delete(model: string): void {
    this.#configs.delete(model);
  }

  get(model: string): RoutingConfig | null {
    return this.#configs.get(model) ?? null;
  }

  list(): RoutingConfig[] {
    return [...this.#configs.values()];
  }

  /** Versions a config keeps in use (they must stay loaded). */
  pinned(model: string): Set<string> {
    return new Set(this.#configs.get(model)?.variants.map((v) => v.version) ?? []);
  }

  /** The route for one request, or null when the model has no routing config. */
  route(model: string, clientKey?: string | null, random: () => number = Math.random): RouteDecision | null {
    const config = this.#configs.get(model);
    if (!config) return null;
    if (config.mode === 'shadow') {
      const [primary, ...shadows] = config.variants;
      return { variant: primary!, shadows, mode: 'shadow' };
    }
    const total = config.variants.reduce((s, v) => s + v.weight, 0);
    const point = (config.sticky && clientKey ? stickyPoint(model, clientKey) : random()) * total;
    let acc = 0;
    for (const v of config.variants) {
      acc += v.weight;
      if (point < acc && v.weight > 0) return { variant: v, shadows: [], mode: 'split' };
    }
    const last = [...config.variants].reverse().find((v) => v.weight > 0)!;
    return { variant: last, shadows: [], mode: 'split' };
  }
}
