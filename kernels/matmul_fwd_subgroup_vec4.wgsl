// Linear layer forward for bf16 weights with K a multiple of 8: Y = X · Wᵀ, f32 accumulation —
// same math, bindings order, params and outputs as matmul_fwd_subgroup.wgsl, and the same
// per-element reduction order (one fma chain over k = 0, 1, ..., K-1 per output), so its results
// are bit-identical to that kernel's and do not depend on ROWS or M.
//   Y[y_offset + m·ldy + n]  (= or +=)  Σ_k X[x_offset + m·K + k] · W[w_offset + n·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations, and (checked by the host,
// matmulKernelFits in src/ops/matmul.ts): W bf16, K % 8 == 0, w_offset % 8 == 0. Any M, N.
//
// Why a separate kernel: on lavapipe every per-invocation load is a loop of scalar loads over the
// SIMD lanes, so load count is what costs: one vec4<u32> load brings 8 bf16 weights of a column,
// where the general kernel needs 4-5 u32 loads, and needs no odd-start handling.
// The rows are explicit accumulators (acc0..acc15, skipped by the override-constant ROWS) rather
// than an indexed array, so they stay in registers, and each of the 8 steps of a block updates
// every row before the next step's operand is formed ("step-major"): the 8 operands of a block are
// never live at once, which spills less (on lavapipe, Mesa 25: 1.1-1.3x over updating row by row;
// numbers in the commit message). Each row still sees its steps in order j = 0..7, so the bits do
// not change. The rows and steps are spelled out: WGSL has no macros, and subgroupBroadcast takes
// a constant lane.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) x: array<f32> [M, K] at x_offset, row stride K
//   @binding(2) w: array<vec4<u32>> [N, K] bf16 at element w_offset, two per u32 (element e in
//        word e/2, low half first), 8 per vec4
//   @binding(3) y: array<f32> [M, ldy] at y_offset, columns [0, N): = or += (ACCUMULATE)
// Dispatch: (ceil(N / (4·WG)), ceil(M / ROWS)), workgroup_size WG. Each invocation owns 4
// consecutive columns and the workgroup's ROWS rows; lane l of each subgroup loads X[row, k0 + l]
// and subgroupBroadcast hands it to the other lanes (no workgroup memory, no barriers).

enable subgroups;

override W_BF16: bool = true; // must be true (the host never builds this kernel for f32 W)
override ACCUMULATE: bool = false;
override WG: u32 = 64u;   // invocations per workgroup; a multiple of the subgroup size
override ROWS: u32 = 16u; // rows of Y per workgroup, 1 ..16

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// The two bf16 halves of a weight word as f32: element 2i (low half) and 2i + 1 (high half).
fn lo(v: u32) -> f32 { return bitcast<f32>(v << 16u); }
fn hi(v: u32) -> f32 { return bitcast<f32>(v & 0xffff0000u); }

fn store(m: u32, n: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (m < p.M && n + c < p.N) {
      let o = p.y_offset + m * p.ldy + n + c;
      if (ACCUMULATE) {
        y[o] += v[c];
      } else {
        y[o] = v[c];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let lane = sid & 7u;
  let m0 = wg.y * ROWS;
  let n = (wg.x * WG + lid) * 4u;
  // vec4 index of W[column, 0] for the 4 columns (past N: row N - 1, never stored).
  let cols = min(vec4<u32>(n) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
  let q = (vec4<u32>(p.w_offset) + cols * p.K) >> vec4<u32>(3u);
  // X[row, lane] for each row (rows past M: row M - 1, never stored).
  let x0 = p.x_offset + min(m0 + 0u, p.M - 1u) * p.K + lane;
  let x1 = p.x_offset + min(m0 + 1u, p.M - 1u) * p.K + lane;
  let x2 = p.x_offset + min(m0 + 2u, p.M - 1u) * p.K + lane;
  let x3 = p.x_offset + min(m0 + 3u, p.M - 1u) * p.K + lane;
  let x4 = p.x_offset + min(m0 + 4u, p.M - 1u) * p.K + lane;
  let x5 = p.x_offset + min(m0 + 5u, p.M - 1u) * p.K + lane;
  let x6 = p.x_offset + min(m0 + 6u, p.M - 1u) * p.K + lane;
  let x7 = p.x_offset + min(m0 + 7u, p.M - 1u) * p.K + lane;
  let x8 = p.x_offset + min(m0 + 8u, p.M - 1u) * p.K + lane;
  let x9 = p.x_offset + min(m0 + 9u, p.M - 1u) * p.K + lane;
  let x10 = p.x_offset + min(m0 + 10u, p.M - 1u) * p.K + lane;
  let x11 = p.x_offset + min(m0 + 11u, p.M - 1u) * p.K + lane;
  let x12 = p.x_offset + min(m0 + 12u, p.M - 1u) * p.K + lane;
  let x13 = p.x_offset + min(m0 + 13u, p.M - 1u) * p.K + lane;
  let x14 = p.x_offset + min(m0 + 14u, p.M - 1u) * p.K + lane;
  let x15 = p.x_offset + min(m0 + 15u, p.M - 1u) * p.K + lane;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  var acc8 = vec4<f32>(0.0);
  var acc9 = vec4<f32>(0.0);
  var acc10 = vec4<f32>(0.0);
  var acc11 = vec4<f32>(0.0);
  var acc12 = vec4<f32>(0.0);
  var acc13 = vec4<f32>(0.0);
  var acc14 = vec4<f32>(0.0);
  var acc15 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += 8u) {
    // W[column, k0 .. k0+7] of the 4 columns, and X[row, k0 + lane] of each row.
    let w0 = w[q.x + (k0 >> 3u)];
    let w1 = w[q.y + (k0 >> 3u)];
    let w2 = w[q.z + (k0 >> 3u)];
    let w3 = w[q.w + (k0 >> 3u)];
    let a0 = x[x0 + k0];
    let a1 = x[x1 + k0];
    let a2 = x[x2 + k0];
    let a3 = x[x3 + k0];
    let a4 = x[x4 + k0];
    let a5 = x[x5 + k0];
    let a6 = x[x6 + k0];
    let a7 = x[x7 + k0];
    let a8 = x[x8 + k0];
    let a9 = x[x9 + k0];
    let a10 = x[x10 + k0];
    let a11 = x[x11 + k0];
    let a12 = x[x12 + k0];
    let a13 = x[x13 + k0];
    let a14 = x[x14 + k0];
    let a15 = x[x15 + k0];
    // (A row's load is dropped by the compiler when ROWS leaves its updates out.)
    // Step j: bj = W[columns, k0 + j]; every row adds X[row, k0 + j] · bj.
    let b0 = vec4<f32>(lo(w0.x), lo(w1.x), lo(w2.x), lo(w3.x));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 0u)), b0, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 0u)), b0, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 0u)), b0, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 0u)), b0, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 0u)), b0, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 0u)), b0, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 0u)), b0, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 0u)), b0, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 0u)), b0, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 0u)), b0, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 0u)), b0, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 0u)), b0, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 0u)), b0, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 0u)), b0, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 0u)), b0, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 0u)), b0, acc15); }
    let b1 = vec4<f32>(hi(w0.x), hi(w1.x), hi(w2.x), hi(w3.x));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 1u)), b1, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 1u)), b1, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 1u)), b1, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 1u)), b1, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 1u)), b1, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 1u)), b1, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 1u)), b1, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 1u)), b1, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 1u)), b1, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 1u)), b1, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 1u)), b1, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 1u)), b1, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 1u)), b1, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 1u)), b1, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 1u)), b1, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 1u)), b1, acc15); }
    let b2 = vec4<f32>(lo(w0.y), lo(w1.y), lo(w2.y), lo(w3.y));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 2u)), b2, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 2u)), b2, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 2u)), b2, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 2u)), b2, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 2u)), b2, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 2u)), b2, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 2u)), b2, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 2u)), b2, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 2u)), b2, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 2u)), b2, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 2u)), b2, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 2u)), b2, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 2u)), b2, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 2u)), b2, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 2u)), b2, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 2u)), b2, acc15); }
    let b3 = vec4<f32>(hi(w0.y), hi(w1.y), hi(w2.y), hi(w3.y));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 3u)), b3, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 3u)), b3, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 3u)), b3, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 3u)), b3, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 3u)), b3, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 3u)), b3, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 3u)), b3, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 3u)), b3, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 3u)), b3, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 3u)), b3, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 3u)), b3, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 3u)), b3, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 3u)), b3, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 3u)), b3, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 3u)), b3, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 3u)), b3, acc15); }
    let b4 = vec4<f32>(lo(w0.z), lo(w1.z), lo(w2.z), lo(w3.z));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 4u)), b4, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 4u)), b4, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 4u)), b4, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 4u)), b4, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 4u)), b4, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 4u)), b4, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 4u)), b4, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 4u)), b4, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 4u)), b4, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 4u)), b4, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 4u)), b4, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 4u)), b4, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 4u)), b4, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 4u)), b4, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 4u)), b4, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 4u)), b4, acc15); }
    let b5 = vec4<f32>(hi(w0.z), hi(w1.z), hi(w2.z), hi(w3.z));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 5u)), b5, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 5u)), b5, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 5u)), b5, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 5u)), b5, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 5u)), b5, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 5u)), b5, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 5u)), b5, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 5u)), b5, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 5u)), b5, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 5u)), b5, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 5u)), b5, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 5u)), b5, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 5u)), b5, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 5u)), b5, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 5u)), b5, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 5u)), b5, acc15); }
    let b6 = vec4<f32>(lo(w0.w), lo(w1.w), lo(w2.w), lo(w3.w));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 6u)), b6, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 6u)), b6, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 6u)), b6, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 6u)), b6, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 6u)), b6, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 6u)), b6, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 6u)), b6, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 6u)), b6, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 6u)), b6, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 6u)), b6, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 6u)), b6, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 6u)), b6, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 6u)), b6, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 6u)), b6, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 6u)), b6, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 6u)), b6, acc15); }
    let b7 = vec4<f32>(hi(w0.w), hi(w1.w), hi(w2.w), hi(w3.w));
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 7u)), b7, acc0);
    if (ROWS > 1u) { acc1 = fma(vec4<f32>(subgroupBroadcast(a1, 7u)), b7, acc1); }
    if (ROWS > 2u) { acc2 = fma(vec4<f32>(subgroupBroadcast(a2, 7u)), b7, acc2); }
    if (ROWS > 3u) { acc3 = fma(vec4<f32>(subgroupBroadcast(a3, 7u)), b7, acc3); }
    if (ROWS > 4u) { acc4 = fma(vec4<f32>(subgroupBroadcast(a4, 7u)), b7, acc4); }
    if (ROWS > 5u) { acc5 = fma(vec4<f32>(subgroupBroadcast(a5, 7u)), b7, acc5); }
    if (ROWS > 6u) { acc6 = fma(vec4<f32>(subgroupBroadcast(a6, 7u)), b7, acc6); }
    if (ROWS > 7u) { acc7 = fma(vec4<f32>(subgroupBroadcast(a7, 7u)), b7, acc7); }
    if (ROWS > 8u) { acc8 = fma(vec4<f32>(subgroupBroadcast(a8, 7u)), b7, acc8); }
    if (ROWS > 9u) { acc9 = fma(vec4<f32>(subgroupBroadcast(a9, 7u)), b7, acc9); }
    if (ROWS > 10u) { acc10 = fma(vec4<f32>(subgroupBroadcast(a10, 7u)), b7, acc10); }
    if (ROWS > 11u) { acc11 = fma(vec4<f32>(subgroupBroadcast(a11, 7u)), b7, acc11); }
    if (ROWS > 12u) { acc12 = fma(vec4<f32>(subgroupBroadcast(a12, 7u)), b7, acc12); }
    if (ROWS > 13u) { acc13 = fma(vec4<f32>(subgroupBroadcast(a13, 7u)), b7, acc13); }
    if (ROWS > 14u) { acc14 = fma(vec4<f32>(subgroupBroadcast(a14, 7u)), b7, acc14); }
    if (ROWS > 15u) { acc15 = fma(vec4<f32>(subgroupBroadcast(a15, 7u)), b7, acc15); }
  }
  store(m0 + 0u, n, acc0);
  if (ROWS > 1u) { store(m0 + 1u, n, acc1); }
  if (ROWS > 2u) { store(m0 + 2u, n, acc2); }
  if (ROWS > 3u) { store(m0 + 3u, n, acc3); }
  if (ROWS > 4u) { store(m0 + 4u, n, acc4); }
  if (ROWS > 5u) { store(m0 + 5u, n, acc5); }
  if (ROWS > 6u) { store(m0 + 6u, n, acc6); }
  if (ROWS > 7u) { store(m0 + 7u, n, acc7); }
  if (ROWS > 8u) { store(m0 + 8u, n, acc8); }
  if (ROWS > 9u) { store(m0 + 9u, n, acc9); }
  if (ROWS > 10u) { store(m0 + 10u, n, acc10); }
  if (ROWS > 11u) { store(m0 + 11u, n, acc11); }
  if (ROWS > 12u) { store(m0 + 12u, n, acc12); }
  if (ROWS > 13u) { store(m0 + 13u, n, acc13); }
  if (ROWS > 14u) { store(m0 + 14u, n, acc14); }
  if (ROWS > 15u) { store(m0 + 15u, n, acc15); }
}
