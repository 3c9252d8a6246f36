// SwiGLU backward: differentiates h = g * sigmoid(g) * u elementwise, in f32:
//   du = dh * g * sigmoid(g)
//   dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))
//
// Bindings:
//   @binding(0) params: { n }                 element count (rows * I), any n
//   @binding(1) dh: array<f32> [rows, I]      gradient of h
//   @binding(2) g:  array<f32> [rows, I]      gate projection (saved or recomputed)
//   @binding(3) u:  array<f32> [rows, I]      up projection (saved or recomputed)
//   @binding(4) dg: array<f32> [rows, I]      output (=)
//   @binding(5) du: array<f32> [rows, I]      output (=)
// Dispatch: one thread per element, grid1d(ceil(n / WG)).

//#include "grid.wgsl"
//#include "sigmoid.wgsl"

// Threads per workgroup (one element each).
override WG: u32 = 256u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dh: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read_write> dg: array<f32>;
@group(0) @binding(5) var<storage, read_write> du: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.n) {
    return;
  }
  let gv = g[i];
  let d = dh[i];
  let sig = sigmoid(gv);
  du[i] = d * gv * sig;
  dg[i] = d * u[i] * sig * (1.0 + gv * (1.0 - sig));
}
