// Softmax with temperature, for sampling: probs[r, :] = softmax(logits[r, :] * inv_temperature),
// numerically stable (the row max of the scaled logits is subtracted before exp).
//
// Bindings:
//   @binding(0) params: { R, V, logits_offset, probs_offset, inv_temperature }
//   @binding(1) logits: array<f32> [.., V]  row r at element logits_offset + r * V
//   @binding(2) probs:  array<f32> [.., V]  row r at element probs_offset + r * V: output (=)
// Dispatch: one workgroup per row, grid1d(R) (row = wg.x + wg.y * num_workgroups.x). Each thread
// keeps an online (max, sum of exp) over a strided slice of the row; the pairs are merged in shared
// memory, then a second sweep writes the probabilities.

//#include "grid.wgsl"

// Threads per row; a power of two (tree reduction).
override WG: u32 = 256u;

struct Params {
  R: u32,
  V: u32,
  logits_offset: u32,
  probs_offset: u32,
  inv_temperature: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

// The lowest finite f32: a running max that starts here needs no infinities (which WGSL need not honour).
const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> part_max: array<f32, WG>;
var<workgroup> part_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wg, nwg);
  // No early return before the barriers: the whole workgroup must reach them (uniformity).
  let valid = row < p.R;
  let base = p.logits_offset + row * p.V;
  var m = LOWEST;
  var s = 0.0;
  if (valid) {
    for (var c = lid; c < p.V; c += WG) {
      let v = logits[base + c] * p.inv_temperature;
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  part_max[lid] = m;
  part_sum[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let m1 = part_max[lid];
      let m2 = part_max[lid + stride];
      let mm = max(m1, m2);
      part_sum[lid] = part_sum[lid] * exp(m1 - mm) + part_sum[lid + stride] * exp(m2 - mm);
      part_max[lid] = mm;
    }
    workgroupBarrier();
  }
  if (valid) {
    let row_max = part_max[0];
    let inv_sum = 1.0 / part_sum[0];
    for (var c = lid; c < p.V; c += WG) {
      probs[p.probs_offset + row * p.V + c] = exp(logits[base + c] * p.inv_temperature - row_max) * inv_sum;
    }
  }
}
