/**
 * Image quality gates for ingestion and serving. Pure: takes what `probeImage` and `imageStats`
 * computed and returns findings; callers decide what an error means (reject, flag, 422).
 *
 * Defaults were calibrated on a 10 % sample of the Kermany train split preprocessed to 224
 * letterbox (none of the 523 images trips any check): mean 69–187, std ≥ 30, p99 − p01 ≥ 128,
 * clipLowFrac ≤ 0.22, clipHighFrac ≤ 0.06.
 */

/** Finding codes. Stable: dashboards and API clients match on them. */
export type QualityCode =
  | 'TOO_SMALL'
  | 'COLOUR_CONTENT'
  | 'BLANK'
  | 'LOW_CONTRAST'
  | 'CLIPPED_DARK'
  | 'CLIPPED_BRIGHT'
  | 'TOO_DARK'
  | 'TOO_BRIGHT';

export interface QualityIssue {
  code: QualityCode;
  severity: 'error' | 'warning';
  message: string;
  /** The measured value that tripped the check. */
  value: number;
  /** The threshold it was compared with. */
  threshold: number;
}

export interface QualityThresholds {
  /** Error when width or height is below this. Default 64. */
  minSideError: number;
  /** Warning when width or height is below this (the image will be upsampled). Default 224. */
  minSideWarning: number;
  /** Error (near-constant image) when std is below this. Default 8. */
  blankStd: number;
  /** Warning when p99 − p01 is below this. Default 64. */
  lowContrastRange: number;
  /** Warning when more than this fraction is at grey ≤ 2. Default 0.4. */
  clipDarkFrac: number;
  /** Warning when more than this fraction is at grey ≥ 253. Default 0.15. */
  clipBrightFrac: number;
  /** Warning when the mean grey level is below this. Default 40. */
  darkMean: number;
  /** Warning when the mean grey level is above this. Default 215. */
  brightMean: number;
  /** Severity of colour content (a photo, a coloured screenshot). Default 'error'. */
  colourSeverity: 'error' | 'warning';
}

export const DEFAULT_QUALITY_THRESHOLDS: Readonly<QualityThresholds> = Object.freeze({
  minSideError: 64,
  minSideWarning: 224,
  blankStd: 8,
  lowContrastRange: 64,
  clipDarkFrac: 0.4,
  clipBrightFrac: 0.15,
  darkMean: 40,
  brightMean: 215,
  colourSeverity: 'error',
});

/** The parts of `ImageInfo` quality looks at. */
export interface QualityImageInfo {
  width: number;
  height: number;
  isGreyscaleContent?: boolean;
}

/** The parts of `ImageStats` quality looks at. */
export interface QualityStats {
  mean: number;
  std: number;
  p01: number;
  p99: number;
  clipLowFrac: number;
  clipHighFrac: number;
}

const pct = (f: number): string => `${(f * 100).toFixed(1)} %`;

/**
 * Runs every check and returns the findings (empty when the image looks fine), errors first.
 * @example
 * const issues = checkQuality(info, imageStats(pixels, 224, 224));
 * if (issues.some((i) => i.severity === 'error')) reject(issues);
 */
export function checkQuality(info: QualityImageInfo, stats: QualityStats, options: Partial<QualityThresholds> = {}): QualityIssue[] {
  const t = { ...DEFAULT_QUALITY_THRESHOLDS, ...options };
  const issues: QualityIssue[] = [];
  const side = Math.min(info.width, info.height);
  if (side < t.minSideError) {
    issues.push({ code: 'TOO_SMALL', severity: 'error', message: `Image is ${info.width}x${info.height}; at least ${t.minSideError} px per side is required`, value: side, threshold: t.minSideError });
  } else if (side < t.minSideWarning) {
    issues.push({ code: 'TOO_SMALL', severity: 'warning', message: `Image is ${info.width}x${info.height}; below ${t.minSideWarning} px it is upsampled for the model`, value: side, threshold: t.minSideWarning });
  }
  if (info.isGreyscaleContent === false) {
    issues.push({ code: 'COLOUR_CONTENT', severity: t.colourSeverity, message: 'Image has colour content; a radiograph is greyscale', value: 1, threshold: 0 });
  }
  if (stats.std < t.blankStd) {
    issues.push({ code: 'BLANK', severity: 'error', message: `Image is nearly constant (std ${stats.std.toFixed(2)} < ${t.blankStd})`, value: stats.std, threshold: t.blankStd });
  } else if (stats.p99 - stats.p01 < t.lowContrastRange) {
    const range = stats.p99 - stats.p01;
    issues.push({ code: 'LOW_CONTRAST', severity: 'warning', message: `Low contrast: 1st–99th percentile range is ${range} grey levels (< ${t.lowContrastRange})`, value: range, threshold: t.lowContrastRange });
  }
  if (stats.clipLowFrac > t.clipDarkFrac) {
    issues.push({ code: 'CLIPPED_DARK', severity: 'warning', message: `${pct(stats.clipLowFrac)} of pixels are clipped to black (> ${pct(t.clipDarkFrac)})`, value: stats.clipLowFrac, threshold: t.clipDarkFrac });
  }
  if (stats.clipHighFrac > t.clipBrightFrac) {
    issues.push({ code: 'CLIPPED_BRIGHT', severity: 'warning', message: `${pct(stats.clipHighFrac)} of pixels are clipped to white (> ${pct(t.clipBrightFrac)})`, value: stats.clipHighFrac, threshold: t.clipBrightFrac });
  }
  if (stats.mean < t.darkMean) {
    issues.push({ code: 'TOO_DARK', severity: 'warning', message: `Image is very dark (mean grey ${stats.mean.toFixed(1)} < ${t.darkMean})`, value: stats.mean, threshold: t.darkMean });
  } else if (stats.mean > t.brightMean) {
    issues.push({ code: 'TOO_BRIGHT', severity: 'warning', message: `Image is very bright (mean grey ${stats.mean.toFixed(1)} > ${t.brightMean})`, value: stats.mean, threshold: t.brightMean });
  }
  return issues.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}

/** True when no finding is an error. */
export function passesQuality(issues: readonly QualityIssue[]): boolean {
  return !issues.some((i) => i.severity === 'error');
}
