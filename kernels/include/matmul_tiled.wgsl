// Classic shared-memory tiled matmul core, shared by matmul_fwd / matmul_bwd_input /
// matmul_bwd_weight:  C[row, col] = Σ_s A[row, s] · B[s, col]  for one TILE_M × TILE_N block of C.
//
// The including kernel defines (WGSL resolves module-scope names in any order):
//   fn mm_readA(row: u32, s: u32) -> f32   A[row, s]; must return 0 when row or s is out of range
//   fn mm_readB(s: u32, col: u32) -> f32   B[s, col]; must return 0 when s or col is out of range
//   const A_ALONG_S: bool   A is contiguous in memory along s (else along row)
//   const B_ALONG_COL: bool B is contiguous in memory along col (else along s)
// The two consts only choose which tile index consecutive invocations load, so that neighbouring
// invocations read neighbouring addresses (coalesced on GPUs); results do not depend on them.
//
// Workgroup: WG_N × WG_M invocations; invocation (tx, ty) owns the RM × RN outputs
// rows ty + i·WG_M, cols tx + j·WG_N (strided, so the shared-memory reads of one row of
// invocations hit consecutive words). Tiles of TILE_S reduction steps are staged in workgroup
// memory; every invocation reaches every barrier (no early returns; out-of-range rows/cols/s read 0).

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override RM: u32 = 4u;      // rows per invocation, ≤ MAX_RB
override RN: u32 = 4u;      // cols per invocation, ≤ MAX_RB
override TILE_S: u32 = 16u; // reduction steps staged per barrier pair
// Derived sizes (never set by the host): overrides so that the workgroup arrays can use them.
override TILE_M: u32 = WG_M * RM;
override TILE_N: u32 = WG_N * RN;
override A_TILE_LEN: u32 = TILE_S * TILE_M;
override B_TILE_LEN: u32 = TILE_S * TILE_N;
const MAX_RB: u32 = 8u;

var<workgroup> a_tile: array<f32, A_TILE_LEN>; // [s][row]
var<workgroup> b_tile: array<f32, B_TILE_LEN>; // [s][col]

alias MmAcc = array<array<f32, MAX_RB>, MAX_RB>;

// The RM × RN block of invocation (tx, ty) of the tile whose first row/col are (row0, col0),
// summed over s in [0, S). Must be called in uniform control flow (it contains barriers).
fn mm_tile_product(row0: u32, col0: u32, S: u32, tx: u32, ty: u32) -> MmAcc {
  let lid = ty * WG_N + tx;
  let wg_size = WG_M * WG_N;
  var acc: MmAcc;
  for (var s0 = 0u; s0 < S; s0 += TILE_S) {
    for (var e = lid; e < A_TILE_LEN; e += wg_size) {
      var r: u32;
      var s: u32;
      if (A_ALONG_S) {
        r = e / TILE_S;
        s = e % TILE_S;
      } else {
        r = e % TILE_M;
        s = e / TILE_M;
      }
      a_tile[s * TILE_M + r] = mm_readA(row0 + r, s0 + s);
    }
    for (var e = lid; e < B_TILE_LEN; e += wg_size) {
      var c: u32;
      var s: u32;
      if (B_ALONG_COL) {
        c = e % TILE_N;
        s = e / TILE_N;
      } else {
        c = e / TILE_S;
        s = e % TILE_S;
      }
      b_tile[s * TILE_N + c] = mm_readB(s0 + s, col0 + c);
    }
    workgroupBarrier();
    for (var s = 0u; s < TILE_S; s++) {
      var a: array<f32, MAX_RB>;
      var b: array<f32, MAX_RB>;
      for (var i = 0u; i < RM; i++) {
        a[i] = a_tile[s * TILE_M + ty + i * WG_M];
      }
      for (var j = 0u; j < RN; j++) {
        b[j] = b_tile[s * TILE_N + tx + j * WG_N];
      }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) {
          acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  return acc;
}
