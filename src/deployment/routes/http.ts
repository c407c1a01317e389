import type { FastifyRequest } from 'fastify';
import type { Caller, Prediction } from '../dataplane.js';
import type { PredictionRecord } from '../store/prediction-store.js';
import type { z } from 'zod';
import type { predictionRecordSchema, predictionSchema } from './schemas.js';

/** Wire ↔ data plane helpers shared by the deployment routes. */

export function callerOf(req: FastifyRequest): Caller {
  return { actor: req.principal?.name ?? 'anonymous', requestId: req.id };
}

/** URL prefix the gateway mounted us under (`x-forwarded-prefix`), so links work through it. */
export function prefixOf(req: FastifyRequest): string {
  const p = req.headers['x-forwarded-prefix'];
  return typeof p === 'string' && /^\/[A-Za-z0-9/_.-]{0,200}$/.test(p) ? p.replace(/\/$/, '') : '';
}

export function clientKeyOf(req: FastifyRequest, fromQuery?: string): string | null {
  const h = req.headers['x-client-key'];
  const header = Array.isArray(h) ? h[0] : h;
  return (header && header.length <= 256 ? header : null) ?? fromQuery ?? null;
}

export function heatmapUrl(req: FastifyRequest, predictionId: string): string {
  return `${prefixOf(req)}/predictions/${encodeURIComponent(predictionId)}/heatmap.png`;
}

export function toPredictionBody(req: FastifyRequest, p: Prediction): z.infer<typeof predictionSchema> {
  const body: z.infer<typeof predictionSchema> = {
    prediction_id: p.predictionId,
    model: p.model,
    variant: p.variant,
    probability: p.probability,
    label: p.label,
    threshold: p.threshold,
    heatmap_url: heatmapUrl(req, p.predictionId),
    heatmap_method: p.heatmapMethod,
    cached: p.cached,
    timings_ms: roundTimings(p.timingsMs),
  };
  if (p.heatmapPng) body.heatmap_png_base64 = p.heatmapPng.toString('base64');
  return body;
}

function roundTimings<T extends object>(t: T): T {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round((v as number) * 1000) / 1000])) as T;
}

export function toRecordBody(req: FastifyRequest, r: PredictionRecord): z.infer<typeof predictionRecordSchema> {
  return {
    id: r.id,
    time: r.time,
    model: { name: r.modelName, version: r.modelVersion },
    variant: r.variant,
    shadow: r.shadow,
    probability: r.probability,
    label: r.label,
    threshold: r.threshold,
    image_sha256: r.imageSha256,
    heatmap_method: r.heatmapMethod,
    heatmap_url: r.heatmapMethod && !r.shadow ? heatmapUrl(req, r.id) : null,
    stats: r.stats as unknown as Record<string, number | string> | null,
    embedding: r.embedding,
    latency_ms: r.latencyMs,
    request_id: r.requestId,
    actor: r.actor,
    cached: r.cached,
  };
}

export { readManyImages, readSingleImage } from '../../core/http/request-images.js';
