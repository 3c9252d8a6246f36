/**
 * Plain-TypeScript reference of the repetition penalty (HF RepetitionPenaltyLogitsProcessor):
 * every token id that occurs in `context` (once, however often it occurs) has its logit divided
 * by `penalty` when positive, multiplied when negative. Returns a new array.
 */
export function repetitionPenaltyForward(logits: ArrayLike<number>, context: ArrayLike<number>, penalty: number): Float64Array {
  const out = Float64Array.from(logits);
  const seen = new Set<number>();
  for (let i = 0; i < context.length; i++) seen.add(context[i]);
  for (const id of seen) {
    if (id < 0 || id >= out.length) continue;
    out[id] = out[id] < 0 ? out[id] * penalty : out[id] / penalty;
  }
  return out;
}
