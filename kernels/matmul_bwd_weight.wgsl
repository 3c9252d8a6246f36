// Linear layer backward, weight gradient: dW = dYᵀ · X over all M rows, f32 accumulation.
//   dW[w_offset + n·K + k]  (= or +=)  Σ_m dY[y_offset + m·ldy + n] · X[x_offset + m·K + k]
// Owner-computes, no atomics: each invocation owns its RM × RN elements of dW and loops over all
// M rows (the long axis, M = B·T up to thousands) in shared-memory tiles of TILE_S rows
// (kernels/include/matmul_tiled.wgsl). += accumulates the gradient across micro-batches.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) dy: array<f32> [M, ldy] at y_offset, columns [0, N)    upstream gradient
//   @binding(2) x:  array<f32> [M, K] at x_offset, row stride K        forward input
//   @binding(3) dw: array<f32> [N, K] at w_offset (always f32)         output: = or += (ACCUMULATE)
// Dispatch: (ceil(K / (WG_N·RN)), ceil(N / (WG_M·RM))), workgroup_size (WG_N, WG_M).

//#include "matmul_tiled.wgsl"

override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// C = dW: rows n, cols k, reduction s = m. A[n, m] = dY[m, n] (contiguous along n), B = X (contiguous along k).
const A_ALONG_S = false;
const B_ALONG_COL = true;

fn mm_readA(n: u32, m: u32) -> f32 {
  if (n >= p.N || m >= p.M) {
    return 0.0;
  }
  return dy[p.y_offset + m * p.ldy + n];
}

fn mm_readB(m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) {
    return 0.0;
  }
  return x[p.x_offset + m * p.K + k];
}

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = wg.y * TILE_M;
  let k0 = wg.x * TILE_N;
  let acc = mm_tile_product(n0, k0, p.M, lid.x, lid.y);
  for (var i = 0u; i < RM; i++) {
    let n = n0 + lid.y + i * WG_M;
    for (var j = 0u; j < RN; j++) {
      let k = k0 + lid.x + j * WG_N;
      if (n < p.N && k < p.K) {
        let o = p.w_offset + n * p.K + k;
        if (ACCUMULATE) {
          dw[o] += acc[i][j];
        } else {
          dw[o] = acc[i][j];
        }
      }
    }
  }
}
