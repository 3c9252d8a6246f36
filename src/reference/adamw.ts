/**
 * Plain-TypeScript reference of the optimizer step the HF Trainer runs with `adamw_torch` and
 * `max_grad_norm`, written as loops from the published math (Loshchilov & Hutter's decoupled
 * weight decay with Adam's bias corrections, eps added to sqrt(v̂) as torch does), in f64,
 * independently of the kernels.
 *
 * Gradient clipping (torch.nn.utils.clip_grad_norm_, L2):
 *   total_norm = sqrt(Σ_tensors Σ_i g_i²)
 *   clip_coef  = min(max_norm / (total_norm + 1e-6), 1)        (1 when max_norm <= 0: no clipping)
 *
 * AdamW, step t = 1, 2, ... for every element, g = grad · clip_coef:
 *   p ← p · (1 − lr·wd)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
 *   p ← p − lr · m̂ / (sqrt(v̂) + eps)
 *
 * bf16 moments (adamw_step.wgsl's MOMENTS_BF16): the same update with the stored m and v exactly
 * bf16 values; the new m and v are used unrounded for p, then stored rounded to bf16 from their f32
 * value, stochastically with 16 random bits r16 per moment (away from zero with probability = the
 * f32's dropped fraction of a bf16 ulp, i.e. iff fraction·2^16 + r16 ≥ 2^16), or to nearest even.
 * r16 comes from a counter-based hash of (seed, t, stream, element index):
 *   lowbias32(x) = x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (u32)
 *   key = lowbias32(lowbias32(lowbias32(seed) ^ t) ^ stream);  r = lowbias32(key ^ index)
 *   m: r mod 2^16, v: floor(r / 2^16).
 * Rounding is written on values (exponent, ulp, fraction), not on bit patterns as the kernel does.
 */

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 0 for tensors without decay (norm weights). */
  weightDecay: number;
}

/** One tensor's optimizer state, f64, updated in place by `adamwStep`. */
export interface AdamWState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** Global L2 norm of all gradients and clip_grad_norm_'s coefficient. */
export function gradNormClip(grads: ArrayLike<number>[], maxNorm: number): { totalNorm: number; clipCoef: number } {
  let sumSq = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) sumSq += g[i] * g[i];
  }
  const totalNorm = Math.sqrt(sumSq);
  const clipCoef = maxNorm > 0 ? Math.min(maxNorm / (totalNorm + 1e-6), 1) : 1;
  return { totalNorm, clipCoef };
}

/** How `adamwStep` stores the moments when they are bf16 (absent: f64, unrounded). */
export interface Bf16Moments {
  rounding: 'stochastic' | 'nearest';
  /** The hash's seed (u32), the tensor's stream number, and the index of element 0 within its tensor. */
  seed: number;
  stream: number;
  indexBase: number;
  /** If given, receives every element's new m and v before rounding (tests: where a rounding decision is close). */
  preRound?: { m: Float64Array; v: Float64Array };
}

/** One AdamW update of one tensor at step `t` (1-based), gradients scaled by `clipCoef` first. */
export function adamwStep(state: AdamWState, grad: ArrayLike<number>, t: number, h: AdamWHyper, clipCoef = 1, bf16?: Bf16Moments): void {
  const { param, m, v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * clipCoef;
    param[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const mHat = m[i] / (1 - h.beta1 ** t);
    const vHat = v[i] / (1 - h.beta2 ** t);
    param[i] -= (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
    if (bf16) {
      if (bf16.preRound) {
        bf16.preRound.m[i] = m[i];
        bf16.preRound.v[i] = v[i];
      }
      const r = momentRandomBits(bf16.seed, t, bf16.stream, bf16.indexBase + i);
      m[i] = roundToBf16(Math.fround(m[i]), bf16.rounding, r % 65536);
      v[i] = roundToBf16(Math.fround(v[i]), bf16.rounding, Math.floor(r / 65536));
    }
  }
}

/** C. Wellons' lowbias32 (hash-prospector), on u32 values. */
export function lowbias32(x: number): number {
  x >>>= 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

/** The 32 random bits of element `index` of tensor `stream` at AdamW step `t` (m takes the low 16, v the high 16). */
export function momentRandomBits(seed: number, t: number, stream: number, index: number): number {
  const key = lowbias32(lowbias32(lowbias32(seed) ^ t) ^ stream);
  return lowbias32(key ^ index);
}

/** The bf16 neighbours of a finite f32 value: |x| = (k + frac)·ulp with k·ulp the magnitude truncated to bf16's 8 significant bits. */
function bf16Grid(x: number): { k: number; ulp: number; frac: number } {
  const a = Math.abs(x);
  // Exponent of a (normal f32: 2^e ≤ a < 2^(e+1)); subnormals share the smallest normal's ulp.
  let e = a === 0 ? -126 : Math.floor(Math.log2(a));
  while (e > -126 && 2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  e = Math.max(e, -126);
  const ulp = 2 ** (e - 7);
  const k = Math.floor(a / ulp);
  return { k, ulp, frac: a / ulp - k };
}

/**
 * An f32 value rounded to bf16: 'nearest' (ties to the even 8-bit significand) or 'stochastic'
 * with 16 random bits r16 (0 ≤ r16 < 2^16): up iff frac·2^16 + r16 ≥ 2^16, frac being the f32's
 * dropped fraction of a bf16 ulp (a multiple of 2^-16). Overflow gives ±Infinity; NaN stays NaN.
 */
export function roundToBf16(x: number, rounding: 'stochastic' | 'nearest', r16 = 0): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const { k, ulp, frac } = bf16Grid(x);
  let up: boolean;
  if (rounding === 'stochastic') up = frac * 65536 + r16 >= 65536;
  else up = frac > 0.5 || (frac === 0.5 && k % 2 === 1);
  const mag = (up ? k + 1 : k) * ulp;
  const out = mag >= 2 ** 128 ? Infinity : mag;
  return x < 0 ? -out : out;
}

/** A fresh state: the given weights, zero moments. */
export function adamwInit(param: ArrayLike<number>): AdamWState {
  return { param: Float64Array.from(param), m: new Float64Array(param.length), v: new Float64Array(param.length) };
}
