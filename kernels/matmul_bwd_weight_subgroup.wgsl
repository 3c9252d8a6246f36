// Linear layer backward, weight gradient, subgroup variant: dW = dYᵀ · X over all M rows, f32
// accumulation — same math, bindings, params and outputs as matmul_bwd_weight.wgsl; only the
// tiling differs (kernels/include/matmul_subgroup.wgsl: dY values shared by subgroupBroadcast).
//   dW[w_offset + n·K + k]  (= or +=)  Σ_m dY[y_offset + m·ldy + n] · X[x_offset + m·K + k]
// Owner-computes, no atomics: each invocation owns 4 consecutive elements in each of ROWS rows of
// dW and loops over all M rows (the long axis) itself. Requires the `subgroups` feature with
// subgroups of ≥ 8 invocations.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) dy: array<f32> [M, ldy] at y_offset, columns [0, N)
//   @binding(2) x:  array<f32> [M, K] at x_offset, row stride K
//   @binding(3) dw: array<f32> [N, K] at w_offset (always f32): = or += (ACCUMULATE)
// Dispatch: (ceil(K / (4·WG)), ceil(N / ROWS)), workgroup_size WG.

enable subgroups;

//#include "matmul_subgroup.wgsl"

override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// A[n, m] = dY[m, n]: rows n, reduction s = m, clamped into range (see the include).
fn sg_readA(n: u32, m: u32) -> f32 {
  return dy[p.y_offset + min(m, p.M - 1u) * p.ldy + min(n, p.N - 1u)];
}

// B = X: [j][c] = X[m0 + j, k + c]; rows past M → 0, columns past K are clamped (never stored).
fn sg_readB(m0: u32, k: u32) -> array<vec4<f32>, 8> {
  var b: array<vec4<f32>, 8>;
  let kc = min(k + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.K - 1u));
  for (var j = 0u; j < 8u; j++) {
    let m = m0 + j;
    let base = p.x_offset + min(m, p.M - 1u) * p.K;
    let v = vec4<f32>(x[base + kc.x], x[base + kc.y], x[base + kc.z], x[base + kc.w]);
    b[j] = select(vec4<f32>(0.0), v, m < p.M);
  }
  return b;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let n0 = wg.y * ROWS;
  let k = (wg.x * WG + lid) * 4u;
  let acc = sg_product(n0, k, p.M, sid);
  for (var i = 0u; i < ROWS; i++) {
    let n = n0 + i;
    for (var c = 0u; c < 4u; c++) {
      if (n < p.N && k + c < p.K) {
        let o = p.w_offset + n * p.K + k + c;
        if (ACCUMULATE) {
          dw[o] += acc[i][c];
        } else {
          dw[o] = acc[i][c];
        }
      }
    }
  }
}
