import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';

/** One labelled case of a site's calibration data: the image's sha256 and its label. */
export interface SiteCase {
  sha256: string;
  label: 'NORMAL' | 'PNEUMONIA';
}

export interface SiteManifest {
  /** sha256 of the canonical manifest text: the site data's identity in the calibrated version's lineage. */
  sha256: string;
  /** The distinct cases, sorted by (sha256, label). */
  items: SiteCase[];
  /** Indices (into the input) of exact duplicates dropped: same bytes, same label. */
  duplicates: number[];
}

/**
 * The manifest of a labelled folder: its distinct images by content (sha256) with their labels,
 * sorted, as the text `xray-site-data/1\n<sha256> <LABEL>\n…`, and that text's sha256. Renaming
 * or moving files keeps the hash; changing a byte or a label changes it. Reproduce it with
 * `sha256sum`: one line per distinct image, sorted, under the header line.
 * @throws AppError UNPROCESSABLE when the same image carries both labels.
 */
export function siteManifest(cases: (SiteCase & { file?: string })[]): SiteManifest {
  const seen = new Map<string, { label: string; index: number; file?: string }>();
  const duplicates: number[] = [];
  cases.forEach((c, index) => {
    if (!/^[0-9a-f]{64}$/.test(c.sha256)) throw new AppError('INVALID_INPUT', `case ${index}: '${c.sha256}' is not a sha256 hex digest`);
    const before = seen.get(c.sha256);
    if (!before) seen.set(c.sha256, { label: c.label, index, file: c.file });
    else if (before.label === c.label) duplicates.push(index);
    else {
      throw new AppError(
        'UNPROCESSABLE',
        `the same image is labelled both ${before.label} and ${c.label} (${before.file ?? `case ${before.index}`} and ${c.file ?? `case ${index}`}); fix the labels before calibrating`,
        { sha256: c.sha256 },
      );
    }
  });
  const items = [...seen.entries()].map(([sha256, v]) => ({ sha256, label: v.label as SiteCase['label'] })).sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
  const text = `xray-site-data/1\n${items.map((i) => `${i.sha256} ${i.label}\n`).join('')}`;
  return { sha256: createHash('sha256').update(text).digest('hex'), items, duplicates };
}
