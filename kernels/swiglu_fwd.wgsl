// SwiGLU (LLaMA MLP gate): h = silu(g) * u elementwise, silu(g) = g * sigmoid(g), in f32.
//
// Bindings:
//   @binding(0) params: { n }                 element count (rows * I), any n
//   @binding(1) g: array<f32> [rows, I]       gate projection
//   @binding(2) u: array<f32> [rows, I]       up projection
//   @binding(3) h: array<f32> [rows, I]       output (=)
// Dispatch: EPT elements per thread, grid1d(ceil(n / (WG * EPT))). Workgroup w takes elements
// w·WG·EPT .. (w + 1)·WG·EPT - 1, thread t of it elements t, t + WG, t + 2·WG, ... of those.

//#include "grid.wgsl"
//#include "sigmoid.wgsl"

// Threads per workgroup.
override WG: u32 = 256u;
// Elements per thread: more than 1 where a workgroup costs much (a CPU backend).
override EPT: u32 = 1u;

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
  let i0 = linear_workgroup(wg, nwg) * WG * EPT + lid;
  for (var e = 0u; e < EPT; e++) {
    let i = i0 + e * WG;
    if (i < p.n) {
      let gv = g[i];
      h[i] = gv * sigmoid(gv) * u[i];
    }
  }
}
