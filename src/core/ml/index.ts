/**
 * Numerical building blocks for evaluation, calibration, drift detection and
 * saliency maps. Pure functions over arrays; no I/O apart from PNG encoding.
 */
export { Rng, createRng } from './random.js';
export type { Seed, MutableArrayLike } from './random.js';

export {
  mean,
  std,
  sortedCopy,
  quantileSorted,
  erfc,
  normalCdf,
  normalSf,
  kolmogorovSf,
  finiteValues,
  selectInPlace,
} from './stats.js';

export {
  rocAuc,
  rocCurve,
  bootstrapAucCi,
  confusionAt,
  classificationMetrics,
  chooseThreshold,
  calibration,
  sigmoid,
  applyTemperature,
  fitTemperature,
  evaluateBinary,
} from './metrics.js';
export type {
  Confusion,
  ClassificationMetrics,
  RocPoint,
  ThresholdMethod,
  ThresholdChoice,
  CalibrationBin,
  Calibration,
  TemperatureFit,
  BinaryEvaluation,
  EvaluateOptions,
} from './metrics.js';

export {
  ksTest,
  wassersteinDistance,
  normedWasserstein,
  psi,
  featureDrift,
  mmdTest,
  domainClassifierAuc,
  randomProjection,
  predictionDrift,
} from './drift.js';
export type {
  Matrix,
  KsMethod,
  KsResult,
  FeatureDriftResult,
  FeatureHistogram,
  DatasetDriftResult,
  FeatureDriftOptions,
  MmdResult,
  DomainClassifierResult,
  PredictionDriftResult,
  Projection,
} from './drift.js';

export {
  classActivationMap,
  globalAveragePool,
  upsampleBilinear,
  normalizeMap,
  heatmapColormap,
  renderHeatmapPng,
  occlusionSensitivity,
  scaleMap,
  contentRegion,
  mapAgreement,
  LOW_AGREEMENT,
} from './cam.js';
export type { Grid, OcclusionMap, HeatmapPngOptions, OcclusionOptions, MapAgreement } from './cam.js';

export {
  PROBABILITY_EPS,
  DEFAULT_MIN_CASES,
  ABSOLUTE_MIN_CASES,
  probabilityLogit,
  applyServingTemperature,
  normalQuantile,
  wilsonInterval,
  clopperPearsonInterval,
  proportion,
  casesForHalfWidth,
  requireEnoughCases,
  fitSiteCalibration,
} from './calibration.js';
export type { CiMethod, Proportion, SiteThresholdMethod, SiteCalibrationOptions, SampleSizeAdvice, SiteCalibrationFit } from './calibration.js';

export { rocCurveSvg, reliabilitySvg, rocCurvePng, reliabilityPng } from './plots.js';
export type { RocCurveInput, PlotOptions } from './plots.js';

export { ATLAS_SIDE, THORAX_PRIOR, buildLungAtlas, lungFieldMass, summarizeLungFieldMass, resampleSquare } from './lung-fields.js';
export type { LungAtlas, LungFieldMass, LungFieldSummary } from './lung-fields.js';
