// Token embedding lookup: x[r, :] = E[ids[ids_offset + r], :] for rows r < R, reading ONE row chunk of the
// table, rows [row_start, row_start + row_count) (large vocabularies are split so each chunk fits
// one storage binding). Rows whose id falls outside the chunk are left untouched, so one dispatch
// per chunk, in any order, fills every row. ids_offset lets a long prompt be embedded in row
// chunks (prefill in passes that fit the binding limit) from one upload of its ids.
//
// Bindings:
//   @binding(0) params: { R, D, row_start, row_count, ids_offset }
//   @binding(1) ids: array<u32> [ids_offset + R]  token ids
//   @binding(2) E:   array<u32> [row_count, D]   table rows row_start.. (element 0 = row row_start):
//                                                f32 bits, or bf16 packed two per u32 when W_BF16
//   @binding(3) x:   array<f32> [R, D]           output (= for rows whose id is in the chunk)
// Dispatch: one thread per element of x, grid1d(ceil(R * D / WG)).

//#include "grid.wgsl"
//#include "bf16.wgsl"

// Threads per workgroup (one element of x each).
override WG: u32 = 256u;
// Table stored as bf16 packed two per u32 instead of f32.
override W_BF16: bool = false;

struct Params {
  R: u32,
  D: u32,
  row_start: u32,
  row_count: u32,
  ids_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> E: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.R * p.D) {
    return;
  }
  let r = i / p.D;
  let d = i % p.D;
  // Unsigned wrap-around makes ids below row_start huge, so one comparison tests both ends.
  let local_row = ids[p.ids_offset + r] - p.row_start;
  if (local_row >= p.row_count) {
    return;
  }
  let e = local_row * p.D + d;
  if (W_BF16) {
    x[i] = bf16_unpack(E[e / 2u], e);
  } else {
    x[i] = bitcast<f32>(E[e]);
  }
}
