// Repetition penalty on logits before sampling, as HF's RepetitionPenaltyLogitsProcessor (and
// FastChat's worker) apply it: for every distinct token id already in the context,
//   logit = logit * penalty   if logit < 0
//   logit = logit / penalty   otherwise
// so penalty > 1 makes repeats less likely. In place, on one row of logits.
//
// Bindings:
//   @binding(0) params: { n, V, ids_offset, logits_offset, penalty }
//   @binding(1) ids:    array<u32> [..]    n DISTINCT token ids from element ids_offset (the host
//                                          dedupes: one thread per id owns its logit, so no two
//                                          threads write the same element)
//   @binding(2) logits: array<f32> [.., V] the row at logits_offset, modified in place (=)
// Dispatch: one thread per id, grid1d(ceil(n / WG)). Ids >= V are ignored.

//#include "grid.wgsl"

// Threads per workgroup (one id each).
override WG: u32 = 64u;

struct Params {
  n: u32,
  V: u32,
  ids_offset: u32,
  logits_offset: u32,
  penalty: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.n) {
    return;
  }
  let id = ids[p.ids_offset + i];
  if (id >= p.V) {
    return;
  }
  let at = p.logits_offset + id;
  let v = logits[at];
  logits[at] = select(v / p.penalty, v * p.penalty, v < 0.0);
}
