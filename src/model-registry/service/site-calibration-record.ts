import { siteCalibration, type SiteCalibration } from '../routes/schemas.js';
import type { ModelVersionRecord } from '../store/registry-store.js';

/** The site calibration a calibrated version carries in its metadata (`site_calibration`), or null. */
export function siteCalibrationOf(v: Pick<ModelVersionRecord, 'metadata'>): SiteCalibration | null {
  const parsed = siteCalibration.safeParse(v.metadata?.site_calibration);
  return parsed.success ? parsed.data : null;
}
