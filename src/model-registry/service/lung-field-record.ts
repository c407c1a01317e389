import { lungFieldReport } from '../routes/schemas.js';
import type { ModelVersionRecord } from '../store/registry-store.js';
import type { LungFieldReport } from './model-card-types.js';

/** The version tag the lung-field report is kept under (JSON). */
export const LUNG_FIELD_TAG = 'xray.lung_field_mass';

/** The lung-field report stored on a version, or null (none, or one of an older shape). */
export function lungFieldReportOf(v: Pick<ModelVersionRecord, 'tags'>): LungFieldReport | null {
  const raw = v.tags.find((t) => t.key === LUNG_FIELD_TAG)?.value;
  if (!raw) return null;
  try {
    const parsed = lungFieldReport.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
