import type { PredictionSource, TrafficGroup } from '../store/prediction-source.js';
import type { OutcomeSource } from '../store/outcome-source.js';
import type { AlertService } from './alert-service.js';

export interface TrafficRuleOptions {
  windowMs: number;
  latencyP95Ms: number;
  errorRate: number;
  positiveRateJump: number;
  minCount: number;
}

export interface RuleOutcome {
  rule: string;
  model: string;
  version: string;
  firing: boolean;
  value: number;
  threshold: number;
}

interface VersionTraffic {
  model: string;
  version: string;
  count: number;
  positives: number;
  latencies: number[];
}

function byVersion(groups: TrafficGroup[]): Map<string, VersionTraffic> {
  const out = new Map<string, VersionTraffic>();
  for (const g of groups) {
    const key = `${g.model}\u0000${g.version}`;
    const v = out.get(key) ?? { model: g.model, version: g.version, count: 0, positives: 0, latencies: [] };
    v.count += g.count;
    v.positives += g.positives;
    for (const l of g.latenciesMs) v.latencies.push(l);
    out.set(key, v);
  }
  return out;
}

function p95(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

/**
 * Rules on live traffic, evaluated on demand and on the drift schedule:
 * - `latency_high` (warning): a model version's p95 latency over the window above the limit;
 * - `positive_rate_jump` (warning): the positive rate moved by at least the jump between the
 *   previous and the current window;
 * - `error_rate_high` (critical): share of failed prediction requests (audit trail) above the limit.
 * Each rule needs `minCount` requests in the window(s) to fire or clear; otherwise it is left as is.
 */
export async function evaluateTrafficRules(
  deps: { predictions: PredictionSource; outcomes: OutcomeSource; alerts: AlertService },
  o: TrafficRuleOptions,
  now = Date.now(),
): Promise<RuleOutcome[]> {
  const [current, previous, outcome] = await Promise.all([
    deps.predictions.traffic(now - o.windowMs, now),
    deps.predictions.traffic(now - 2 * o.windowMs, now - o.windowMs - 1),
    deps.outcomes.counts(now - o.windowMs, now),
  ]);
  const cur = byVersion(current);
  const prev = byVersion(previous);
  const results: RuleOutcome[] = [];
  const minutes = Math.round(o.windowMs / 60000);

  for (const [key, v] of cur) {
    if (v.count < o.minCount) continue;
    const latency = p95(v.latencies);
    results.push({ rule: 'latency_high', model: v.model, version: v.version, firing: latency > o.latencyP95Ms, value: latency, threshold: o.latencyP95Ms });
    const before = prev.get(key);
    if (before && before.count >= o.minCount) {
      const rateNow = v.positives / v.count;
      const rateBefore = before.positives / before.count;
      const jump = Math.abs(rateNow - rateBefore);
      results.push({ rule: 'positive_rate_jump', model: v.model, version: v.version, firing: jump >= o.positiveRateJump, value: rateNow - rateBefore, threshold: o.positiveRateJump });
    }
  }
  if (outcome.total >= o.minCount) {
    const rate = outcome.failures / outcome.total;
    results.push({ rule: 'error_rate_high', model: '*', version: '*', firing: rate > o.errorRate, value: rate, threshold: o.errorRate });
  }

  for (const r of results) {
    if (!r.firing) {
      await deps.alerts.clear(r.rule, r.model, r.version, `${r.rule} back within its limit (${r.value.toFixed(3)})`);
      continue;
    }
    const target = r.model === '*' ? 'the deployment service' : `${r.model} v${r.version}`;
    const summary =
      r.rule === 'latency_high'
        ? `p95 latency of ${target} is ${Math.round(r.value)} ms over the last ${minutes} min (limit ${r.threshold} ms)`
        : r.rule === 'positive_rate_jump'
          ? `Positive rate of ${target} moved by ${(r.value * 100).toFixed(1)} points between consecutive ${minutes}-min windows (limit ${(r.threshold * 100).toFixed(0)})`
          : `${(r.value * 100).toFixed(1)}% of prediction requests to ${target} failed over the last ${minutes} min (limit ${(r.threshold * 100).toFixed(1)}%)`;
    await deps.alerts.raise({
      rule: r.rule,
      model: r.model,
      version: r.version,
      severity: r.rule === 'error_rate_high' ? 'critical' : 'warning',
      summary,
      details: { value: r.value, threshold: r.threshold, window_ms: o.windowMs },
    });
  }
  return results;
}
