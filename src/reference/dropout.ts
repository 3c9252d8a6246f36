/**
 * Plain-TypeScript reference of LoRA's scaled dropout (kernels/dropout_fwd.wgsl, dropout_bwd.wgsl),
 * in f64: out = x · (alpha/r)/(1 − p) on kept elements, 0 on dropped ones. The mask is a pure
 * function of (key, element index): element i is dropped when pcgHash(key ^ i) < dropBelow, with
 * pcgHash the 32-bit PCG output permutation (spelled out in kernels/include/dropout_mask.wgsl).
 */

import { dropBelowOf, pcgHash } from '../util/hash.ts';

export { dropBelowOf, pcgHash };

export function dropoutKept(key: number, i: number, dropBelow: number): boolean {
  return pcgHash((key ^ i) >>> 0) >= dropBelow;
}

export function dropoutForward(x: ArrayLike<number>, key: number, p: number, scale: number): Float64Array {
  const below = dropBelowOf(p);
  const kept = scale / (1 - p);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = dropoutKept(key, i, below) ? x[i] * kept : 0;
  return out;
}

/** dx = dout · kept_scale on kept elements (the kernel adds this to its dx). */
export function dropoutBackward(dout: ArrayLike<number>, key: number, p: number, scale: number): Float64Array {
  const below = dropBelowOf(p);
  const kept = scale / (1 - p);
  const dx = new Float64Array(dout.length);
  for (let i = 0; i < dout.length; i++) dx[i] = dropoutKept(key, i, below) ? dout[i] * kept : 0;
  return dx;
}
