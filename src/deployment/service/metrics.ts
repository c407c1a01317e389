import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type Stage = 'preprocess' | 'queue' | 'inference' | 'heatmap' | 'total';

/** The deployment service's Prometheus metrics, registered on the app's registry. */
export class DeploymentMetrics {
  readonly stageSeconds: Histogram<'stage' | 'model' | 'version'>;
  readonly batchSize: Histogram<'model' | 'version'>;
  readonly queueDepth: Gauge<'model' | 'version'>;
  readonly predictions: Counter<'model' | 'version' | 'variant' | 'label' | 'cached' | 'shadow'>;
  readonly cacheLookups: Counter<'result'>;
  readonly failures: Counter<'model' | 'variant' | 'code'>;
  readonly modelLoads: Counter<'model' | 'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.stageSeconds = new Histogram({
      name: 'xray_deployment_stage_seconds',
      help: 'Prediction latency per stage (preprocess, queue, inference, heatmap, total)',
      labelNames: ['stage', 'model', 'version'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'xray_deployment_batch_size',
      help: 'Images per model call made by the dynamic batcher',
      labelNames: ['model', 'version'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'xray_deployment_queue_depth',
      help: 'Requests waiting in a model batcher',
      labelNames: ['model', 'version'],
      registers,
    });
    this.predictions = new Counter({
      name: 'xray_deployment_predictions_total',
      help: 'Predictions by model, version, variant, label, cache use and shadow flag',
      labelNames: ['model', 'version', 'variant', 'label', 'cached', 'shadow'],
      registers,
    });
    this.cacheLookups = new Counter({
      name: 'xray_deployment_cache_lookups_total',
      help: 'Prediction cache lookups by result (hit, miss)',
      labelNames: ['result'],
      registers,
    });
    this.failures = new Counter({
      name: 'xray_deployment_prediction_failures_total',
      help: 'Failed predictions by model, variant and error code',
      labelNames: ['model', 'variant', 'code'],
      registers,
    });
    this.modelLoads = new Counter({
      name: 'xray_deployment_model_loads_total',
      help: 'Model loads by outcome (success, failure)',
      labelNames: ['model', 'outcome'],
      registers,
    });
  }

  observeStage(stage: Stage, model: string, version: string, ms: number): void {
    this.stageSeconds.observe({ stage, model, version }, ms / 1000);
  }
}
