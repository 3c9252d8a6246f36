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
// a row, where the general kernel needs 2-3 u32 loads and odd-start handling. The rows are explicit
// accumulators (acc0..acc7, skipped by the override-constant ROWS), so they stay in registers.
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
override ROWS: u32 = 8u;  // rows of dX per workgroup, 1 ..8

struct Params {
  M: u32,
  N: u32,
  K: u32,
  x_offset: u32,
  w_offset: u32,
  y_offset: u32,
  ldy: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// W[n, k .. k+3] (one vec2 load; `q` = vec2 index of W[0, k]); rows n ≥ N read row N - 1.
fn w_cols4(q: u32, n: u32) -> vec4<f32> {
  let v = w[q + min(n, p.N - 1u) * (p.K >> 2u)];
  return vec4<f32>(bitcast<f32>(v.x << 16u), bitcast<f32>(v.x & 0xffff0000u),
                   bitcast<f32>(v.y << 16u), bitcast<f32>(v.y & 0xffff0000u));
}

// b[j] = W[n0 + j, k .. k+3], 0 for n0 + j ≥ N (that zero keeps the reduction tail exact).
fn w_block8(q: u32, n0: u32) -> array<vec4<f32>, 8> {
  var b: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) {
    b[j] = w_cols4(q, n0 + j);
  }
  if (n0 + 8u > p.N) {
    for (var j = 0u; j < 8u; j++) {
      b[j] = select(vec4<f32>(0.0), b[j], n0 + j < p.N);
    }
  }
  return b;
}

// step8: c + Σ_j dY[row, n0 + j] · b[j], j = 0..7
//#include "matmul_step8.wgsl"

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
  let a0 = p.y_offset + min(m0 + 0u, p.M - 1u) * p.ldy;
  let a1 = p.y_offset + min(m0 + 1u, p.M - 1u) * p.ldy;
  let a2 = p.y_offset + min(m0 + 2u, p.M - 1u) * p.ldy;
  let a3 = p.y_offset + min(m0 + 3u, p.M - 1u) * p.ldy;
  let a4 = p.y_offset + min(m0 + 4u, p.M - 1u) * p.ldy;
  let a5 = p.y_offset + min(m0 + 5u, p.M - 1u) * p.ldy;
  let a6 = p.y_offset + min(m0 + 6u, p.M - 1u) * p.ldy;
  let a7 = p.y_offset + min(m0 + 7u, p.M - 1u) * p.ldy;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  for (var n0 = 0u; n0 < p.N; n0 += 8u) {
    let b = w_block8(q, n0);
    let na = min(n0 + lane, p.N - 1u);
    acc0 = step8(acc0, dy[a0 + na], b);
    if (ROWS > 1u) { acc1 = step8(acc1, dy[a1 + na], b); }
    if (ROWS > 2u) { acc2 = step8(acc2, dy[a2 + na], b); }
    if (ROWS > 3u) { acc3 = step8(acc3, dy[a3 + na], b); }
    if (ROWS > 4u) { acc4 = step8(acc4, dy[a4 + na], b); }
    if (ROWS > 5u) { acc5 = step8(acc5, dy[a5 + na], b); }
    if (ROWS > 6u) { acc6 = step8(acc6, dy[a6 + na], b); }
    if (ROWS > 7u) { acc7 = step8(acc7, dy[a7 + na], b); }
  }
  if (ROWS > 0u) { store(m0 + 0u, k, acc0); }
  if (ROWS > 1u) { store(m0 + 1u, k, acc1); }
  if (ROWS > 2u) { store(m0 + 2u, k, acc2); }
  if (ROWS > 3u) { store(m0 + 3u, k, acc3); }
  if (ROWS > 4u) { store(m0 + 4u, k, acc4); }
  if (ROWS > 5u) { store(m0 + 5u, k, acc5); }
  if (ROWS > 6u) { store(m0 + 6u, k, acc6); }
  if (ROWS > 7u) { store(m0 + 7u, k, acc7); }
}
