/**
 * Seeded pseudo-random numbers for everything that must be reproducible
 * (bootstrap, permutation tests, cross-validation folds, random projections).
 *
 * The generator is xoshiro128** (Blackman & Vigna), seeded through splitmix32,
 * so nearby seeds (0, 1, 2, …) give unrelated streams. It is not cryptographic.
 */

/** A seed: any number (integers are used exactly, other numbers are hashed) or a string. */
export type Seed = number | string;

/** Any writable array-like that can be shuffled in place. */
export interface MutableArrayLike<T> {
  length: number;
  [index: number]: T;
}

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** FNV-1a over UTF-16 code units: turns a string seed into 32 bits. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function seedWords(seed: Seed): [number, number] {
  if (typeof seed === 'string') return [hashString(seed), 0x5eed5eed];
  if (Number.isSafeInteger(seed)) {
    const neg = seed < 0;
    const abs = Math.abs(seed);
    return [abs >>> 0, (Math.floor(abs / TWO_POW_32) >>> 0) ^ (neg ? 0x80000000 : 0)];
  }
  return [hashString(String(seed)), 0x0badf00d];
}

/**
 * Seeded generator (xoshiro128**). All methods draw from the same stream, so a
 * given seed and call sequence always gives the same numbers.
 *
 * @example
 * const rng = new Rng(42);
 * rng.next();            // uniform in [0, 1)
 * rng.normal();          // standard normal
 * rng.shuffle([1, 2, 3]); // in place
 */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spareNormal: number | null = null;

  constructor(seed: Seed = 0) {
    const [lo, hi] = seedWords(seed);
    // splitmix32 expands the seed into four non-zero state words.
    let state = (lo ^ Math.imul(hi, 0x9e3779b1)) | 0;
    const next = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  uint32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.uint32() / TWO_POW_32;
  }

  /** Uniform float in [min, max). */
  uniform(min = 0, max = 1): number {
    return min + (max - min) * this.next();
  }

  /**
   * Uniform integer in [0, maxExclusive), without modulo bias.
   * @throws RangeError when maxExclusive is not an integer in [1, 2^32].
   */
  int(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive < 1 || maxExclusive > TWO_POW_32) {
      throw new RangeError(`int(): maxExclusive must be an integer in [1, 2^32], got ${maxExclusive}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % maxExclusive);
    let x = this.uint32();
    while (x >= limit) x = this.uint32();
    return x % maxExclusive;
  }

  /** Normal variate (Marsaglia polar method; the second value of each pair is cached). */
  normal(mean = 0, sd = 1): number {
    if (this.#spareNormal !== null) {
      const z = this.#spareNormal;
      this.#spareNormal = null;
      return mean + sd * z;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.#spareNormal = v * f;
    return mean + sd * u * f;
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<A extends MutableArrayLike<unknown>>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /**
   * `k` indices drawn from `[0, n)`.
   * Without replacement (default) they are distinct and in random order (`k ≤ n`);
   * with `replace: true` each draw is independent (bootstrap).
   * @throws RangeError on negative or non-integer sizes, or `k > n` without replacement.
   */
  sampleIndices(n: number, k: number, options: { replace?: boolean } = {}): Uint32Array {
    if (!Number.isInteger(n) || !Number.isInteger(k) || n < 0 || k < 0) {
      throw new RangeError(`sampleIndices(): n and k must be non-negative integers, got n=${n}, k=${k}`);
    }
    const out = new Uint32Array(k);
    if (options.replace) {
      if (k > 0 && n === 0) throw new RangeError('sampleIndices(): cannot draw from an empty range');
      for (let i = 0; i < k; i++) out[i] = this.int(n);
      return out;
    }
    if (k > n) throw new RangeError(`sampleIndices(): k=${k} exceeds n=${n} without replacement`);
    if (k * 4 >= n) {
      const perm = new Uint32Array(n);
      for (let i = 0; i < n; i++) perm[i] = i;
      for (let i = 0; i < k; i++) {
        const j = i + this.int(n - i);
        const tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
        out[i] = perm[i];
      }
      return out;
    }
    // Few draws from a large range: partial Fisher–Yates over a sparse permutation.
    const swapped = new Map<number, number>();
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const vj = swapped.get(j) ?? j;
      const vi = swapped.get(i) ?? i;
      out[i] = vj;
      swapped.set(j, vi);
    }
    return out;
  }
}

/** Shorthand for `new Rng(seed)`. */
export function createRng(seed: Seed = 0): Rng {
  return new Rng(seed);
}
