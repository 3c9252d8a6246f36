// Writes the new K and V rows of a batch of independent rows into their sequences' KV caches:
// row r goes to cache row places[r].slot * Tmax + places[r].pos (src/model/rows-forward.ts; the
// K rows have RoPE applied already). A plain copy: results are bit-exact.
//   k_cache[(slot_r * Tmax + pos_r) * W + c] = k_rows[r * W + c]    (same for v), c < W = nKV * hd
// Rows must go to distinct cache rows (the host checks: distinct slots for decode rows, distinct
// positions within one prefill chunk), else two threads would write the same element.
//
// Bindings:
//   @binding(0) params:  { R, Tmax, W }
//   @binding(1) k_rows:  array<f32> [R, W]
//   @binding(2) v_rows:  array<f32> [R, W]
//   @binding(3) places:  array<RowPlace> [R]           (slot, pos) of each row, pos < Tmax
//   @binding(4) k_cache: array<f32> [slots, Tmax, W]   rows of `places` written (=), others untouched
//   @binding(5) v_cache: array<f32> [slots, Tmax, W]   idem
// Dispatch: one thread per (r, c): grid1d(ceil(R * W / WG)).

//#include "grid.wgsl"
//#include "row_places.wgsl"

// Threads per workgroup (one element of K and one of V each).
override WG: u32 = 64u;

struct Params {
  R: u32,
  Tmax: u32,
  W: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k_rows: array<f32>;
@group(0) @binding(2) var<storage, read> v_rows: array<f32>;
@group(0) @binding(3) var<storage, read> places: array<RowPlace>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear_workgroup(wg, nwg) * WG + lid;
  if (idx >= p.R * p.W) {
    return;
  }
  let r = idx / p.W;
  let c = idx % p.W;
  let place = places[r];
  let dst = (place.slot * p.Tmax + place.pos) * p.W + c;
  k_cache[dst] = k_rows[idx];
  v_cache[dst] = v_rows[idx];
}
