// Linear layer forward for bf16 weights with K a multiple of 8: Y = X · Wᵀ, f32 accumulation —
// same math, bindings order, params and outputs as matmul_fwd_subgroup.wgsl, and the same
// per-element reduction order (one fma chain over k = 0, 1, ..., K-1 per output), so its results
// are bit-identical to that kernel's and do not depend on ROWS or M.
//   Y[y_offset + m·ldy + n]  (= or +=)  Σ_k X[x_offset + m·K + k] · W[w_offset + n·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations, and (checked by the host,
// matmulKernelFits in src/ops/matmul.ts): W bf16, K % 8 == 0, w_offset % 8 == 0. Any M, N.
//
// Why a separate kernel: on lavapipe every per-invocation load is a loop of scalar loads over the
// SIMD lanes, so the cost of a load scales with its count, not its width: one vec4<u32> load brings
// 8 bf16 weights where the general kernel needs 4-5 u32 loads, and needs no odd-start handling.
// The rows are explicit accumulators (acc0..acc7, skipped by the override-constant ROWS) rather than
// an indexed array, so they stay in registers.
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
override ROWS: u32 = 8u;  // rows of Y per workgroup, 1 ..8

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn bf16_lo(v: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(v << vec4<u32>(16u)); }
fn bf16_hi(v: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(v & vec4<u32>(0xffff0000u)); }

// b[j][c] = W[column c, k0 + j] for j < 8: one vec4 load per column (`q` = its vec4 index).
fn w_block8(q: vec4<u32>) -> array<vec4<f32>, 8> {
  let w0 = w[q.x];
  let w1 = w[q.y];
  let w2 = w[q.z];
  let w3 = w[q.w];
  let l0 = bf16_lo(w0); let h0 = bf16_hi(w0);
  let l1 = bf16_lo(w1); let h1 = bf16_hi(w1);
  let l2 = bf16_lo(w2); let h2 = bf16_hi(w2);
  let l3 = bf16_lo(w3); let h3 = bf16_hi(w3);
  return array<vec4<f32>, 8>(
    vec4<f32>(l0.x, l1.x, l2.x, l3.x), vec4<f32>(h0.x, h1.x, h2.x, h3.x),
    vec4<f32>(l0.y, l1.y, l2.y, l3.y), vec4<f32>(h0.y, h1.y, h2.y, h3.y),
    vec4<f32>(l0.z, l1.z, l2.z, l3.z), vec4<f32>(h0.z, h1.z, h2.z, h3.z),
    vec4<f32>(l0.w, l1.w, l2.w, l3.w), vec4<f32>(h0.w, h1.w, h2.w, h3.w));
}

// step8: c + Σ_j X[row, k0 + j] · b[j], j = 0..7
//#include "matmul_step8.wgsl"

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
  let q0 = (vec4<u32>(p.w_offset) + cols * p.K) >> vec4<u32>(3u);
  // X[row, lane] for each row (rows past M: row M - 1, never stored).
  let x0 = p.x_offset + min(m0 + 0u, p.M - 1u) * p.K + lane;
  let x1 = p.x_offset + min(m0 + 1u, p.M - 1u) * p.K + lane;
  let x2 = p.x_offset + min(m0 + 2u, p.M - 1u) * p.K + lane;
  let x3 = p.x_offset + min(m0 + 3u, p.M - 1u) * p.K + lane;
  let x4 = p.x_offset + min(m0 + 4u, p.M - 1u) * p.K + lane;
  let x5 = p.x_offset + min(m0 + 5u, p.M - 1u) * p.K + lane;
  let x6 = p.x_offset + min(m0 + 6u, p.M - 1u) * p.K + lane;
  let x7 = p.x_offset + min(m0 + 7u, p.M - 1u) * p.K + lane;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += 8u) {
    let b = w_block8(q0 + vec4<u32>(k0 >> 3u));
    acc0 = step8(acc0, x[x0 + k0], b);
    if (ROWS > 1u) { acc1 = step8(acc1, x[x1 + k0], b); }
    if (ROWS > 2u) { acc2 = step8(acc2, x[x2 + k0], b); }
    if (ROWS > 3u) { acc3 = step8(acc3, x[x3 + k0], b); }
    if (ROWS > 4u) { acc4 = step8(acc4, x[x4 + k0], b); }
    if (ROWS > 5u) { acc5 = step8(acc5, x[x5 + k0], b); }
    if (ROWS > 6u) { acc6 = step8(acc6, x[x6 + k0], b); }
    if (ROWS > 7u) { acc7 = step8(acc7, x[x7 + k0], b); }
  }
  if (ROWS > 0u) { store(m0 + 0u, n, acc0); }
  if (ROWS > 1u) { store(m0 + 1u, n, acc1); }
  if (ROWS > 2u) { store(m0 + 2u, n, acc2); }
  if (ROWS > 3u) { store(m0 + 3u, n, acc3); }
  if (ROWS > 4u) { store(m0 + 4u, n, acc4); }
  if (ROWS > 5u) { store(m0 + 5u, n, acc5); }
  if (ROWS > 6u) { store(m0 + 6u, n, acc6); }
  if (ROWS > 7u) { store(m0 + 7u, n, acc7); }
}
