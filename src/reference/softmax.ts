/**
 * Plain-TypeScript reference of the sampling softmax with temperature, f64.
 * Shapes: logits [R, V], probs [R, V].
 *   probs[r, v] = exp(logits[r, v]/T - max_v' logits[r, v']/T) / Σ_v'' exp(logits[r, v'']/T - max/T)
 * with 1/T given as invTemperature (the max subtraction only keeps exp in range; it cancels).
 * Sampling needs no backward.
 */
export function softmaxForward(logits: ArrayLike<number>, R: number, V: number, invTemperature: number): Float64Array {
  const probs = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v] * invTemperature);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] * invTemperature - m);
    for (let v = 0; v < V; v++) probs[r * V + v] = Math.exp(logits[r * V + v] * invTemperature - m) / s;
  }
  return probs;
}
