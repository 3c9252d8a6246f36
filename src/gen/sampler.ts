/**
 * Token sampling on the CPU from the probabilities the GPU's softmax kernel produced
 * (`kernels/softmax_fwd.wgsl` with the temperature folded in). Like FastChat's worker:
 * temperature < 1e-5 is greedy; top-p keeps the smallest set of most likely tokens whose mass
 * reaches p (p in (0, 1) applies, 1 disables it, and p = 0 keeps the single most likely token: greedy,
 * as the smallest set reaching mass 0 is one token; FastChat's `top_p < 1e-8` turned it off instead,
 * sampling the whole vocabulary). The random `coin` is an argument, so the
 * sampler is deterministic and testable (llama2.c style); callers draw it from a seeded Rng.
 */
export interface SamplingOptions {
  temperature: number;
  topP: number;
}

export const GREEDY_TEMPERATURE = 1e-5;

/** Index of the largest value (first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Samples an index from `probs` (non-negative, summing to ~1) restricted to the top-p nucleus,
 * using `coin` ∈ [0, 1). Ties in probability are ordered by index, so the result is a pure function
 * of (probs, topP, coin). topP ≤ 0 is the most likely token (argmax: the coin is unused, but callers
 * still draw one per token, so a seed gives the same stream whatever top-p); topP ≥ 1 the whole vocabulary.
 */
export function sampleTopP(probs: ArrayLike<number>, topP: number, coin: number): number {
  const n = probs.length;
  if (topP <= 0) return argmax(probs);
  if (!(topP < 1)) {
    // Plain multinomial over all tokens.
    let total = 0;
    for (let i = 0; i < n; i++) total += probs[i];
    let acc = 0;
    const target = coin * total;
    for (let i = 0; i < n; i++) {
      acc += probs[i];
      if (target < acc) return i;
    }
    return lastNonZero(probs);
  }
  // Candidates above a cutoff first (tokens with p < (1-topP)/(n-1) can never be in the nucleus
  // unless all others are too), which avoids sorting a 32000-entry vocabulary every token.
  const cutoff = (1 - topP) / Math.max(1, n - 1);
  let idx: number[] = [];
  for (let i = 0; i < n; i++) if (probs[i] >= cutoff) idx.push(i);
  if (idx.length === 0) idx = [...Array(n).keys()];
  idx.sort((a, b) => probs[b] - probs[a] || a - b);
  let mass = 0;
  let keep = idx.length;
  for (let k = 0; k < idx.length; k++) {
    mass += probs[idx[k]];
    if (mass >= topP) {
      keep = k + 1;
      break;
    }
  }
  let kept = 0;
  for (let k = 0; k < keep; k++) kept += probs[idx[k]];
  const target = coin * kept;
  let acc = 0;
  for (let k = 0; k < keep; k++) {
    acc += probs[idx[k]];
    if (target < acc) return idx[k];
  }
  return idx[keep - 1];
}

function lastNonZero(probs: ArrayLike<number>): number {
  for (let i = probs.length - 1; i >= 0; i--) if (probs[i] > 0) return i;
  return probs.length - 1;
}
