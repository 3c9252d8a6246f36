/**
 * A port of CPython's `random` module, just the parts the original scene top-up uses:
 * `random.seed(int)`, `random.random()` and `random.choices(population, weights, k)`.
 *
 * Why a port instead of any seeded PRNG: `wgpu-char data scenes --seed 42` must pick the same
 * extra profile paragraphs as the paper's `random.seed(42); random.choices(...)`, so the scene
 * prompts (and with the original templates, the whole request list) can be reproduced exactly.
 * The test vectors (CPython 3's first random() values after seed(42), and the paragraphs it picks for
 * the Spartacus and Beethoven profiles) are in test/data-pipeline-golden.test.ts.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** MT19937 exactly as in CPython's _randommodule.c (32-bit outputs). */
export class MersenneTwister {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  /** CPython `random.seed(n)` for a non-negative integer n: init_by_array over n's 32-bit words, least significant first. */
  static fromPythonSeed(seed: number): MersenneTwister {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    const key: number[] = [];
    let rest = seed;
    do {
      key.push(rest % 0x100000000);
      rest = Math.floor(rest / 0x100000000);
    } while (rest > 0);
    const twister = new MersenneTwister();
    twister.initByArray(key);
    return twister;
  }

  private initGenrand(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** Next 32-bit output (genrand_uint32). */
  nextUint32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** CPython `random.random()`: a 53-bit float in [0, 1) built from two outputs (a>>5, b>>6). */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

/** First index i in `sorted` with sorted[i] > x, searching only [lo, hi) like Python's bisect_right. */
function bisectRight(sorted: number[], x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x < sorted[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * CPython `random.choices(population, weights=weights, k=k)`: cumulative weights, then
 * `bisect_right(cum, random() * total, 0, n - 1)` per pick. Returns the chosen indices.
 */
export function pythonChoicesIndices(rng: MersenneTwister, weights: number[], k: number): number[] {
  if (weights.length === 0) throw new RangeError('choices: empty population');
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) {
    total += w;
    cumulative.push(total);
  }
  if (!(total > 0)) throw new RangeError('choices: total of weights must be greater than zero');
  const hi = weights.length - 1;
  const picks: number[] = [];
  for (let i = 0; i < k; i++) picks.push(bisectRight(cumulative, rng.random() * total, 0, hi));
  return picks;
}
