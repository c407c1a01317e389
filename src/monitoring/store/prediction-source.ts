/**
 * Monitoring reads prediction records only through the deployment's prediction queries
 * (`predictionQueries(platform)`: in-process or the deployment's internal HTTP routes).
 */
export type {
  MonitoredPrediction as PredictionRecord,
  PredictionQueries as PredictionSource,
  PredictionWindow,
  TimelineBucket,
  TimelineQuery,
  TrafficGroup,
  WindowQuery,
} from '../../deployment/client/index.js';
export { flattenStats } from '../../core/ml/flatten-stats.js';
