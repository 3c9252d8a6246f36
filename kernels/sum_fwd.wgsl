// Sum of a buffer, deterministic and without atomics (WGSL has no float atomics), in two passes of
// this one kernel: pass 1 with G workgroups writes G partial sums, pass 2 with one workgroup sums
// those into the final scalar. Workgroup g sums elements [g * chunk, min((g + 1) * chunk, n)):
//   out[out_offset + g] (= or +=) scale * sum of x[in_offset + i] over its elements
// e.g. the trainer's loss: pass 1 over the per-row losses (scale 1), pass 2 over the partials with
// scale = grad_scale (1 / target tokens) and ACCUMULATE, collecting each micro-batch's mean loss
// into one f32 that is read back once per step.
//
// Bindings:
//   @binding(0) params: { n, in_offset, out_offset, chunk, scale }
//   @binding(1) x:   array<f32> [in_offset + n]
//   @binding(2) out: array<f32> [out_offset + ceil(n / chunk)]   output: = (ACCUMULATE false) or +=
// Dispatch: ceil(n / chunk) workgroups, grid1d (g = wg.x + wg.y * num_workgroups.x). A single pass
// (chunk >= n, one workgroup) is fine for small n; two passes spread large n over the device.

//#include "grid.wgsl"

// Threads per workgroup; a power of two (tree reduction).
override WG: u32 = 256u;
// out += instead of out =.
override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  in_offset: u32,
  out_offset: u32,
  chunk: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = linear_workgroup(wg, nwg);
  // No early return before the barriers: the whole workgroup must reach them (uniformity).
  let start = g * p.chunk;
  let valid = start < p.n;
  let end = min(start + p.chunk, p.n);
  var sum = 0.0;
  if (valid) {
    for (var i = start + lid; i < end; i += WG) {
      sum += x[p.in_offset + i];
    }
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) {
    let total = partial[0] * p.scale;
    if (ACCUMULATE) {
      out[p.out_offset + g] += total;
    } else {
      out[p.out_offset + g] = total;
    }
  }
}
