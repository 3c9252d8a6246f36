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
  /**
   * LoRA dropout fwd/bwd, f32: one product by the f32-rounded scale (s/(1 − p)), plus one add in the
   * backward: 2-3 roundings of u = 6e-8 relative to the terms; the mask is integer arithmetic, exact.
   * The backward adds products up to ~10 (N(0,1) draws times scales up to 2.1) to a pre-filled N(0,1)
   * dx, so a cancelling sum keeps an absolute error of u·10 = 6e-7: hence the atol.
   */
  dropout: { atol: 1e-6, rtol: 3e-7 },
  // --- matmul (matmul_fwd / matmul_bwd_*) ---
  /**
   * Matmul kernels vs the f64 reference, f32 accumulation over sums of L ≤ 300 products of N(0,1)
   * values (bf16 cases use the bf16-rounded weights in the reference, so only f32 rounding is
   * left). Results are ~sqrt(L) ≤ 17 in size; each f32 add rounds by ≤ u·|partial sum| (u = 6e-8),
   * so the error random-walks to ~u·sqrt(L)·17 ≈ 2e-5 (worst case γ_L·Σ|terms| ≈ 3e-3 never
   * happens with random signs). atol 2e-4 / rtol 1e-5 leaves 10× over the typical error; measured
   * max abs error is ~2e-5.
   */
  matmul: { atol: 2e-4, rtol: 1e-5 },
  // --- attention (attention_fwd / attention_bwd) ---
  /** Attention fwd, f32: q·k dots of ≤ 128 terms, exp, an online-softmax sum of ≤ 301 keys with rescalings; O, LSE are O(1). Measured max abs 1.5e-6. */
  attentionFwd: { atol: 1e-5, rtol: 1e-4 },
  /** Attention bwd, f32: P recomputed as exp(s - LSE) (error ~ |s|·u), dP dots, sums over ≤ 64 queries × GQA group for dK/dV. Measured max abs 4e-6. */
  attentionBwd: { atol: 3e-5, rtol: 2e-4 },
  // --- elementwise ops (rope, swiglu, embedding, cross-entropy, softmax) ---
  /** ropeTable vs f64 cos/sin, checked as |Δ| <= atol + rtol·ANGLE (not ·|value|): the table uses HF's f32 angle, whose relative error is <= (ln θ + 3)u (exponent rounding amplified by ln θ in the pow, then pow, 1/x, p·inv_freq), <= 16u for θ <= 5e5; atol = u for the final rounding to f32. */
  ropeTable: { atol: 2 ** -24, rtol: 16 * 2 ** -24 },
  /** RoPE fwd/bwd, f32: per element two products and a sum of O(1) terms (3u each) with possible cancellation, hence an atol; against the f64 rotation with the same table. */
  rope: { atol: 2e-6, rtol: 1e-6 },
  /** RoPE bwd(fwd(x)) vs x: cos² + sin² = 1 within 2u in the f32 table, plus both rotations' roundoff (~6u·|x|, |x| <= 5). */
  ropeRoundTrip: { atol: 2e-6, rtol: 2e-6 },
  /** SwiGLU fwd/bwd, f32: WGSL exp is accurate to 3 + 2|x| ULP (tests have |g| <= 10: 23 ULP = 2.7e-6 rel), then a few roundings; dg's factor 1 + g(1-σ) cancels near g = -1.28, hence the atol. */
  swiglu: { atol: 1e-6, rtol: 1e-5 },
  /** KV scatter (kv_scatter_fwd): a copy of f32 rows: exact. */
  kvScatter: { atol: 0, rtol: 0 },
  /** Embedding fwd: a copy of f32 / bf16-exact values: exact. */
  embeddingFwd: { atol: 0, rtol: 0 },
  /** Embedding bwd: prefilled dE + an f32 sum of the few (< 10) rows of one token in the reference's order: a few u of the row sum's magnitude (<= 10). */
  embeddingBwd: { atol: 2e-6, rtol: 1e-6 },
  /** Cross-entropy loss, f32: m + log(s) - l_t with |l| <= 15: roundings of O(15)·u = 1e-6 each; log(s) within 2^-21 abs; s (strided per-thread sums of <= 125 terms + an 8-level tree, V <= 32000) within ~1e-6 rel. */
  crossEntropyLoss: { atol: 1e-5, rtol: 1e-6 },
  /** Cross-entropy dlogits, f32: grad_scale·(exp(l - m)/s - onehot): exp of |x| <= 30 is within 3+2|x| ULP (~4e-6 rel), s within ~1e-6 rel; atol for the onehot entry's cancellation (p - 1). */
  crossEntropyGrad: { atol: 1e-7, rtol: 2e-5 },
  /** Softmax probs, f32: exp(x·invT - m)/s, exp within 3+2|x| ULP (|x| <= 30: ~4e-6 rel) and s within ~1e-6 rel; tiny probabilities are covered by the atol. */
  softmax: { atol: 1e-9, rtol: 2e-5 },
  /** sum_fwd, f32: n <= 1e5 N(0,1) values summed as 16-term strided runs, an 8-level tree, then 25 partials: random-walk error ~ u·sqrt(depth ≈ 50)·sqrt(Σx²) ≈ 1.3e-4 before the 1/7 scale, 2e-5 after; 5× margin (the worst case, 50u·Σ|x|, is never approached by random data). */
  sum: { atol: 1e-4, rtol: 1e-6 },
  /** add_fwd: y + x rounded once in f32, compared with the same f32 rounding: exact. */
  add: { atol: 0, rtol: 0 },
  /** Repetition penalty: one f32 multiply or divide per logit vs f64: the penalty rounded to f32 (≤ 2^-24 relative) plus the result's rounding (≤ 2^-24). */
  repetitionPenalty: { atol: 0, rtol: 3e-7 },
  // --- optimizer (adamw, grad norm) ---
  /** Global grad norm and clip coef, f32 two-pass sum (≤ 1e5 squares: strided thread sums, trees, a partial sum per 2048) vs f64 (or torch's norm of per-tensor norms): worst case ~log2(n)·u = 1e-6 relative; measured 8e-8. */
  gradNorm: { atol: 0, rtol: 1e-6 },
  /** AdamW weights after ≤ 4 steps (|w| ≤ ~4, lr ≤ 1e-2), GPU f32 vs f64 reference: each step rounds w to f32 (u·|w| ≤ 2.4e-7) and the update to a few ulps of lr (WGSL sqrt and division are 2.5-ulp ops); measured max 4.5e-7 abs. */
  adamwParam: { atol: 1e-6, rtol: 1e-6 },
  /** AdamW m and v (test data |m| ≲ 0.5, |v| ≲ 1), GPU f32 vs f64 reference: β·m + (1−β)·g cancels, so the error is a few u of the summands, not of the result: hence the atol; measured max 4.1e-8 abs. */
  adamwMoments: { atol: 1e-7, rtol: 2e-6 },
  /** AdamW (GPU and f64 reference) vs torch.optim.AdamW's own f32 results (fixture, |w| ≲ 2): both round in f32 in a slightly different order (≤ 2 ulp of w = 2.4e-7); measured max 2.1e-7 abs on w, 2e-9 on m. */
  adamwTorch: { atol: 5e-7, rtol: 1e-6 },
  /**
   * bf16 moments (stochastic or nearest rounding), GPU vs reference from the same state: the share of
   * roundings that decide differently (`rtol` = a fraction of all roundings). A decision flips only
   * when the unrounded value is within its f32 error (TOL.adamwMoments, a few 2^-16 of a bf16 ulp) of
   * the threshold, so ~1e-4 of the roundings at most; each flip is also checked to be such a near tie.
   * Measured: 1 flip in the 47k roundings of test/adamw.test.ts (1.3e-4 of that test's 7428).
   */
  adamwBf16MomentFlips: { atol: 0, rtol: 1e-3 },
  /** lr schedule vs torch LambdaLR + HF lambdas, both f64: only V8's Math.cos vs libm's cos may differ (1 ulp). */
  schedule: { atol: 0, rtol: 1e-14 },
  // --- model parity (logits / gradients / steps vs PyTorch fixtures) ---
  /**
   * `wgpu-char eval` vs the trainer's logged eval loss on the same f32 checkpoint and samples: the
   * same kernels, but eval runs one sequence at a time while the trainer batches (padded rows change
   * nothing but the f32 summation order of the loss), and the saved f32 weights are the master weights.
   */
  evalVsTrainerEval: { atol: 0, rtol: 1e-5 },
  // Training vs PyTorch (test/train-parity.test.ts; make_train_fixture.py runs 5 AdamW steps, lr 1e-3, in float64).
  /** Per-step loss, relative: 1e-4, ~500× what is measured. The f32 forward of ≤ 127 tokens (≤ 45-term dots, a 4000-way log-sum-exp) is ~1e-7 off; measured 1.7e-7 (f32) and 2e-7 (bf16 vs its exact simulation). */
  trainLoss: { atol: 0, rtol: 1e-4 },
  /** Per-step pre-clip global grad norm, relative: a sum of 2e5 squared f32 gradients each normwise within 2e-6; measured 3.5e-7 (f32 and bf16). 1e-5 also tells the two bf16 simulations apart (they differ by 1e-4 to 1e-3). */
  trainGradNorm: { atol: 0, rtol: 1e-5 },
  /** Step-1 gradient of each tensor, normwise (max |ours − torch| / max |torch|): f32 backward through 2 layers, ≤ 127 rows summed into each weight gradient; measured ≤ 1.9e-6 (every tensor 5e-7 .. 1.9e-6). 10× margin. */
  trainGrads: { atol: 0, rtol: 2e-5 },
  /**
   * Final weights (5 steps, lr 1e-3), elementwise absolute. Adam divides each gradient element by its own RMS, so an element
   * whose gradient is as small as the f32 error of its tensor (2e-6 × the tensor's max) gets a wrong update, up to ~lr per step:
   * the worst, layers.0 o_proj [536] (step-1 gradient 5e-7, 2e-6 of its tensor's max), ends 8.7e-6 = 0.0087·lr off; 1 of
   * 202056 weights is off by > 1e-6, 26 by > 2e-7. Bound: 5% of one update (0.05·lr).
   */
  trainWeights: { atol: 5e-5, rtol: 0 },
  /** Final weights normwise: ‖ours − torch‖₂ / ‖torch − initial‖₂ (relative to how far training moved them); measured 1.1e-5. */
  trainWeightsNormwise: { atol: 0, rtol: 1e-4 },
  // LoRA vs PyTorch (test/lora.test.ts; make_lora_fixture.py, float64, PEFT semantics). The issue's
  // requirement for f32 is a relative error below 1e-5.
  /** Logits of base + adapter: the f32 forward of train-tiny (≤ 45-term dots) plus the r = 4 adapter path; as the base parity, ~1e-6. */
  loraLogits: { atol: 0, rtol: 1e-5 },
  /** Step-1 gradients of every A and B, normwise per tensor: f32 backward through 2 layers and the r = 4 adapter paths; measured 2.1e-6. */
  loraGrads: { atol: 0, rtol: 1e-5 },
  /** Per-step losses and pre-clip grad norms over 5 steps. */
  loraLoss: { atol: 0, rtol: 1e-5 },
  /** Adapter after 5 AdamW steps, absolute: the values moved by up to 5e-3 (5 steps of lr 1e-3); f32 rounding of |w| ≤ 0.5 is 3e-8 a step. */
  loraAdapter: { atol: 1e-6, rtol: 0 },
  /**
   * One micro-batch run in passes vs in one pass (test/train-parity.test.ts): the same kernels on
   * the same rows; only the order of f32 sums changes (per-pass partial sums of the loss and of every
   * weight gradient, added in pass order): a few u relative on the loss and grad norm.
   */
  trainPasses: { atol: 0, rtol: 1e-6 },
  /**
   * Weights after one AdamW step (lr 1e-3) from those gradients. The first step moves each weight by
   * lr·g/(|g| + ε) with ε = 1e-8: well-conditioned for |g| ≫ ε, but a gradient element of order ε
   * that is a cancelling f32 sum moves by a visible fraction of lr when its rounding changes.
   * Measured 6.4e-7 (0.064% of lr); bound 2e-3·lr.
   */
  trainPassesWeights: { atol: 2e-6, rtol: 0 },
  /** --dtype bf16 losses vs the f32 losses: the forward reads bf16-rounded weights (≤ 2^-9 relative each), moving the loss by ~1e-3 relative; measured 4.6e-4. */
  trainLossBf16VsF32: { atol: 0, rtol: 2e-2 },
  /** Losses with bf16 Adam moments vs f32 moments (test/train-optim-dtype.test.ts, 5 steps, lr 1e-3): steps 1-2 are identical; steps 3-5 follow updates that read moments rounded to bf16 (≤ 2^-8 relative each, unbiased), moving weights by ≪ lr and the loss by ~1e-5 relative; measured 1.6e-5. */
  trainLossBf16MomentsVsF32: { atol: 0, rtol: 2e-4 },
  /**
   * BatchEngine's probabilities vs the serial Generator's on weights/tiny, f32 (test/batch-engine.test.ts).
   * Attention sums its keys in another order (attention_rows_fwd: KS threads over every KS-th key,
   * then a merge; the Generator: attention_fwd, one thread over all keys for the prompt, 64 threads
   * for a decode token), so activations differ by a few u; after 4 layers the logits (|l| ≲ 10)
   * differ by ~1e-6 absolute, which moves every probability by the same ~1e-6 relative (exp of the
   * difference). Measured max 7.0e-6 relative over 30 distributions of 4000 (lavapipe, KS = 8); bound 7×.
   */
  batchVsSerial: { atol: 0, rtol: 5e-5 },
} satisfies Record<string, Tolerance>;

/**
 * Whole-model parity bounds, as max |ours − golden| / max |golden| over all logits of a sequence
 * (normwise: elementwise ratios are meaningless for logits near zero).
 */
export const PARITY = {
  /** f32 weights vs the float64 PyTorch forward: 1e-4, ~100× the observed errors of ~1e-6 (2 layers, f32 sums of ≤ 121 terms). */
  logitsF32: 1e-4,
  /** bf16 weights vs the float64 forward of the same bf16-rounded weights: only our f32 activations differ, so far below 2e-2 in practice. */
  logitsBf16: 2e-2,
  /** Mean next-token NLL vs PyTorch (f64): a mean of ~10 log-sum-exps of logits that agree to ~1e-6. */
  evalLossF32: 1e-5,
  /**
   * One layer at LLaMA-7B widths (test/llama7b.test.ts), f32 weights vs float64: dots of 4096 and
   * 11008 terms in f32 (error ~√K·u relative, a few 1e-6), a 32000-way log-sum-exp.
   */
  b7LogitsF32: 1e-4,
  /** The same with bf16-rounded weights vs float64 on the same rounded weights: only our f32 arithmetic differs. */
  b7LogitsBf16: 1e-4,
  /** LoRA step at 7B widths vs float64: the loss (a 4-target mean CE), relative. */
  b7LoraLoss: 1e-5,
  /** Its gradient norms (global and per LoRA tensor), relative: backward sums of up to 11008 f32 terms. */
  b7LoraGrad: 1e-4,
  /**
   * The AdamW update at the probes, in units of lr: the first step moves each weight by
   * lr·g/(|g| + ε)·(clip) minus decay, so a relative gradient error e moves it by ~e·lr where |g| ≫ ε
   * (probes with |g| < 1e-6 are skipped).
   */
  b7LoraUpdate: 1e-3,
};

/**
 * llama.cpp (node-llama-cpp 3.21.1, CPU, f32 KV cache) on our GGUF exports of weights/tiny vs our f32
 * forward (test/export-gguf.test.ts): next-token log-probabilities after 3 prompts, checked as
 * max_t |Δ log p_t| ≤ rel · sd(logits) of that prompt (log p = z − lse(z), so an error δz per token
 * gives |Δ log p_t| ≤ |δz_t − c| + |δlse − c| ≤ 2·max_t |δz_t − c| for any shift c). sd(logits) is
 * 1.6-2.9 for these prompts. Derivation, with ε = rms relative rounding error of one rounding and
 * ρ = normwise relative error of the logits (rms over the vocabulary of δz, over sd(z)):
 *   - one rounding adds independent errors of ~ε of the rounded vector's size; on the path to the
 *     logits k = 6 roundings count (lm_head's weights and its input, and for the residual stream one
 *     attention and one MLP branch with their weights and inputs: the other 22 matrices' errors
 *     reach the logits damped by the residual sums), so ρ ≈ √6·ε;
 *   - the max over V = 4000 tokens of a Gaussian error is ≤ 4.5 of its sd (P = 7e-6 per token), so
 *     max |Δ log p| ≤ 2 · 4.5 · ρ · sd(z) = 9·√6·ε · sd(z) ≈ 22·ε·sd(z).
 */
export const GGUF_LOGPROBS = {
  /**
   * Same weights (weights/tiny is bf16, exact in f32), both in f32: only summation order differs,
   * ~√K·u relative per dot (K ≤ 384, u = 6e-8: 1e-6) over 4 layers; rel 1e-4 as PARITY.logitsF32.
   * Measured max |Δ log p| 4e-6..1.7e-5 (≤ 5.8e-6·sd). llama.cpp's default f16 KV cache would add up to 4e-3.
   */
  f32: 1e-4,
  /**
   * bf16 weights are exact in f16 down to 2^-14 (smaller ones become f16 subnormals, within 2^-25
   * absolute: negligible against weights of rms ~0.05), so the export adds no error; llama.cpp's CPU
   * may round each matmul's input to f16 (its vec_dot type for F16 weights): ε = 2^-11/√3 = 2.8e-4
   * on 3 of the 6 roundings: 9·√3·ε = 4.4e-3, rounded up to 5e-3. Measured the same as f32
   * (max 1.35e-5), i.e. this build's path did not round the activations.
   */
  f16: 5e-3,
  /**
   * Q8_0: per block of 32, d = max|w|/127 stored as f16, so |δw| ≤ max|w|/254 (+ 2^-11 relative from
   * the f16 scale). The rounding error is uniform in ±d/2: rms d/√12 = (max/rms)/(254·√3) of the
   * block's rms; weights/tiny's blocks have max/rms ≈ 2.4, so ε = 5.5e-3 (computed over its
   * matrices: 5.1e-3..5.8e-3). llama.cpp also quantizes each matmul's input to Q8_0 blocks
   * (vec_dot type of Q8_0): the same ε, taken equal. rel = 22·ε = 0.12. Measured max |Δ log p|
   * 0.071..0.100 (0.024..0.055 of sd, i.e. 2.2..5× under the tolerance); normwise ρ 0.5..0.95%
   * against the derived √6·ε = 1.3%.
   */
  q8_0: 0.12,
} as const;
