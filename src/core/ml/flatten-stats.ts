/** One image's statistics as numeric features (drift inputs). */
export type StatsRow = Record<string, number>;

/** Flattens a stats object into numeric features; nested objects become dotted keys. */
export function flattenStats(value: unknown, prefix = '', out: StatsRow = {}, depth = 0): StatsRow {
  if (!value || typeof value !== 'object' || Array.isArray(value) || depth > 2) return out;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (typeof v === 'boolean') out[key] = v ? 1 : 0;
    else if (v && typeof v === 'object' && !Array.isArray(v)) flattenStats(v, key, out, depth + 1);
  }
  return out;
}
