// Linear layer backward, weight gradient, for K and x_offset multiples of 4: dW = dYᵀ · X over all
// M rows, f32 accumulation — same math, bindings order, params and outputs as
// matmul_bwd_weight_subgroup.wgsl, and the same per-element reduction order (one fma chain over
// m = 0, 1, ..., M-1 per element), so its results are bit-identical to that kernel's.
//   dW[w_offset + n·K + k]  (= or +=)  Σ_m dY[y_offset + m·ldy + n] · X[x_offset + m·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations, and (checked by the host,
// matmulKernelFits in src/ops/matmul.ts): K % 4 == 0, x_offset % 4 == 0. Any M, N.
//
// Why a separate kernel: on lavapipe every per-invocation load is a loop of scalar loads over the
// SIMD lanes, so a load costs about the same whatever its width: one vec4<f32> load brings the 4
// columns of X an invocation owns, where the general kernel makes 4 clamped scalar loads. The
// rows are explicit accumulators (acc0..acc7, skipped by the override-constant ROWS) rather than
// an indexed array, so they stay in registers.
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
override ROWS: u32 = 8u;  // rows of dW per workgroup, 1 ..8

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
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// b[j] = X[m0 + j, k .. k+3] for j < 8 (one vec4 load each); 0 where m0 + j ≥ M, which keeps the
// reduction tail exact. `q` is the vec4 index of X[0, k]; `kq` = K / 4.
fn x_block8(q: u32, kq: u32, m0: u32) -> array<vec4<f32>, 8> {
  var b: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) {
    let m = m0 + j;
    b[j] = select(vec4<f32>(0.0), x[q + min(m, p.M - 1u) * kq], m < p.M);
  }
  return b;
}

// step8: c + Σ_j dY[m0 + j, row] · b[j], j = 0..7
//#include "matmul_step8.wgsl"

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
  let a0 = p.y_offset + min(n0 + 0u, p.N - 1u);
  let a1 = p.y_offset + min(n0 + 1u, p.N - 1u);
  let a2 = p.y_offset + min(n0 + 2u, p.N - 1u);
  let a3 = p.y_offset + min(n0 + 3u, p.N - 1u);
  let a4 = p.y_offset + min(n0 + 4u, p.N - 1u);
  let a5 = p.y_offset + min(n0 + 5u, p.N - 1u);
  let a6 = p.y_offset + min(n0 + 6u, p.N - 1u);
  let a7 = p.y_offset + min(n0 + 7u, p.N - 1u);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  for (var m0 = 0u; m0 < p.M; m0 += 8u) {
    let b = x_block8(q, kq, m0);
    // dY row of this lane's m (rows past M: row M - 1, multiplied by b = 0).
    let ma = min(m0 + lane, p.M - 1u) * p.ldy;
    acc0 = step8(acc0, dy[a0 + ma], b);
    if (ROWS > 1u) { acc1 = step8(acc1, dy[a1 + ma], b); }
    if (ROWS > 2u) { acc2 = step8(acc2, dy[a2 + ma], b); }
    if (ROWS > 3u) { acc3 = step8(acc3, dy[a3 + ma], b); }
    if (ROWS > 4u) { acc4 = step8(acc4, dy[a4 + ma], b); }
    if (ROWS > 5u) { acc5 = step8(acc5, dy[a5 + ma], b); }
    if (ROWS > 6u) { acc6 = step8(acc6, dy[a6 + ma], b); }
    if (ROWS > 7u) { acc7 = step8(acc7, dy[a7 + ma], b); }
  }
  if (ROWS > 0u) { store(n0 + 0u, k, acc0); }
  if (ROWS > 1u) { store(n0 + 1u, k, acc1); }
  if (ROWS > 2u) { store(n0 + 2u, k, acc2); }
  if (ROWS > 3u) { store(n0 + 3u, k, acc3); }
  if (ROWS > 4u) { store(n0 + 4u, k, acc4); }
  if (ROWS > 5u) { store(n0 + 5u, k, acc5); }
  if (ROWS > 6u) { store(n0 + 6u, k, acc6); }
  if (ROWS > 7u) { store(n0 + 7u, k, acc7); }
}
