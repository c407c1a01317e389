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
  /** File name as first ingested; only the held-out test rules (`testBy`, `testNamesContaining`) read it. */
  sourceName?: string;
}

/**
 * How the test split is chosen. `random` (default): seeded, like val. `period`: the patients that
 * come LAST in natural order of their file names (an acquisition-period proxy where names carry a
 * running number), per label. `names`: every patient with a file whose name contains one of
 * `testNamesContaining` (a file family, e.g. a second export batch) — leave-family-out; a class
 * whose family share is below `testFraction` is topped up with seeded patients (a class with no
 * such family still gets test cases, so the test split has both classes).
 */
export type TestRule = 'random' | 'period' | 'names';

export interface SplitOptions {
  valFraction: number;
  testFraction: number;
  seed: number;
  /** Keep the split recorded at ingest (majority per patient) for patients that have one. */
  useRecordedSplits?: boolean;
  testBy?: TestRule;
  /** With `testBy: 'names'`: substrings of file names (case-sensitive) that put a patient in test. */
  testNamesContaining?: readonly string[];
}

/** Compares file names with digit runs as numbers ("p9" < "p10"), then as text. */
export function naturalCompare(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = BigInt(x);
      const ny = BigInt(y);
      if (nx !== ny) return nx < ny ? -1 : 1;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  if (ta.length !== tb.length) return ta.length - tb.length;
  return a < b ? -1 : a > b ? 1 : 0;
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
  const testBy = options.testBy ?? 'random';
  const names = options.testNamesContaining ?? [];
  const firstName = (g: Group): string => g.items.map((i) => i.sourceName ?? '').sort(naturalCompare)[0] ?? '';
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
    const base = free.reduce((n, g) => n + g.items.length, 0);
    let remaining = free;
    let named = 0;
    if (testBy === 'names') {
      remaining = [];
      for (const g of free) {
        if (g.items.some((i) => names.some((n) => (i.sourceName ?? '').includes(n)))) {
          assign(g, 'test');
          named += g.items.length;
        } else remaining.push(g);
      }
    }
    if (testBy === 'period') {
      // Walk from the last name backwards: test takes the latest patients up to its share.
      const byName = [...remaining].sort((a, b) => naturalCompare(firstName(b), firstName(a)) || (a.key < b.key ? -1 : 1));
      const target = options.testFraction * base;
      let filled = 0;
      const taken = new Set<Group>();
      for (const g of byName) {
        if (Math.abs(filled + g.items.length - target) >= Math.abs(filled - target)) break;
        assign(g, 'test');
        taken.add(g);
        filled += g.items.length;
      }
      remaining = remaining.filter((g) => !taken.has(g));
    }
    shuffleInPlace(remaining, seededUint32(`${SPLIT_ALGORITHM}:${options.seed}:${label}`));
    // 'names' tops a class's test split up to test_fraction with seeded patients when its family is smaller (or absent).
    const stages = testBy === 'period' ? ([['val', options.valFraction]] as const) : ([['test', options.testFraction], ['val', options.valFraction]] as const);
    for (const [split, fraction] of stages) {
      const target = fraction * base;
      let filled = split === 'test' ? named : 0;
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
