// Token embedding backward: dE[v, :] += sum over rows r with ids[r] = v of dx[r, :], for the table
// rows of ONE chunk [row_start, row_start + row_count).
// Owner-computes (no float atomics in WGSL): the host groups rows by token id on the CPU
// (buildEmbeddingGradIndex in src/model/embedding-index.ts, CSR: the rows of token uniq[u] are
// rows[starts[u] .. starts[u + 1])); one workgroup per unique token owns that row of dE and alone
// writes it, summing its rows in list order (deterministic). Tokens outside the chunk are skipped.
//
// Bindings:
//   @binding(0) params: { U, D, row_start, row_count }   U = number of unique tokens
//   @binding(1) dx:     array<f32> [R, D]          gradient of the embedding output
//   @binding(2) uniq:   array<u32> [U]             distinct token ids
//   @binding(3) starts: array<u32> [U + 1]         CSR offsets into rows
//   @binding(4) rows:   array<u32> [R]             row indices grouped by token
//   @binding(5) dE:     array<f32> [row_count, D]  gradient of table rows row_start.. (+=)
// Dispatch: one workgroup per unique token, grid1d(U) (u = wg.x + wg.y * num_workgroups.x).

//#include "grid.wgsl"

// Threads per unique token, striding over the D columns.
override WG: u32 = 64u;

struct Params {
  U: u32,
  D: u32,
  row_start: u32,
  row_count: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dx: array<f32>;
@group(0) @binding(2) var<storage, read> uniq: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> dE: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let u = linear_workgroup(wg, nwg);
  if (u >= p.U) {
    return;
  }
  // Unsigned wrap-around makes ids below row_start huge, so one comparison tests both ends.
  let local_row = uniq[u] - p.row_start;
  if (local_row >= p.row_count) {
    return;
  }
  let first = starts[u];
  let last = starts[u + 1u];
  for (var d = lid; d < p.D; d += WG) {
    var sum = 0.0;
    for (var k = first; k < last; k++) {
      sum += dx[rows[k] * p.D + d];
    }
    dE[local_row * p.D + d] += sum;
  }
}
