/**
 * Plain-TypeScript reference of RMSNorm (LLaMA / HF LlamaRMSNorm), written as loops independently
 * of the kernel, accumulating in f64.
 * Shapes: x [rows, cols], w [cols], y [rows, cols].
 */
export function rmsnormForward(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, cols: number, eps: number) {
  const y = new Float64Array(rows * cols);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] * x[r * cols + c];
    const s = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = s;
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] * s * w[c];
  }
  return { y, rstd };
}

/**
 * Backward of `y = x * s * w`, s = (mean(x²) + eps)^-1/2:
 *   dw[c] = Σ_r dy[r,c] x[r,c] s_r
 *   dx[r,c] = s_r w[c] dy[r,c] - x[r,c] s_r³ / cols · Σ_c' dy[r,c'] w[c'] x[r,c']
 */
export function rmsnormBackward(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, rows: number, cols: number, eps: number) {
  const dx = new Float64Array(rows * cols);
  const dw = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] * x[r * cols + c];
    const s = 1 / Math.sqrt(ss / cols + eps);
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * w[c] * x[r * cols + c];
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      dw[c] += dy[i] * x[i] * s;
      dx[i] = s * w[c] * dy[i] - (x[i] * s * s * s * dot) / cols;
    }
  }
  return { dx, dw };
}
