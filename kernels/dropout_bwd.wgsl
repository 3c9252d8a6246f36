// Backward of kernels/dropout_fwd.wgsl (out = x · kept_scale on kept elements, 0 elsewhere):
//   dx[i] += dout[i] · kept_scale   if element i was kept (the same mask: same key, same index)
// It accumulates because a LoRA module's input also carries the frozen base weight's gradient.
//
// Bindings:
//   @binding(0) params: { n, key, drop_below, kept_scale }   as in the forward call
//   @binding(1) dout: array<f32> [n]     gradient of the dropout's output
//   @binding(2) dx:   array<f32> [n]     gradient of its input (+=)
// Dispatch: one thread per element, grid1d(ceil(n / WG)).

//#include "grid.wgsl"
//#include "dropout_mask.wgsl"

// Threads per workgroup (one element each).
override WG: u32 = 256u;

struct Params {
  n: u32,
  key: u32,
  drop_below: u32,
  kept_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.n) {
    return;
  }
  if (dropout_kept(p.key, i, p.drop_below)) {
    dx[i] += dout[i] * p.kept_scale;
  }
}
