// Rotary position embedding backward: the transpose of rope_fwd.wgsl's per-pair rotation, i.e. the
// rotation by -angle, applied IN PLACE to the gradient. For gradient g at position p, i < half:
//   g'[i]        = g[i] * cos[p, i] + g[i + half] * sin[p, i]
//   g'[i + half] = g[i + half] * cos[p, i] - g[i] * sin[p, i]
// Rows and positions exactly as in rope_fwd.wgsl: sequence b, step t is buffer row
// b * seq_stride + row_offset + t at position pos0 + t.
//
// Bindings:
//   @binding(0) params: { B, T, seq_stride, row_offset, pos0, n_heads, hd }
//   @binding(1) g:   array<f32> [B * seq_stride, n_heads * hd]   gradient, rotated in place (=)
//   @binding(2) cos: array<f32> [maxPos, hd / 2]   table from src/model/rope-table.ts (pos0 + T <= maxPos)
//   @binding(3) sin: array<f32> [maxPos, hd / 2]
// Dispatch: one thread per (b, t, head, i < half): grid1d(ceil(B * T * n_heads * hd / 2 / WG)).

//#include "grid.wgsl"
//#include "rope_pairs.wgsl"

// Threads per workgroup (one (cos, sin) pair of one head each).
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear_workgroup(wg, nwg) * WG + lid;
  if (idx >= rope_pair_count(p)) {
    return;
  }
  let r = rope_pair(idx, p);
  let c = cos_t[r.tab];
  let s = sin_t[r.tab];
  let g_lo = g[r.lo];
  let g_hi = g[r.hi];
  g[r.lo] = g_lo * c + g_hi * s;
  g[r.hi] = g_hi * c - g_lo * s;
}
