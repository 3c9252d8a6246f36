// Linear layer backward, weight gradient, for K and x_offset multiples of 4: dW = dYᵀ · X over all
// M rows, f32 accumulation — same math, bindings order, params and outputs as
// matmul_bwd_weight_subgroup.wgsl, and the same per-element reduction order (one fma chain over
// m = 0, 1, ..., M-1 per element), so its results are bit-identical to that kernel's.
//   dW[w_offset + n·K + k]  (= or +=)  Σ_m dY[y_offset + m·ldy + n] · X[x_offset + m·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations, and (checked by the host,
// matmulKernelFits in src/ops/matmul.ts): K % 4 == 0, x_offset % 4 == 0. Any M, N.
//
// Why a separate kernel: on lavapipe every per-invocation load is a loop of scalar loads over the
// SIMD lanes, so load count is what costs: one vec4<f32> load brings the 4 columns of X an
// invocation owns, where the general kernel makes 4 clamped scalar loads.
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
//   @binding(1) dy: array<f32> [M, ldy] at y_offset, columns [0, N)
//   @binding(2) x:  array<vec4<f32>> [M, K] at element x_offset, row stride K, 4 per vec4
//   @binding(3) dw: array<f32> [N, K] at w_offset (always f32): = or += (ACCUMULATE)
// Dispatch: (ceil(K / (4·WG)), ceil(N / ROWS)), workgroup_size WG. Each invocation owns 4
// consecutive columns of dW in the workgroup's ROWS rows; lane l of each subgroup loads
// dY[m0 + l, row] and subgroupBroadcast hands it to the other lanes (no workgroup memory).

enable subgroups;

override ACCUMULATE: bool = false;
override WG: u32 = 64u;   // invocations per workgroup; a multiple of the subgroup size
override ROWS: u32 = 16u; // rows of dW per workgroup, 1 ..16

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// X[m, k .. k+3] (one vec4 load; `q` = vec4 index of X[0, k], `kq` = K / 4); 0 for m ≥ M (that
// zero keeps the reduction tail exact).
fn x_row4(q: u32, kq: u32, m: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), x[q + min(m, p.M - 1u) * kq], m < p.M);
}

fn store(n: u32, k: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (n < p.N && k + c < p.K) {
      let o = p.w_offset + n * p.K + k + c;
      if (ACCUMULATE) {
        dw[o] += v[c];
      } else {
        dw[o] = v[c];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let lane = sid & 7u;
  let n0 = wg.y * ROWS;
  let k = (wg.x * WG + lid) * 4u;
  let kq = p.K / 4u;
  // vec4 index of X[0, k] (columns past K: the last vec4, never stored).
  let q = p.x_offset / 4u + min(k / 4u, kq - 1u);
  // dY[., row] for each row (rows past N: row N - 1, never stored).
  let y0 = p.y_offset + min(n0 + 0u, p.N - 1u);
  let y1 = p.y_offset + min(n0 + 1u, p.N - 1u);
  let y2 = p.y_offset + min(n0 + 2u, p.N - 1u);
  let y3 = p.y_offset + min(n0 + 3u, p.N - 1u);
  let y4 = p.y_offset + min(n0 + 4u, p.N - 1u);
  let y5 = p.y_offset + min(n0 + 5u, p.N - 1u);
  let y6 = p.y_offset + min(n0 + 6u, p.N - 1u);
  let y7 = p.y_offset + min(n0 + 7u, p.N - 1u);
  let y8 = p.y_offset + min(n0 + 8u, p.N - 1u);
  let y9 = p.y_offset + min(n0 + 9u, p.N - 1u);
  let y10 = p.y_offset + min(n0 + 10u, p.N - 1u);
  let y11 = p.y_offset + min(n0 + 11u, p.N - 1u);
  let y12 = p.y_offset + min(n0 + 12u, p.N - 1u);
  let y13 = p.y_offset + min(n0 + 13u, p.N - 1u);
  let y14 = p.y_offset + min(n0 + 14u, p.N - 1u);
  let y15 = p.y_offset + min(n0 + 15u, p.N - 1u);
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
  for (var m0 = 0u; m0 < p.M; m0 += 8u) {
    // dY[m0 + lane, row] of each row (m past M: row M - 1, multiplied by b = 0).
    let ma = min(m0 + lane, p.M - 1u) * p.ldy;
    let a0 = dy[y0 + ma];
    let a1 = dy[y1 + ma];
    let a2 = dy[y2 + ma];
    let a3 = dy[y3 + ma];
    let a4 = dy[y4 + ma];
    let a5 = dy[y5 + ma];
    let a6 = dy[y6 + ma];
    let a7 = dy[y7 + ma];
    let a8 = dy[y8 + ma];
    let a9 = dy[y9 + ma];
    let a10 = dy[y10 + ma];
    let a11 = dy[y11 + ma];
    let a12 = dy[y12 + ma];
    let a13 = dy[y13 + ma];
    let a14 = dy[y14 + ma];
    let a15 = dy[y15 + ma];
    // Step j: bj = X[m0 + j, k .. k+3]; every row adds dY[m0 + j, row] · bj.
    let b0 = x_row4(q, kq, m0 + 0u);
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
    let b1 = x_row4(q, kq, m0 + 1u);
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
    let b2 = x_row4(q, kq, m0 + 2u);
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
    let b3 = x_row4(q, kq, m0 + 3u);
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
    let b4 = x_row4(q, kq, m0 + 4u);
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
    let b5 = x_row4(q, kq, m0 + 5u);
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
    let b6 = x_row4(q, kq, m0 + 6u);
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
    let b7 = x_row4(q, kq, m0 + 7u);
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
  store(n0 + 0u, k, acc0);
  if (ROWS > 1u) { store(n0 + 1u, k, acc1); }
  if (ROWS > 2u) { store(n0 + 2u, k, acc2); }
  if (ROWS > 3u) { store(n0 + 3u, k, acc3); }
  if (ROWS > 4u) { store(n0 + 4u, k, acc4); }
  if (ROWS > 5u) { store(n0 + 5u, k, acc5); }
  if (ROWS > 6u) { store(n0 + 6u, k, acc6); }
  if (ROWS > 7u) { store(n0 + 7u, k, acc7); }
  if (ROWS > 8u) { store(n0 + 8u, k, acc8); }
  if (ROWS > 9u) { store(n0 + 9u, k, acc9); }
  if (ROWS > 10u) { store(n0 + 10u, k, acc10); }
  if (ROWS > 11u) { store(n0 + 11u, k, acc11); }
  if (ROWS > 12u) { store(n0 + 12u, k, acc12); }
  if (ROWS > 13u) { store(n0 + 13u, k, acc13); }
  if (ROWS > 14u) { store(n0 + 14u, k, acc14); }
  if (ROWS > 15u) { store(n0 + 15u, k, acc15); }
}
