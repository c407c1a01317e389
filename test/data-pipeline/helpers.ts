import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { PlatformOverrides } from '../../src/core/platform.js';
import { buildDataPipelineApp } from '../../src/data-pipeline/app.js';
import { startService, type ServiceHarness } from '../helpers/service-harness.js';

export type Pipeline = ServiceHarness;

/** A data pipeline app on a fresh platform in a temp XRAY_HOME, which is also the import root. */
export function openPipeline(overrides: Record<string, string> = {}, platformOverrides: PlatformOverrides = {}): Promise<Pipeline> {
  return startService(buildDataPipelineApp, 'dp-test', (home) => ({ XRAY_IMPORT_ROOT: home, ...overrides }), platformOverrides);
}

/** Multipart body: fields first (in order), then files. */
export function form(fields: Record<string, string>, files: { name: string; bytes: Uint8Array }[]): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  for (const f of files) fd.append('file', new Blob([new Uint8Array(f.bytes)]), f.name);
  return fd;
}

/** Waits for an import job to finish and returns its final status. */
export async function waitForImport(app: FastifyInstance, jobId: string, timeoutMs = 20_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `/import/${jobId}` });
    const body = res.json();
    if (body.state === 'completed' || body.state === 'failed') return body;
    if (Date.now() > until) throw new Error(`import ${jobId} still ${body.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every regular file under a folder (recursive), as absolute paths. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Files under XRAY_HOME/objects/images (the stored originals). */
export function storedImageObjects(home: string): string[] {
  return filesUnder(path.join(home, 'objects', 'images'));
}

/** Whether any file under `dir` contains `needle` (as UTF-8 bytes). */
export function anyFileContains(dir: string, needle: string): string | null {
  const bytes = Buffer.from(needle, 'utf8');
  for (const f of filesUnder(dir)) if (readFileSync(f).includes(bytes)) return f;
  return null;
}
