// Barrier-free matmul core that shares one operand through subgroup broadcasts, shared by
// matmul_fwd_subgroup / matmul_bwd_input_subgroup / matmul_bwd_weight_subgroup:
//   C[row, col] = Σ_s A[row, s] · B[s, col]
//
// Why: on CPU implementations (lavapipe) every per-invocation load is a loop over the SIMD lanes
// and workgroup barriers switch coroutines, so classic shared-memory tiling pays twice. Here all
// WG invocations of a workgroup compute the same ROWS rows of C, each for its own 4 consecutive
// columns. Per chunk of 8 reduction steps, lane l (l = subgroup_invocation_id mod 8) loads
// A[row, s0 + l] for every row, and subgroupBroadcast hands those values to the other lanes: each
// A value is loaded once per subgroup instead of once per lane. B (8 steps × 4 columns) is the
// invocation's own operand. Needs subgroups of ≥ 8 invocations (lanes ≥ 8 load duplicates).
//
// The including kernel defines (WGSL resolves module-scope names in any order):
//   fn sg_readA(row: u32, s: u32) -> f32
//        A[row, s] for in-range row and s; any finite value otherwise (reads are clamped into
//        range: rows past the end are never stored, and B is 0 at out-of-range s).
//   fn sg_readB(s0: u32, col: u32) -> array<vec4<f32>, 8>
//        element [j][c] = B[s0 + j, col + c]; must be 0 where s0 + j is out of range (this zero
//        keeps the reduction tail exact); columns past the end may hold anything (never stored).
// Output: invocation `lid` of workgroup column-block `bx` owns cols bx·4·WG + 4·lid + c (c < 4).

override WG: u32 = 64u;   // invocations per workgroup; a multiple of the subgroup size
override ROWS: u32 = 16u; // rows of C per workgroup, ≤ MAX_ROWS (more rows: fewer B loads per FMA)
const MAX_ROWS: u32 = 32u;

// One step: c + Σ_j a_j · b[j], in order j = 0..7, where a_j is lane j's `a`. The fixed order keeps
// a row's bits independent of how many rows a workgroup holds (the vector-load kernels spell the
// same order out, step-major). Must be called in uniform control flow.
fn step8(c: vec4<f32>, a: f32, b: array<vec4<f32>, 8>) -> vec4<f32> {
  var r = c;
  // subgroupBroadcast needs a constant lane index: one line per lane.
  r = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b[0], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b[1], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b[2], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b[3], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b[4], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b[5], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b[6], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b[7], r);
  return r;
}

alias SgAcc = array<vec4<f32>, MAX_ROWS>;

// acc[i][c] = C[row0 + i, col + c] summed over s in [0, S). Must be called in uniform control flow.
fn sg_product(row0: u32, col: u32, S: u32, sid: u32) -> SgAcc {
  let lane = sid & 7u;
  var acc: SgAcc;
  for (var s0 = 0u; s0 < S; s0 += 8u) {
    let b = sg_readB(s0, col);
    for (var i = 0u; i < ROWS; i++) {
      acc[i] = step8(acc[i], sg_readA(row0 + i, s0 + lane), b);
    }
  }
  return acc;
}
