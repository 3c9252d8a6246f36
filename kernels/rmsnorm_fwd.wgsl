// RMSNorm forward (LLaMA): y = x * rsqrt(mean(x^2) + eps) * w, in f32.
//
// Bindings:
//   @binding(0) params: { rows, cols, eps }
//   @binding(1) x:    array<f32> [rows, cols]   input
//   @binding(2) w:    array<u32> [cols]         norm weight: f32 bits, or bf16 packed two per word (W_BF16)
//   @binding(3) y:    array<f32> [rows, cols]   output (=)
//   @binding(4) rstd: array<f32> [rows]         1/sqrt(mean(x^2)+eps), saved for the backward (=)
// Dispatch: one workgroup per row, grid1d(rows) (row = wg.x + wg.y * num_workgroups.x).
// Each thread sums a strided slice of the row; the partial sums are reduced in shared memory.

//#include "grid.wgsl"
//#include "bf16.wgsl"

// Threads per row; a power of two (tree reduction).
override WG: u32 = 64u;
// Norm weight stored as bf16 (the model's bf16 copy) instead of f32.
override W_BF16: bool = false;

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn weight(c: u32) -> f32 {
  if (W_BF16) {
    return bf16_unpack(w[c / 2u], c);
  }
  return bitcast<f32>(w[c]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wg, nwg);
  // No early return before the barriers: the whole workgroup must reach them (uniformity).
  let valid = row < p.rows;
  let base = row * p.cols;
  var sum = 0.0;
  if (valid) {
    for (var c = lid; c < p.cols; c += WG) {
      let v = x[base + c];
      sum += v * v;
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
  let r = inverseSqrt(partial[0] / f32(p.cols) + p.eps);
  if (valid) {
    for (var c = lid; c < p.cols; c += WG) {
      y[base + c] = x[base + c] * r * weight(c);
    }
    if (lid == 0u) {
      rstd[row] = r;
    }
  }
}
