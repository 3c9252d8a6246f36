// Linear layer backward, input gradient: dX = dY · W, f32 accumulation.
//   dX[x_offset + m·K + k]  (= or +=)  Σ_n dY[y_offset + m·ldy + n] · W[w_offset + n·K + k]
// Called once per row chunk of W (a chunk = the rows [n0, n0+N) that fit one binding): the first
// chunk with ACCUMULATE = false (or true onto a zeroed dX), the others with += to sum the chunks.
// Classic shared-memory tiling (kernels/include/matmul_tiled.wgsl): any M, N, K, any offsets.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) dy: array<f32> [M, ldy] at y_offset, columns [0, N)    upstream gradient
//   @binding(2) w:  array<u32> [N, K] at w_offset                      weights as in matmul_fwd
//        (W_BF16: bf16 packed two per u32, element e in word e/2; else f32 bits)
//   @binding(3) dx: array<f32> [M, K] at x_offset, row stride K        output: = or += (ACCUMULATE)
// Dispatch: (ceil(K / (WG_N·RN)), ceil(M / (WG_M·RM))), workgroup_size (WG_N, WG_M).

//#include "bf16.wgsl"
//#include "matmul_tiled.wgsl"

override W_BF16: bool = true;
override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// C = dX: rows m, cols k, reduction s = n. A = dY (contiguous along n), B = W (contiguous along k).
const A_ALONG_S = true;
const B_ALONG_COL = true;

fn mm_readA(m: u32, n: u32) -> f32 {
  if (m >= p.M || n >= p.N) {
    return 0.0;
  }
  return dy[p.y_offset + m * p.ldy + n];
}

fn mm_readB(n: u32, k: u32) -> f32 {
  if (n >= p.N || k >= p.K) {
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
  let k0 = wg.x * TILE_N;
  let acc = mm_tile_product(m0, k0, p.N, lid.x, lid.y);
  for (var i = 0u; i < RM; i++) {
    let m = m0 + lid.y + i * WG_M;
    for (var j = 0u; j < RN; j++) {
      let k = k0 + lid.x + j * WG_N;
      if (m < p.M && k < p.K) {
        let o = p.x_offset + m * p.K + k;
        if (ACCUMULATE) {
          dx[o] += acc[i][j];
        } else {
          dx[o] = acc[i][j];
        }
      }
    }
  }
}
