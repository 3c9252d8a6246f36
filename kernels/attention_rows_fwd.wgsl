// Causal attention with grouped-query heads for a batch of INDEPENDENT query rows, each one token
// of its own sequence (continuous batching, src/model/rows-forward.ts): row r belongs to KV-cache
// slot s_r = places[r].slot at position p_r = places[r].pos, and attends to key positions
// 0 ..= p_r of that slot only. Query head h reads kv head h / (nH / nKV). Inference only: no LSE.
//   O[r, h] = Σ_{j <= p_r} softmax_j(scale · q[r, h]·k[s_r, j]) v[s_r, j]
// A row's result depends on its own query and its slot's cache rows 0 ..= p_r only: not on R, on
// the other rows, or on where in the batch the row sits (one workgroup per (row, head)).
//
// Bindings:
//   @binding(0) params: { R, Tmax, nH, nKV, hd, scale }   (layout 'uuuuuf')
//   @binding(1) q:      array<f32> [R, nH*hd]             queries, RoPE applied
//   @binding(2) k:      array<f32> [slots, Tmax, nKV*hd]  key cache (rows past p_r are never read)
//   @binding(3) v:      array<f32> [slots, Tmax, nKV*hd]  value cache (idem)
//   @binding(4) places: array<RowPlace> [R]               (slot, pos) of each row, pos < Tmax
//   @binding(5) o:      array<f32> [R, nH*hd]             output (=)
// Requires hd <= MAX_HD (128), nH % nKV == 0.
// Dispatch: (R, nH) workgroups of KS threads.
//
// Work split (the decode split of attention_fwd.wgsl: QB = 1, QR = 1, KS threads): thread ks
// takes key positions ks, ks + KS, ks + 2·KS, ... of the row, KB at a time, with an online softmax
// (running max m, sum l, output acc); the KS partial (m, l, acc) are then merged in shared memory,
// rescaled to the common max, DC head columns per round. Past p_r a block of KB keys is padded by
// re-reading key p_r with probability 0, so no cache row past p_r is read.

// Per-thread arrays must have const (not override) sizes in WGSL, hence consts, not overrides.
const MAX_HD: u32 = 128u;
const KB: u32 = 8u;
// Finite "minus infinity": exp(NEG_BIG - m) underflows to 0 and NEG_BIG - NEG_BIG stays 0 (no NaN).
const NEG_BIG: f32 = -1.0e30;

//#include "row_places.wgsl"

// Threads per (row, head), each over every KS-th key.
override KS: u32 = 64u;
// Head columns merged per round of the shared-memory merge.
override DC: u32 = 32u;

struct Params {
  R: u32,
  Tmax: u32,
  nH: u32,
  nKV: u32,
  hd: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> places: array<RowPlace>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;

var<workgroup> sm_m: array<f32, KS>;
var<workgroup> sm_l: array<f32, KS>;
var<workgroup> sm_acc: array<f32, KS * DC>;

@compute @workgroup_size(KS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) ks: u32) {
  let hd = min(p.hd, MAX_HD);
  let r = wg.x;
  let h = wg.y;
  let place = places[r];
  let last = place.pos;
  let g = h / (p.nH / p.nKV);
  let q_stride = p.nH * p.hd;
  let kv_stride = p.nKV * p.hd;
  let kv_off = place.slot * p.Tmax * kv_stride + g * p.hd;
  let q_off = r * q_stride + h * p.hd;

  var qv: array<f32, MAX_HD>;
  var acc: array<f32, MAX_HD>;
  // The scale is folded into q once instead of into every score.
  for (var d = 0u; d < hd; d++) {
    qv[d] = q[q_off + d] * p.scale;
  }
  var m = NEG_BIG;
  var l = 0.0;

  for (var s0 = ks; s0 <= last; s0 += KB * KS) {
    var row: array<u32, KB>;
    for (var j = 0u; j < KB; j++) {
      row[j] = kv_off + min(s0 + j * KS, last) * kv_stride;
    }
    // Explicit zero (as in attention_fwd.wgsl: Dawn on lavapipe does not re-zero a `var` declared
    // without an initializer on each loop iteration).
    var sc = array<f32, KB>();
    for (var d = 0u; d < hd; d++) {
      let qd = qv[d];
      for (var j = 0u; j < KB; j++) {
        sc[j] += qd * k[row[j] + d];
      }
    }
    var m_new = m;
    for (var j = 0u; j < KB; j++) {
      if (s0 + j * KS <= last) {
        m_new = max(m_new, sc[j]);
      }
    }
    let alpha = exp(m - m_new);
    var pr: array<f32, KB>;
    var psum = 0.0;
    for (var j = 0u; j < KB; j++) {
      pr[j] = select(0.0, exp(sc[j] - m_new), s0 + j * KS <= last);
      psum += pr[j];
    }
    l = l * alpha + psum;
    m = m_new;
    for (var d = 0u; d < hd; d++) {
      var a = acc[d] * alpha;
      for (var j = 0u; j < KB; j++) {
        a += pr[j] * v[row[j] + d];
      }
      acc[d] = a;
    }
  }

  // Merge the KS partials. Threads that saw no key have m = NEG_BIG, l = 0: their factor
  // exp(NEG_BIG - m_all) is 0. l_all > 0 since key 0 is visible to every row.
  sm_m[ks] = m;
  sm_l[ks] = l;
  workgroupBarrier();
  var m_all = NEG_BIG;
  for (var i = 0u; i < KS; i++) {
    m_all = max(m_all, sm_m[i]);
  }
  var l_all = 0.0;
  for (var i = 0u; i < KS; i++) {
    l_all += sm_l[i] * exp(sm_m[i] - m_all);
  }
  let f = exp(m - m_all) / l_all;
  for (var c0 = 0u; c0 < hd; c0 += DC) {
    let nc = min(DC, hd - c0);
    for (var c = 0u; c < nc; c++) {
      sm_acc[ks * DC + c] = acc[c0 + c] * f;
    }
    workgroupBarrier();
    for (var c = ks; c < nc; c += KS) {
      var sum = 0.0;
      for (var i = 0u; i < KS; i++) {
        sum += sm_acc[i * DC + c];
      }
      o[q_off + c0 + c] = sum;
    }
    workgroupBarrier();
  }
}
