import type { AuditLog } from '../../core/audit/index.js';
import { AppError } from '../../core/errors.js';
import type { PredictionSource } from '../store/prediction-source.js';
import type { FeedbackStore } from '../store/feedback-store.js';
import type { Feedback } from '../store/types.js';
import type { MonitoringMetrics } from './model-metrics.js';
import { rollingPerformance, type RollingPerformance } from './performance.js';

/**
 * Ground-truth labels that arrive after the prediction (a confirmed diagnosis), and the rolling
 * performance computed from them.
 */
export class FeedbackService {
  readonly #d: { predictions: PredictionSource; feedback: FeedbackStore; audit: AuditLog; metrics: MonitoringMetrics; window: number };

  constructor(deps: { predictions: PredictionSource; feedback: FeedbackStore; audit: AuditLog; metrics: MonitoringMetrics; window: number }) {
    this.#d = deps;
  }

  /**
   * Records the confirmed label of a prediction (replacing an earlier one).
   * @throws AppError NOT_FOUND when the prediction does not exist.
   */
  async record(predictionId: string, label: 0 | 1, actor: string, requestId?: string): Promise<{ feedback: Feedback; replaced: boolean }> {
    const p = await this.#d.predictions.get(predictionId);
    if (!p) throw new AppError('NOT_FOUND', `prediction '${predictionId}' does not exist`);
    const feedback: Feedback = {
      predictionId,
      model: p.model,
      version: p.version,
      label,
      probability: p.probability,
      threshold: p.threshold,
      predictedAt: p.time,
      actor,
      createdAt: Date.now(),
    };
    const replaced = await this.#d.feedback.upsert(feedback);
    this.#d.metrics.feedbackTotal.inc({ model: p.model });
    this.#d.metrics.invalidate();
    this.#d.audit.record({
      actor,
      action: 'prediction.feedback',
      resource: `prediction/${predictionId}`,
      requestId,
      service: 'monitoring',
      details: { label, model: p.model, version: p.version, replaced },
    });
    return { feedback, replaced };
  }

  /** Rolling AUC/sensitivity/specificity over the most recent labelled predictions of a version. */
  async performance(model: string, version: string, window?: number): Promise<RollingPerformance> {
    return rollingPerformance(await this.#d.feedback.recent(model, version, window ?? this.#d.window));
  }
}
