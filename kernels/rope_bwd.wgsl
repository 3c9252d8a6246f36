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
//   @binding(2) cos: array<f32> [maxPos, hd / 2]   table from src/gpu/rope-table.ts (pos0 + T <= maxPos)
//   @binding(3) sin: array<f32> [maxPos, hd / 2]
// Dispatch: one thread per (b, t, head, i < half): grid1d(ceil(B * T * n_heads * hd / 2 / WG)).

//#include "grid.wgsl"

// Threads per workgroup (one (cos, sin) pair of one head each).
override WG: u32 = 64u;

struct Params {
  B: u32,
  T: u32,
  seq_stride: u32,
  row_offset: u32,
  pos0: u32,
  n_heads: u32,
  hd: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear_workgroup(wg, nwg) * WG + lid;
  let half = p.hd / 2u;
  let per_row = p.n_heads * half;
  if (idx >= p.B * p.T * per_row) {
    return;
  }
  let i = idx % half;
  let head = (idx / half) % p.n_heads;
  let bt = idx / per_row;
  let t = bt % p.T;
  let b = bt / p.T;
  let row = b * p.seq_stride + p.row_offset + t;
  let lo = (row * p.n_heads + head) * p.hd + i;
  let hi = lo + half;
  let tab = (p.pos0 + t) * half + i;
  let c = cos_t[tab];
  let s = sin_t[tab];
  let g_lo = g[lo];
  let g_hi = g[hi];
  g[lo] = g_lo * c + g_hi * s;
  g[hi] = g_hi * c - g_lo * s;
}
