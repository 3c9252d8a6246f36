// Linear layer backward to the input for bf16 weights with K a multiple of 4:
// dX = dY · W, f32 accumulation — same math, bindings order, params and outputs as
// matmul_bwd_input_subgroup.wgsl, and the same per-element reduction order (one fma chain over
// n = 0, 1, ..., N-1 per output), so its results are bit-identical to that kernel's.
//   dX[x_offset + m·K + k]  (= or +=)  Σ_n dY[y_offset + m·ldy + n] · W[w_offset + n·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations, and (checked by the host,
// matmulKernelFits in src/ops/matmul.ts): W bf16, K % 4 == 0, w_offset % 4 == 0. Any M, N.
//
// Why a separate kernel: on lavapipe every per-invocation load is a loop of scalar loads over the
// SIMD lanes, so load count is what costs: one vec2<u32> load brings an invocation's 4 weights of
// a row, where the general kernel needs 2-3 u32 loads and odd-start handling.
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
//   @binding(2) w: array<vec2<u32>> [N, K] bf16 at element w_offset, two per u32 (element e in
//        word e/2, low half first), 4 per vec2
//   @binding(3) dx: array<f32> [M, K] at x_offset: = or += (ACCUMULATE)
// Dispatch: (ceil(K / (4·WG)), ceil(M / ROWS)), workgroup_size WG. Each invocation owns 4
// consecutive columns k of dX and the workgroup's ROWS rows; lane l of each subgroup loads
// dY[row, n0 + l] and subgroupBroadcast hands it to the other lanes (no workgroup memory, no barriers).

enable subgroups;

override W_BF16: bool = true; // must be true (the host never builds this kernel for f32 W)
override ACCUMULATE: bool = false;
override WG: u32 = 64u;   // invocations per workgroup; a multiple of the subgroup size
override ROWS: u32 = 16u; // rows of dX per workgroup, 1 ..16

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// W[n, k .. k+3] (one vec2 load; `q` = vec2 index of W[0, k]); 0 for n ≥ N (that zero keeps the
// reduction tail exact).
fn w_cols4(q: u32, n: u32) -> vec4<f32> {
  let v = w[q + min(n, p.N - 1u) * (p.K >> 2u)];
  let c = vec4<f32>(bitcast<f32>(v.x << 16u), bitcast<f32>(v.x & 0xffff0000u),
                    bitcast<f32>(v.y << 16u), bitcast<f32>(v.y & 0xffff0000u));
  return select(vec4<f32>(0.0), c, n < p.N);
}

fn store(m: u32, k: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (m < p.M && k + c < p.K) {
      let o = p.x_offset + m * p.K + k + c;
      if (ACCUMULATE) {
        dx[o] += v[c];
      } else {
        dx[o] = v[c];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let lane = sid & 7u;
  let m0 = wg.y * ROWS;
  let k = (wg.x * WG + lid) * 4u;
  // vec2 index of W[0, k] (columns past K: the last 4, never stored).
  let q = (p.w_offset + min(k, p.K - 4u)) >> 2u;
  // Start of dY row m for each row (rows past M: row M - 1, never stored).
  let y0 = p.y_offset + min(m0 + 0u, p.M - 1u) * p.ldy;
  let y1 = p.y_offset + min(m0 + 1u, p.M - 1u) * p.ldy;
  let y2 = p.y_offset + min(m0 + 2u, p.M - 1u) * p.ldy;
  let y3 = p.y_offset + min(m0 + 3u, p.M - 1u) * p.ldy;
  let y4 = p.y_offset + min(m0 + 4u, p.M - 1u) * p.ldy;
  let y5 = p.y_offset + min(m0 + 5u, p.M - 1u) * p.ldy;
  let y6 = p.y_offset + min(m0 + 6u, p.M - 1u) * p.ldy;
  let y7 = p.y_offset + min(m0 + 7u, p.M - 1u) * p.ldy;
  let y8 = p.y_offset + min(m0 + 8u, p.M - 1u) * p.ldy;
  let y9 = p.y_offset + min(m0 + 9u, p.M - 1u) * p.ldy;
  let y10 = p.y_offset + min(m0 + 10u, p.M - 1u) * p.ldy;
  let y11 = p.y_offset + min(m0 + 11u, p.M - 1u) * p.ldy;
  let y12 = p.y_offset + min(m0 + 12u, p.M - 1u) * p.ldy;
  let y13 = p.y_offset + min(m0 + 13u, p.M - 1u) * p.ldy;
  let y14 = p.y_offset + min(m0 + 14u, p.M - 1u) * p.ldy;
  let y15 = p.y_offset + min(m0 + 15u, p.M - 1u) * p.ldy;
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
  for (var n0 = 0u; n0 < p.N; n0 += 8u) {
    // dY[row, n0 + lane] of each row (n past N: column N - 1, multiplied by b = 0).
    let na = min(n0 + lane, p.N - 1u);
    let a0 = dy[y0 + na];
    let a1 = dy[y1 + na];
    let a2 = dy[y2 + na];
    let a3 = dy[y3 + na];
    let a4 = dy[y4 + na];
    let a5 = dy[y5 + na];
    let a6 = dy[y6 + na];
    let a7 = dy[y7 + na];
    let a8 = dy[y8 + na];
    let a9 = dy[y9 + na];
    let a10 = dy[y10 + na];
    let a11 = dy[y11 + na];
    let a12 = dy[y12 + na];
    let a13 = dy[y13 + na];
    let a14 = dy[y14 + na];
    let a15 = dy[y15 + na];
    // Step j: bj = W[n0 + j, k .. k+3]; every row adds dY[row, n0 + j] · bj.
    let b0 = w_cols4(q, n0 + 0u);
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
    let b1 = w_cols4(q, n0 + 1u);
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
    let b2 = w_cols4(q, n0 + 2u);
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
    let b3 = w_cols4(q, n0 + 3u);
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
    let b4 = w_cols4(q, n0 + 4u);
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
    let b5 = w_cols4(q, n0 + 5u);
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
    let b6 = w_cols4(q, n0 + 6u);
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
    let b7 = w_cols4(q, n0 + 7u);
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
  store(m0 + 0u, k, acc0);
  if (ROWS > 1u) { store(m0 + 1u, k, acc1); }
  if (ROWS > 2u) { store(m0 + 2u, k, acc2); }
  if (ROWS > 3u) { store(m0 + 3u, k, acc3); }
  if (ROWS > 4u) { store(m0 + 4u, k, acc4); }
  if (ROWS > 5u) { store(m0 + 5u, k, acc5); }
  if (ROWS > 6u) { store(m0 + 6u, k, acc6); }
  if (ROWS > 7u) { store(m0 + 7u, k, acc7); }
  if (ROWS > 8u) { store(m0 + 8u, k, acc8); }
  if (ROWS > 9u) { store(m0 + 9u, k, acc9); }
  if (ROWS > 10u) { store(m0 + 10u, k, acc10); }
  if (ROWS > 11u) { store(m0 + 11u, k, acc11); }
  if (ROWS > 12u) { store(m0 + 12u, k, acc12); }
  if (ROWS > 13u) { store(m0 + 13u, k, acc13); }
  if (ROWS > 14u) { store(m0 + 14u, k, acc14); }
  if (ROWS > 15u) { store(m0 + 15u, k, acc15); }
}
