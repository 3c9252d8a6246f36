// RMSNorm backward, input gradient (LLaMA): differentiates y = x * rstd * w, rstd = (mean(x^2) + eps)^-1/2:
//   dx[r, c] = rstd_r * w[c] * dy[r, c] - x[r, c] * rstd_r^3 / cols * sum_c' dy[r, c'] * w[c'] * x[r, c']
// The weight gradient is the separate kernel rmsnorm_bwd_weight.wgsl (a reduction over rows).
//
// Bindings:
//   @binding(0) params: { rows, cols }
//   @binding(1) dy:   array<f32> [rows, cols]   gradient of y
//   @binding(2) x:    array<f32> [rows, cols]   forward input
//   @binding(3) w:    array<u32> [cols]         norm weight: f32 bits, or bf16 packed two per word (W_BF16)
//   @binding(4) rstd: array<f32> [rows]         saved by rmsnorm_fwd.wgsl
//   @binding(5) dx:   array<f32> [rows, cols]   output: = (ACCUMULATE false) or += (ACCUMULATE true,
//                                               e.g. straight into the residual stream's gradient)
// Dispatch: one workgroup per row, grid1d(rows) (row = wg.x + wg.y * num_workgroups.x).
// Each thread sums a strided slice of the row's dot product; partials are reduced in shared memory.

//#include "grid.wgsl"
//#include "bf16.wgsl"

// Threads per row; a power of two (tree reduction).
override WG: u32 = 64u;
// Norm weight stored as bf16 (as in rmsnorm_fwd.wgsl) instead of f32.
override W_BF16: bool = false;
// dx += instead of dx =.
override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

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
      sum += dy[base + c] * weight(c) * x[base + c];
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
  if (valid) {
    let r = rstd[row];
    // x * rstd^3 / cols * dot, with the row constant folded once.
    let k = r * r * r * partial[0] / f32(p.cols);
    for (var c = lid; c < p.cols; c += WG) {
      let g = r * weight(c) * dy[base + c] - x[base + c] * k;
      if (ACCUMULATE) {
        dx[base + c] += g;
      } else {
        dx[base + c] = g;
      }
    }
  }
}
