// Elementwise accumulate: y[i] += x[i], for residual adds that no kernel epilogue can fuse.
//
// Bindings:
//   @binding(0) params: { n }          element count, any n
//   @binding(1) x: array<f32> [n]      addend
//   @binding(2) y: array<f32> [n]      output (+=)
// Dispatch: one thread per element, grid1d(ceil(n / WG)).

//#include "grid.wgsl"

// Threads per workgroup (one element each).
override WG: u32 = 256u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i < p.n) {
    y[i] += x[i];
  }
}
