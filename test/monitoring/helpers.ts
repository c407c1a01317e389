import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { Platform } from '../../src/core/platform.js';
import { Rng } from '../../src/core/ml/random.js';
import { imageStats } from '../../src/core/imaging/stats.js';
import { renderChestXray } from '../../src/core/imaging/synthetic.js';
import { buildMonitoringApp } from '../../src/monitoring/app.js';
import { startService, type ServiceHarness } from '../helpers/service-harness.js';
import { KyselyPredictionStore, type PredictionRecord, type PredictionStats } from '../../src/deployment/store/prediction-store.js';

export type Harness = ServiceHarness;

/** A monitoring app on a fresh temporary platform (SQLite, fs objects). */
export function startMonitoring(overrides: Record<string, string> = {}): Promise<Harness> {
  return startService(buildMonitoringApp, 'monitoring', overrides);
}

export interface ImageVariant {
  invert?: boolean;
  exposure?: number;
}

/**
 * Per-image statistics of synthetic chest X-rays (48×48; half with pneumonia), shaped like the
 * deployment service's PredictionStats. Seeds `from … from+n-1`.
 */
export function renderedStats(from: number, n: number, variant: ImageVariant = {}): PredictionStats[] {
  const out: PredictionStats[] = [];
  for (let i = from; i < from + n; i++) {
    const img = renderChestXray({ seed: i, size: 48, pneumonia: i % 2 === 0, ...variant });
    out.push({ ...imageStats(img.pixels, img.width, img.height), sourceFormat: 'png', sourceWidth: 48, sourceHeight: 48 });
  }
  return out;
}

/** 64-d embeddings: class signal in the first 8 dimensions, `shift` added to the first 16. */
export function embeddings(rng: Rng, labels: number[], shift = 0): number[][] {
  return labels.map((y) => {
    const e = new Array<number>(64);
    for (let k = 0; k < 64; k++) e[k] = rng.normal() + (k < 8 && y === 1 ? 0.8 : 0) + (k < 16 ? shift : 0);
    return e;
  });
}

/** Positive-class probabilities given true labels (AUC ≈ 0.9 with separation 2.5). */
export function probabilities(rng: Rng, labels: number[], separation = 2.5): number[] {
  return labels.map((y) => 1 / (1 + Math.exp(-(rng.normal() + (y === 1 ? separation / 2 : -separation / 2)))));
}

export function labelsWithRate(rng: Rng, n: number, positiveRate: number): number[] {
  return Array.from({ length: n }, () => (rng.next() < positiveRate ? 1 : 0));
}

export interface PredictionSpec {
  model?: string;
  version?: string;
  variant?: string;
  start: number;
  stepMs?: number;
  stats: PredictionStats[];
  embeddings: number[][];
  probabilities: number[];
  latencyMs?: number;
  idPrefix: string;
}

/** Prediction records like the deployment service writes them. */
export function predictionRecords(spec: PredictionSpec): PredictionRecord[] {
  return spec.probabilities.map((p, i) => ({
    id: `${spec.idPrefix}-${i}`,
    time: spec.start + i * (spec.stepMs ?? 10),
    modelName: spec.model ?? 'pneumonia',
    modelVersion: spec.version ?? '1',
    variant: spec.variant ?? 'default',
    shadow: false,
    probability: p,
    label: p >= 0.5 ? 'PNEUMONIA' : 'NORMAL',
    threshold: 0.5,
    imageSha256: `${i}`.padStart(64, '0'),
    heatmapMethod: null,
    stats: spec.stats[i % spec.stats.length] ?? null,
    embedding: spec.embeddings[i] ?? null,
    latencyMs: spec.latencyMs ?? 20 + (i % 7),
    requestId: `req-${spec.idPrefix}-${i}`,
    actor: 'tester',
    cached: false,
  }));
}

/** Writes records through the deployment service's prediction store. */
export async function insertPredictions(platform: Platform, records: PredictionRecord[]): Promise<void> {
  await new KyselyPredictionStore(platform.database).insertMany(records);
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** An HTTP receiver on 127.0.0.1:0 answering every POST with `status`. */
export async function startReceiver(status = 200): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep text
      }
      received.push({ headers: req.headers, body });
      res.statusCode = status;
      res.end(status < 300 ? 'ok' : 'receiver failure');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SmtpSink {
  url: string;
  messages: { from: string; to: string[]; raw: string }[];
  close(): Promise<void>;
}

/** A local SMTP server on 127.0.0.1:0 that accepts everything (no TLS, no auth). */
export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: SmtpSink['messages'] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, messages, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Polls `fn` until it returns a truthy value (or fails after `timeoutMs`). */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { Rng };
