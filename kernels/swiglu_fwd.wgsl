// SwiGLU (LLaMA MLP gate): h = silu(g) * u elementwise, silu(g) = g * sigmoid(g), in f32.
//
// Bindings:
//   @binding(0) params: { n }                 element count (rows * I), any n
//   @binding(1) g: array<f32> [rows, I]       gate projection
//   @binding(2) u: array<f32> [rows, I]       up projection
//   @binding(3) h: array<f32> [rows, I]       output (=)
// Dispatch: one thread per element, grid1d(ceil(n / WG)).

//#include "grid.wgsl"
//#include "sigmoid.wgsl"

// Threads per workgroup (one element each).
override WG: u32 = 256u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.n) {
    return;
  }
  let gv = g[i];
  let sig = sigmoid(gv);
  h[i] = gv * sig * u[i];
}
