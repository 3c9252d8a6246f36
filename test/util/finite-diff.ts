/**
 * Central finite differences in float64, for checking reference backwards.
 * `loss(x)` must be a scalar function of the (copied) input; returns dloss/dx at every index
 * (or at `indices` only, for large inputs).
 */
export function finiteDiffGrad(
  loss: (x: Float64Array) => number,
  x0: ArrayLike<number>,
  h = 1e-5,
  indices?: number[],
): Float64Array {
  const x = Float64Array.from(x0);
  const idx = indices ?? [...Array(x.length).keys()];
  const g = new Float64Array(idx.length);
  idx.forEach((i, k) => {
    const orig = x[i];
    x[i] = orig + h;
    const lp = loss(x);
    x[i] = orig - h;
    const lm = loss(x);
    x[i] = orig;
    g[k] = (lp - lm) / (2 * h);
  });
  return g;
}

/** Σ a[i]·b[i] in f64: the scalar "loss = <dy, y>" whose gradient wrt y is dy. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** `count` distinct indices in [0, n), spread out, deterministic. */
export function sampleIndices(n: number, count: number): number[] {
  if (n <= count) return [...Array(n).keys()];
  const step = n / count;
  return [...Array(count).keys()].map((k) => Math.floor(k * step + step / 2));
}
