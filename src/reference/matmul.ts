/**
 * Plain-TypeScript reference of the linear layer (PyTorch nn.Linear without bias), written as
 * loops from the math, independently of the kernels, accumulating in f64.
 *
 * Shapes: M = rows (B*T), K = in_features, N = out_features.
 *   x [M, K] row-major, w [N, K] (nn.Linear layout: row n holds the weights of output n), y [M, N].
 * Forward:   y[m, n] = Σ_k x[m, k] · w[n, k]          (y = x · wᵀ)
 */
export function matmulForward(x: ArrayLike<number>, w: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

/**
 * Backward of `y[m, n] = Σ_k x[m, k] · w[n, k]` for the upstream gradient dy [M, N]:
 *   dx[m, k] = Σ_n dy[m, n] · w[n, k]      (dx = dy · w)
 *   dw[n, k] = Σ_m dy[m, n] · x[m, k]      (dw = dyᵀ · x, summed over all M rows)
 */
export function matmulBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(M * K);
  const dw = new Float64Array(N * K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const g = dy[m * N + n];
      for (let k = 0; k < K; k++) {
        dx[m * K + k] += g * w[n * K + k];
        dw[n * K + k] += g * x[m * K + k];
      }
    }
  }
  return { dx, dw };
}
