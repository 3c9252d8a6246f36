/**
 * Plain-TypeScript reference of the token embedding lookup, f64.
 * Shapes: E [V, D] (the whole table), ids [R] (values in [0, V)), x [R, D].
 *   x[r, :] = E[ids[r], :]
 */
export function embeddingForward(E: ArrayLike<number>, ids: ArrayLike<number>, D: number): Float64Array {
  const x = new Float64Array(ids.length * D);
  for (let r = 0; r < ids.length; r++) {
    for (let d = 0; d < D; d++) x[r * D + d] = E[ids[r] * D + d];
  }
  return x;
}

/**
 * Backward of x[r, :] = E[ids[r], :]: every row scatters its gradient into its token's row,
 *   dE[v, :] = Σ_{r : ids[r] = v} dx[r, :]     (dE [V, D], rows of unused tokens stay 0)
 */
export function embeddingBackward(dx: ArrayLike<number>, ids: ArrayLike<number>, V: number, D: number): Float64Array {
  const dE = new Float64Array(V * D);
  for (let r = 0; r < ids.length; r++) {
    for (let d = 0; d < D; d++) dE[ids[r] * D + d] += dx[r * D + d];
  }
  return dE;
}
