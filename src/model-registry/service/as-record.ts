/** `x` as a plain JSON object (model.json fields, metrics), or null for anything else. */
export function asRecord(x: unknown): Record<string, unknown> | null {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}
