// Linear layer forward (PyTorch nn.Linear, no bias): Y = X · Wᵀ, f32 accumulation.
//   Y[y_offset + m·ldy + n]  (= or +=)  Σ_k X[x_offset + m·K + k] · W[w_offset + n·K + k]
// Classic shared-memory tiling (kernels/include/matmul_tiled.wgsl): any M, N, K, any offsets.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) x: array<f32> [M, K] at x_offset, row stride K          input activations
//   @binding(2) w: array<u32> [N, K] at w_offset                        weights, nn.Linear layout:
//        W_BF16 = true:  bf16 packed two per u32, element e in word e/2 (low half when e is even;
//                        K and w_offset may be odd)
//        W_BF16 = false: f32 bits
//   @binding(3) y: array<f32> [M, ldy] at y_offset, columns [0, N)     output: = (ACCUMULATE = false)
//        or += (ACCUMULATE = true: o_proj/down_proj add straight into the residual stream).
//        ldy ≥ N lets a chunk of W's rows write its column slice of a wider Y (y_offset = first
//        column) and lets K/V projections write into a KV cache at row pos0.
// Dispatch: (ceil(N / (WG_N·RN)), ceil(M / (WG_M·RM))), workgroup_size (WG_N, WG_M).

//#include "bf16.wgsl"
//#include "matmul_tiled.wgsl"

override W_BF16: bool = true;
override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// C = Y: rows m, cols n, reduction s = k. A = X (contiguous along k), B[k, n] = W[n, k] (contiguous along k).
const A_ALONG_S = true;
const B_ALONG_COL = false;

fn mm_readA(m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) {
    return 0.0;
  }
  return x[p.x_offset + m * p.K + k];
}

fn mm_readB(k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) {
    return 0.0;
  }
  let e = p.w_offset + n * p.K + k;
  if (W_BF16) {
    return bf16_unpack(w[e >> 1u], e);
  }
  return bitcast<f32>(w[e]);
}

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m0 = wg.y * TILE_M;
  let n0 = wg.x * TILE_N;
  let acc = mm_tile_product(m0, n0, p.K, lid.x, lid.y);
  for (var i = 0u; i < RM; i++) {
    let m = m0 + lid.y + i * WG_M;
    for (var j = 0u; j < RN; j++) {
      let n = n0 + lid.x + j * WG_N;
      if (m < p.M && n < p.N) {
        let o = p.y_offset + m * p.ldy + n;
        if (ACCUMULATE) {
          y[o] += acc[i][j];
        } else {
          y[o] = acc[i][j];
        }
      }
    }
  }
}
