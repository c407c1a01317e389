import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { startService, type ServiceHarness } from '../helpers/service-harness.js';

export const TINY_MODEL = path.resolve(import.meta.dirname, '../fixtures/tiny-model.onnx');
export const NO_FEATURES_MODEL = path.resolve(import.meta.dirname, 'fixtures/tiny-model-nofeatures.onnx');

export type Harness = ServiceHarness;

/** The tests' fixture models live under test/: it is the import root models may be loaded from. */
export const FIXTURE_ROOT = path.resolve(import.meta.dirname, '..');

/** A deployment app on a fresh temporary platform (SQLite, fs objects, memory cache). */
export function startDeployment(overrides: Record<string, string> = {}): Promise<Harness> {
  return startService(buildDeploymentApp, 'deployment', { XRAY_IMPORT_ROOT: FIXTURE_ROOT, ...overrides });
}

export interface LoadOptions {
  path?: string;
  name?: string;
  version?: string;
  batching?: { max_batch_size?: number; max_queue_delay_ms?: number; max_queue_size?: number };
  default?: boolean;
}

/** POST /models/load a local ONNX file; throws unless 200. */
export async function loadModel(app: FastifyInstance, opts: LoadOptions = {}): Promise<Record<string, unknown>> {
  const res = await app.inject({ method: 'POST', url: '/models/load', payload: { path: opts.path ?? TINY_MODEL, ...opts } });
  if (res.statusCode !== 200) throw new Error(`load failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** A multipart/form-data body with one file part per entry. */
export function multipart(files: { name?: string; filename: string; type: string; data: Uint8Array }[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----xray${Math.random().toString(16).slice(2)}`;
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.name ?? 'file'}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`),
      Buffer.from(f.data),
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export function predictRaw(app: FastifyInstance, image: Uint8Array, type = 'image/png', query = '', headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: `/predict${query}`, payload: Buffer.from(image), headers: { 'content-type': type, ...headers } });
}
