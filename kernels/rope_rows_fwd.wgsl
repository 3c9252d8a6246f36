// Rotary position embedding, HF rotate-half convention (the same rotation as rope_fwd.wgsl),
// applied IN PLACE to R dense rows of n_heads head vectors, each row at its OWN position
// places[r].pos (rows of different sequences, src/model/rows-forward.ts). For head vector v of
// row r at p = places[r].pos, half = hd / 2, i < half:
//   v'[i]        = v[i] * cos[p, i] - v[i + half] * sin[p, i]
//   v'[i + half] = v[i + half] * cos[p, i] + v[i] * sin[p, i]
// A row's result depends on its own values and position only (not on R or the other rows).
//
// Bindings:
//   @binding(0) params: { R, n_heads, hd }
//   @binding(1) x:      array<f32> [R, n_heads * hd]   rotated in place (=)
//   @binding(2) cos:    array<f32> [maxPos, hd / 2]    table from src/model/rope-table.ts (pos < maxPos)
//   @binding(3) sin:    array<f32> [maxPos, hd / 2]
//   @binding(4) places: array<RowPlace> [R]            (slot, pos) of each row; slot is not read
// Dispatch: one thread per (r, head, i < half): grid1d(ceil(R * n_heads * hd / 2 / WG)).

//#include "grid.wgsl"
//#include "row_places.wgsl"

// Threads per workgroup (one (cos, sin) pair of one head each).
override WG: u32 = 64u;

struct Params {
  R: u32,
  n_heads: u32,
  hd: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;
@group(0) @binding(4) var<storage, read> places: array<RowPlace>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear_workgroup(wg, nwg) * WG + lid;
  let half = p.hd / 2u;
  let per_row = p.n_heads * half;
  if (idx >= p.R * per_row) {
    return;
  }
  let r = idx / per_row;
  let head = (idx / half) % p.n_heads;
  let i = idx % half;
  let lo = (r * p.n_heads + head) * p.hd + i;
  let hi = lo + half;
  let tab = places[r].pos * half + i;
  let c = cos_t[tab];
  let s = sin_t[tab];
  let v_lo = x[lo];
  let v_hi = x[hi];
  x[lo] = v_lo * c - v_hi * s;
  x[hi] = v_hi * c + v_lo * s;
}
