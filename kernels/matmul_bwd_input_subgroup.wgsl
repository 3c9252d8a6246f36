// Linear layer backward, input gradient, subgroup variant: dX = dY · W, f32 accumulation — same
// math, bindings, params and outputs as matmul_bwd_input.wgsl; only the tiling differs
// (kernels/include/matmul_subgroup.wgsl: dY values shared by subgroupBroadcast, no barriers).
//   dX[x_offset + m·K + k]  (= or +=)  Σ_n dY[y_offset + m·ldy + n] · W[w_offset + n·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) dy: array<f32> [M, ldy] at y_offset, columns [0, N)
//   @binding(2) w:  array<u32> [N, K] at w_offset: bf16 packed two per u32, element e in word e/2
//        (W_BF16 = true; K and w_offset may be odd) or f32 bits (W_BF16 = false)
//   @binding(3) dx: array<f32> [M, K] at x_offset, row stride K: = or += (ACCUMULATE)
// Dispatch: (ceil(K / (4·WG)), ceil(M / ROWS)), workgroup_size WG.

enable subgroups;

//#include "matmul_subgroup.wgsl"

override W_BF16: bool = true;
override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// A = dY: rows m, reduction s = n, clamped into range (see the include).
fn sg_readA(m: u32, n: u32) -> f32 {
  return dy[p.y_offset + min(m, p.M - 1u) * p.ldy + min(n, p.N - 1u)];
}

// W[n, k .. k+3]; columns past K read other elements (their outputs are never stored).
fn w_cols4(n: u32, k: u32) -> vec4<f32> {
  let e = p.w_offset + n * p.K + k;
  var v: vec4<f32>;
  if (W_BF16) {
    // k is even, so e is even for every row unless K or w_offset is odd (a uniform condition):
    // then 4 elements span 2 words, else 2 or 3.
    let q = e >> 1u;
    let w0 = w[q];
    let w1 = w[q + 1u];
    if (((p.K | p.w_offset) & 1u) == 0u) {
      v = vec4<f32>(bitcast<f32>(w0 << 16u), bitcast<f32>(w0 & 0xffff0000u),
                    bitcast<f32>(w1 << 16u), bitcast<f32>(w1 & 0xffff0000u));
    } else {
      let w2 = w[q + 2u]; // unused by even starts; past the end of w it is clamped, then unused
      let even = vec4<f32>(bitcast<f32>(w0 << 16u), bitcast<f32>(w0 & 0xffff0000u),
                           bitcast<f32>(w1 << 16u), bitcast<f32>(w1 & 0xffff0000u));
      let odd = vec4<f32>(bitcast<f32>(w0 & 0xffff0000u), bitcast<f32>(w1 << 16u),
                          bitcast<f32>(w1 & 0xffff0000u), bitcast<f32>(w2 << 16u));
      v = select(even, odd, (e & 1u) == 1u);
    }
  } else {
    v = vec4<f32>(bitcast<f32>(w[e]), bitcast<f32>(w[e + 1u]), bitcast<f32>(w[e + 2u]), bitcast<f32>(w[e + 3u]));
  }
  return v;
}

// B = W: [j][c] = W[n0 + j, k + c] (rows past N → 0).
fn sg_readB(n0: u32, k: u32) -> array<vec4<f32>, 8> {
  var b: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) {
    let n = n0 + j;
    b[j] = select(vec4<f32>(0.0), w_cols4(min(n, p.N - 1u), k), n < p.N);
  }
  return b;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let m0 = wg.y * ROWS;
  let k = (wg.x * WG + lid) * 4u;
  let acc = sg_product(m0, k, p.N, sid);
  for (var i = 0u; i < ROWS; i++) {
    let m = m0 + i;
    for (var c = 0u; c < 4u; c++) {
      if (m < p.M && k + c < p.K) {
        let o = p.x_offset + m * p.K + k + c;
        if (ACCUMULATE) {
          dx[o] += acc[i][c];
        } else {
          dx[o] = acc[i][c];
        }
      }
    }
  }
}
