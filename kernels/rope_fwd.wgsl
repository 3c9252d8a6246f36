// Rotary position embedding, HF rotate-half convention, applied IN PLACE to rows of n_heads head
// vectors of hd. For head vector v at position p, half = hd / 2, i < half:
//   v'[i]        = v[i] * cos[p, i] - v[i + half] * sin[p, i]
//   v'[i + half] = v[i + half] * cos[p, i] + v[i] * sin[p, i]
// Sequence b, step t lives at buffer row b * seq_stride + row_offset + t and has position pos0 + t
// (Q: seq_stride = T, row_offset = 0; K cache [B, Tmax]: seq_stride = Tmax, row_offset = pos0).
//
// Bindings:
//   @binding(0) params: { B, T, seq_stride, row_offset, pos0, n_heads, hd }
//   @binding(1) x:   array<f32> [B * seq_stride, n_heads * hd]   rotated in place (=)
//   @binding(2) cos: array<f32> [maxPos, hd / 2]   table from src/model/rope-table.ts (pos0 + T <= maxPos)
//   @binding(3) sin: array<f32> [maxPos, hd / 2]
// Dispatch: one thread per (b, t, head, i < half): grid1d(ceil(B * T * n_heads * hd / 2 / WG)).

//#include "grid.wgsl"
//#include "rope_pairs.wgsl"

// Threads per workgroup (one (cos, sin) pair of one head each).
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
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
  let v_lo = x[r.lo];
  let v_hi = x[r.hi];
  x[r.lo] = v_lo * c - v_hi * s;
  x[r.hi] = v_hi * c + v_lo * s;
}
