import { hammingDistance } from '../../core/imaging/index.js';
import { MAX_NEAR_THRESHOLD } from './validation-report.js';

export interface HashedItem {
  hash: string;
  /** 16 hex digits. */
  phash: string;
}

export interface NearPair {
  /** The smaller of the two content hashes. */
  a: string;
  b: string;
  distance: number;
}

export { MAX_NEAR_THRESHOLD };

/**
 * All pairs whose perceptual hashes differ in at most `threshold` bits, without comparing every
 * pair: the 64 bits are cut into `threshold + 1` bands and only items sharing a band value are
 * compared. If two hashes differ in ≤ threshold bits, at least one band is identical (pigeonhole),
 * so no pair is missed. Pairs are returned sorted by (a, b). Items with the same content hash are
 * not paired with themselves.
 */
export function findNearDuplicates(items: readonly HashedItem[], threshold: number): NearPair[] {
  const t = Math.max(0, Math.min(MAX_NEAR_THRESHOLD, Math.trunc(threshold)));
  const bands = t + 1;
  const widths = Array.from({ length: bands }, (_, i) => Math.floor(64 / bands) + (i < 64 % bands ? 1 : 0));
  const values = items.map((it) => BigInt(`0x${it.phash}`));
  const seen = new Set<string>();
  const pairs: NearPair[] = [];
  let shift = 0n;
  for (const width of widths) {
    const mask = (1n << BigInt(width)) - 1n;
    const buckets = new Map<bigint, number[]>();
    values.forEach((v, i) => {
      const key = (v >> shift) & mask;
      const bucket = buckets.get(key);
      if (bucket) bucket.push(i);
      else buckets.set(key, [i]);
    });
    shift += BigInt(width);
    for (const bucket of buckets.values()) {
      for (let x = 0; x < bucket.length; x++) {
        for (let y = x + 1; y < bucket.length; y++) {
          const p = items[bucket[x]!]!;
          const q = items[bucket[y]!]!;
          if (p.hash === q.hash) continue;
          const [a, b] = p.hash < q.hash ? [p, q] : [q, p];
          const id = `${a.hash}:${b.hash}`;
          if (seen.has(id)) continue;
          seen.add(id);
          const distance = hammingDistance(a.phash, b.phash);
          if (distance <= t) pairs.push({ a: a.hash, b: b.hash, distance });
        }
      }
    }
  }
  return pairs.sort((p, q) => (p.a < q.a ? -1 : p.a > q.a ? 1 : p.b < q.b ? -1 : p.b > q.b ? 1 : 0));
}
