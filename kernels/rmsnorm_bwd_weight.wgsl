// RMSNorm backward, weight gradient: dw[c] = sum_r dy[r, c] * x[r, c] * rstd_r.
// Owner-computes (no float atomics in WGSL): each workgroup owns COLS adjacent columns and alone
// writes them; its ROW_SPLIT groups of COLS threads sum interleaved row subsets (adjacent threads
// read adjacent columns), then one thread per column adds the ROW_SPLIT partials in a fixed order,
// so the result is deterministic.
//
// Bindings:
//   @binding(0) params: { rows, cols }
//   @binding(1) dy:   array<f32> [rows, cols]   gradient of y
//   @binding(2) x:    array<f32> [rows, cols]   forward input
//   @binding(3) rstd: array<f32> [rows]         saved by rmsnorm_fwd.wgsl
//   @binding(4) dw:   array<f32> [cols]         output: = (ACCUMULATE false) or += (ACCUMULATE true,
//                                               accumulation across micro-batches)
// Dispatch: ceil(cols / COLS) workgroups, grid1d (block = wg.x + wg.y * num_workgroups.x).

//#include "grid.wgsl"

// Columns owned by one workgroup (adjacent threads read adjacent columns).
override COLS: u32 = 64u;
// Thread groups per workgroup that split the rows; workgroup size = COLS * ROW_SPLIT.
override ROW_SPLIT: u32 = 4u;
// dw += (accumulation across micro-batches) instead of dw =.
override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;

var<workgroup> partial: array<f32, COLS * ROW_SPLIT>;

@compute @workgroup_size(COLS * ROW_SPLIT)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let col_local = lid % COLS;
  let split = lid / COLS;
  let col = linear_workgroup(wg, nwg) * COLS + col_local;
  let valid = col < p.cols;
  var sum = 0.0;
  if (valid) {
    for (var r = split; r < p.rows; r += ROW_SPLIT) {
      let i = r * p.cols + col;
      sum += dy[i] * x[i] * rstd[r];
    }
  }
  partial[lid] = sum;
  workgroupBarrier();
  if (valid && split == 0u) {
    var total = 0.0;
    for (var s = 0u; s < ROW_SPLIT; s++) {
      total += partial[s * COLS + col_local];
    }
    if (ACCUMULATE) {
      dw[col] += total;
    } else {
      dw[col] = total;
    }
  }
}
