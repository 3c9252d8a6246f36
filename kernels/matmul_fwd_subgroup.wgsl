// Linear layer forward, subgroup variant: Y = X · Wᵀ, f32 accumulation — same math, bindings,
// params and outputs as matmul_fwd.wgsl; only the tiling differs (kernels/include/matmul_subgroup.wgsl:
// X values shared by subgroupBroadcast, no workgroup memory, no barriers). Any M, N, K, offsets.
//   Y[y_offset + m·ldy + n]  (= or +=)  Σ_k X[x_offset + m·K + k] · W[w_offset + n·K + k]
// Requires the `subgroups` feature with subgroups of ≥ 8 invocations.
//
// Bindings:
//   @binding(0) p: Params { M, N, K, x_offset, w_offset, y_offset, ldy }   (all u32, elements)
//   @binding(1) x: array<f32> [M, K] at x_offset, row stride K
//   @binding(2) w: array<u32> [N, K] at w_offset: bf16 packed two per u32, element e in word e/2
//        (W_BF16 = true; K and w_offset may be odd) or f32 bits (W_BF16 = false)
//   @binding(3) y: array<f32> [M, ldy] at y_offset, columns [0, N): = or += (ACCUMULATE)
// Dispatch: (ceil(N / (4·WG)), ceil(M / ROWS)), workgroup_size WG.

enable subgroups;

//#include "matmul_subgroup.wgsl"

override W_BF16: bool = true;
override ACCUMULATE: bool = false;

//#include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// A = X: rows m, reduction s = k, clamped into range (see the include).
fn sg_readA(m: u32, k: u32) -> f32 {
  return x[p.x_offset + min(m, p.M - 1u) * p.K + min(k, p.K - 1u)];
}

// W[n, k0 .. k0+7] for one row n (k past K → 0; n is clamped by the caller).
fn w_row8(n: u32, k0: u32) -> array<f32, 8> {
  var v: array<f32, 8>;
  let e0 = p.w_offset + n * p.K + k0;
  if (W_BF16) {
    // Elements e0 .. e0+7 span words e0/2 .. e0/2+3 when e0 is even; rows start on odd
    // elements when K or w_offset is odd (a uniform condition), then 5 words are needed.
    let q = e0 >> 1u;
    let w0 = w[q];
    let w1 = w[q + 1u];
    let w2 = w[q + 2u];
    let w3 = w[q + 3u];
    if (((p.K | p.w_offset) & 1u) == 0u) {
      v = array<f32, 8>(bitcast<f32>(w0 << 16u), bitcast<f32>(w0 & 0xffff0000u),
                        bitcast<f32>(w1 << 16u), bitcast<f32>(w1 & 0xffff0000u),
                        bitcast<f32>(w2 << 16u), bitcast<f32>(w2 & 0xffff0000u),
                        bitcast<f32>(w3 << 16u), bitcast<f32>(w3 & 0xffff0000u));
    } else {
      let w4 = w[q + 4u]; // unused by even starts; past the end of w it is clamped, then unused
      let odd = (e0 & 1u) == 1u;
      let lo = array<f32, 5>(bitcast<f32>(w0 << 16u), bitcast<f32>(w1 << 16u), bitcast<f32>(w2 << 16u),
                             bitcast<f32>(w3 << 16u), bitcast<f32>(w4 << 16u));
      let hi = array<f32, 4>(bitcast<f32>(w0 & 0xffff0000u), bitcast<f32>(w1 & 0xffff0000u),
                             bitcast<f32>(w2 & 0xffff0000u), bitcast<f32>(w3 & 0xffff0000u));
      for (var j = 0u; j < 4u; j++) {
        v[2u * j] = select(lo[j], hi[j], odd);
        v[2u * j + 1u] = select(hi[j], lo[j + 1u], odd);
      }
    }
  } else {
    for (var j = 0u; j < 8u; j++) {
      v[j] = bitcast<f32>(w[e0 + j]);
    }
  }
  for (var j = 0u; j < 8u; j++) {
    v[j] = select(0.0, v[j], k0 + j < p.K);
  }
  return v;
}

// B[k, n] = W[n, k]: 8 steps of k for the 4 columns n .. n+3 (columns past N re-read row N - 1).
fn sg_readB(k0: u32, n: u32) -> array<vec4<f32>, 8> {
  let r0 = w_row8(min(n, p.N - 1u), k0);
  let r1 = w_row8(min(n + 1u, p.N - 1u), k0);
  let r2 = w_row8(min(n + 2u, p.N - 1u), k0);
  let r3 = w_row8(min(n + 3u, p.N - 1u), k0);
  var b: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) {
    b[j] = vec4<f32>(r0[j], r1[j], r2[j], r3[j]);
  }
  return b;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let m0 = wg.y * ROWS;
  let n = (wg.x * WG + lid) * 4u;
  let acc = sg_product(m0, n, p.K, sid);
  for (var i = 0u; i < ROWS; i++) {
    let m = m0 + i;
    for (var c = 0u; c < 4u; c++) {
      if (m < p.M && n + c < p.N) {
        let o = p.y_offset + m * p.ldy + n + c;
        if (ACCUMULATE) {
          y[o] += acc[i][c];
        } else {
          y[o] = acc[i][c];
        }
      }
    }
  }
}
