import { createHash } from 'node:crypto';
import { CLASSES, SPLITS, type ClassLabel, type Split } from '../store/types.js';

/** Name of the split algorithm below; recorded in every manifest. Change it when the output changes. */
export const SPLIT_ALGORITHM = 'patient-stratified-greedy/1';

export interface SplitInput {
  hash: string;
  label: ClassLabel;
  /** null: the image is its own group. */
  patient: string | null;
  /** A split recorded at ingest, honoured only with `useRecordedSplits`. */
  recordedSplit?: Split | null;
}

export interface SplitOptions {
  valFraction: number;
  testFraction: number;
  seed: number;
  /** Keep the split recorded at ingest (majority per patient) for patients that have one. */
  useRecordedSplits?: boolean;
}

/**
 * A small integer-only PRNG (sfc32) seeded from sha256, so the stream is identical on every
 * machine and JavaScript engine. Deliberately local to the split: version ids depend on it and
 * must not change when another module's generator does.
 */
export function seededUint32(seedText: string): () => number {
  const d = createHash('sha256').update(seedText).digest();
  let a = d.readUInt32LE(0);
  let b = d.readUInt32LE(4);
  let c = d.readUInt32LE(8);
  let n = d.readUInt32LE(12);
  const next = (): number => {
    const t = (((a + b) >>> 0) + n) >>> 0;
    n = (n + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** Fisher–Yates shuffle in place with a uint32 source (integer arithmetic only). */
export function shuffleInPlace<T>(items: T[], next: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

interface Group {
  key: string;
  items: SplitInput[];
  label: ClassLabel;
  recorded: Split | null;
}

function majority<T extends string>(values: T[], order: readonly T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = order[0]!;
  let bestCount = -1;
  for (const v of order) {
    const c = counts.get(v) ?? 0;
    if (c > bestCount) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}

/**
 * Assigns every image to train/val/test by patient: all images of a patient land in one split.
 * Patients are stratified by their (majority) label; within each label the patient keys are
 * sorted and shuffled with a generator seeded by (seed, label); walking that order, test takes
 * every patient that brings its image count closer to its target (`fraction × images of the
 * label`), then val does the same with the patients left, and train gets the rest. Same inputs and seed → same assignment, on any machine.
 */
export function assignSplits(items: readonly SplitInput[], options: SplitOptions): Map<string, Split> {
  const groups = new Map<string, Group>();
  for (const item of items) {
    const key = item.patient !== null ? `p:${item.patient}` : `i:${item.hash}`;
    const g = groups.get(key) ?? { key, items: [], label: 'NORMAL', recorded: null };
    g.items.push(item);
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    g.label = majority(g.items.map((i) => i.label), CLASSES);
    const recorded = g.items.map((i) => i.recordedSplit).filter((s): s is Split => !!s);
    g.recorded = options.useRecordedSplits && recorded.length > 0 ? majority(recorded, SPLITS) : null;
  }

  const out = new Map<string, Split>();
  const assign = (g: Group, split: Split) => {
    for (const item of g.items) out.set(item.hash, split);
  };
  for (const label of CLASSES) {
    const stratum = [...groups.values()].filter((g) => g.label === label).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const free: Group[] = [];
    for (const g of stratum) {
      if (g.recorded) assign(g, g.recorded);
      else free.push(g);
    }
    shuffleInPlace(free, seededUint32(`${SPLIT_ALGORITHM}:${options.seed}:${label}`));
    const base = free.reduce((n, g) => n + g.items.length, 0);
    let remaining = free;
    for (const [split, fraction] of [['test', options.testFraction], ['val', options.valFraction]] as const) {
      const target = fraction * base;
      let filled = 0;
      const left: Group[] = [];
      for (const g of remaining) {
        if (Math.abs(filled + g.items.length - target) < Math.abs(filled - target)) {
          assign(g, split);
          filled += g.items.length;
        } else left.push(g);
      }
      remaining = left;
    }
    for (const g of remaining) assign(g, 'train');
  }
  return out;
}
