/**
 * Every numerical tolerance of the test suite, in one place, each with the reason for its size.
 * `atol + rtol·|expected|` elementwise (see test/util/compare.ts).
 *
 * Sizes of reference: f32 has a 24-bit mantissa (unit roundoff u = 6e-8); a sum of n terms in
 * f32 has a worst-case relative error ~ n·u but typically ~ sqrt(n)·u; bf16 has an 8-bit mantissa
 * (u = 3.9e-3).
 */
export interface Tolerance {
  atol: number;
  rtol: number;
}

export const TOL = {
  /** RMSNorm fwd, f32: one reduction of ≤ 4096 squares then a product; different summation order than the f64 reference. */
  rmsnormFwd: { atol: 1e-5, rtol: 1e-5 },
  /** RMSNorm bwd, f32: two reductions (row dot, column dW over rows) — dW sums over all rows, hence the looser atol. */
  rmsnormBwd: { atol: 5e-5, rtol: 1e-4 },
  /** Reference gradient vs central finite differences in f64 with h = 1e-5: truncation error O(h²)·f''' ~ 1e-9, roundoff ~ 1e-16/h ~ 1e-11. */
  finiteDiff: { atol: 1e-6, rtol: 1e-5 },
  // --- matmul (matmul_fwd / matmul_bwd_*) ---
  // --- attention (attention_fwd / attention_bwd) ---
  // --- elementwise ops (rope, swiglu, embedding, cross-entropy, softmax) ---
  // --- optimizer (adamw, grad norm) ---
  // --- model parity (logits / gradients / steps vs PyTorch fixtures) ---
} satisfies Record<string, Tolerance>;
