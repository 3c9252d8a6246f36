// Gradient-norm pass 1 of 2 (torch.nn.utils.clip_grad_norm_, norm_type 2): per-workgroup partial
// sums of squares of one gradient tensor (or a chunk of one), in f32.
//
// Bindings:
//   @binding(0) params: { n, offset, slot }
//   @binding(1) grad:     array<f32> [offset + n]  the tensor is grad[offset .. offset + n)
//   @binding(2) partials: array<f32> [slot + ceil(n / (WG * PER_THREAD))]
//                         partials[slot + w] = Σ grad[offset + i]² over workgroup w's chunk (=)
// Dispatch: grid1d(ceil(n / (WG * PER_THREAD))) workgroups (w = wg.x + wg.y * num_workgroups.x).
// Workgroup w owns elements [w·WG·PER_THREAD, (w+1)·WG·PER_THREAD); thread t reads every WG-th of
// them starting at t (coalesced), then the WG sums are tree-reduced in shared memory. No atomics
// and a fixed summation order, so the result is deterministic; grad_norm_finalize.wgsl sums the
// partials of all tensors (two-pass reduction). The host gives each tensor its own `slot` range.

//#include "grid.wgsl"

// Must be a power of two (tree reduction).
override WG: u32 = 256u;
override PER_THREAD: u32 = 8u;

struct Params {
  n: u32,
  offset: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wg, nwg);
  let chunk = WG * PER_THREAD;
  // No early return before the barriers: the whole workgroup must reach them (uniformity).
  let valid = w < (p.n + chunk - 1u) / chunk;
  let base = w * chunk;
  var sum = 0.0;
  if (valid) {
    for (var j = 0u; j < PER_THREAD; j++) {
      let i = base + j * WG + lid;
      if (i < p.n) {
        let g = grad[p.offset + i];
        sum += g * g;
      }
    }
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) {
    partials[p.slot + w] = red[0];
  }
}
