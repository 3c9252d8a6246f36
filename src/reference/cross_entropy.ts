/**
 * Plain-TypeScript reference of the masked token cross-entropy (HF causal-LM loss), f64.
 * Shapes: logits [R, V], targets [R] (a token id, or -1 = no loss on this row, HF's -100).
 *   loss[r] = logsumexp(logits[r, :]) - logits[r, targets[r]]       (0 where targets[r] = -1)
 * The training loss is the mean over target rows: Σ_r loss[r] · gradScale, gradScale = 1 / #targets.
 */
export function crossEntropyForward(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number): Float64Array {
  const R = targets.length;
  const loss = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    if (targets[r] < 0) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - m);
    loss[r] = m + Math.log(s) - logits[r * V + targets[r]];
  }
  return loss;
}

/**
 * Backward of L = gradScale · Σ_r loss[r]:
 *   dlogits[r, v] = gradScale · (softmax(logits[r, :])[v] - [v = targets[r]])     (0 rows where targets[r] = -1)
 */
export function crossEntropyBackward(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number, gradScale: number): Float64Array {
  const R = targets.length;
  const dlogits = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    if (targets[r] < 0) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - m);
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[r * V + v] - m) / s;
      dlogits[r * V + v] = gradScale * (p - (v === targets[r] ? 1 : 0));
    }
  }
  return dlogits;
}
