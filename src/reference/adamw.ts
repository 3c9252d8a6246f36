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

/** One AdamW update of one tensor at step `t` (1-based), gradients scaled by `clipCoef` first. */
export function adamwStep(state: AdamWState, grad: ArrayLike<number>, t: number, h: AdamWHyper, clipCoef = 1): void {
  const { param, m, v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * clipCoef;
    param[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const mHat = m[i] / (1 - h.beta1 ** t);
    const vHat = v[i] / (1 - h.beta2 ** t);
    param[i] -= (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

/** A fresh state: the given weights, zero moments. */
export function adamwInit(param: ArrayLike<number>): AdamWState {
  return { param: Float64Array.from(param), m: new Float64Array(param.length), v: new Float64Array(param.length) };
}
