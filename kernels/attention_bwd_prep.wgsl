// Causal attention backward, pass 1 of 3: the per-(query, head) dot D = rowsum(dO ∘ O), which
// equals Σ_j P_j dP_j (the softmax-backward correction term). Saved once so that neither the dQ
// pass nor the dK/dV pass (which visits each query from many key rows) recomputes it.
//
// Bindings:
//   @binding(0) params: { rows, nH, hd }   (layout 'uuu'; rows = B*T)
//   @binding(1) o:    array<f32> [rows, nH*hd]   forward output
//   @binding(2) dout: array<f32> [rows, nH*hd]   gradient of the loss wrt o
//   @binding(3) dsum: array<f32> [rows*nH]       D at row*nH + h (=)
// Dispatch: grid1d(ceil(rows*nH / WG)) workgroups of WG threads, one thread per (row, head)
// (index = (wg.x + wg.y * num_workgroups.x) * WG + lid).

//#include "grid.wgsl"

override WG: u32 = 64u;

struct Params {
  rows: u32,
  nH: u32,
  hd: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.rows * p.nH) {
    return;
  }
  // Row i / nH, head i % nH: the (row, head) slice is contiguous at i * hd.
  let base = i * p.hd;
  var sum = 0.0;
  for (var c = 0u; c < p.hd; c++) {
    sum += dout[base + c] * o[base + c];
  }
  dsum[i] = sum;
}
