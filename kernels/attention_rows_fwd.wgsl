// Causal attention with grouped-query heads for a batch of INDEPENDENT query rows, each one token
// of its own sequence (continuous batching, src/model/rows-forward.ts): row r belongs to KV-cache
// slot s_r = places[r].slot at position p_r = places[r].pos, and attends to key positions
// 0 ..= p_r of that slot only. Query head h reads kv head h / (nH / nKV). Inference only: no LSE.
//   O[r, h] = Σ_{j <= p_r} softmax_j(scale · q[r, h]·k[s_r, j]) v[s_r, j]
// A row's result depends on its own query and its slot's cache rows 0 ..= p_r only: not on R, on
// the other rows, or on where in the batch the row sits (a workgroup never mixes rows).
//
// Bindings:
//   @binding(0) params: { R, Tmax, nH, nKV, hd, scale }   (layout 'uuuuuf')
//   @binding(1) q:      array<f32> [R, nH*hd]             queries, RoPE applied
//   @binding(2) k:      array<f32> [slots, Tmax, nKV*hd]  key cache (rows past p_r are never read)
//   @binding(3) v:      array<f32> [slots, Tmax, nKV*hd]  value cache (idem)
//   @binding(4) places: array<RowPlace> [R]               (slot, pos) of each row, pos < Tmax
//   @binding(5) o:      array<f32> [R, nH*hd]             output (=)
// Requires QH·hd <= MAX_QD (128), QH <= MAX_QH (16), nH % nKV == 0, (nH / nKV) % QH == 0.
// Dispatch: (R, nH / QH) workgroups of KS threads.
//
// Work split: a workgroup takes one row and QH query heads of one kv group. Thread ks takes key
// positions ks, ks + KS, ks + 2·KS, ... of the row, KB at a time, with an online softmax (running
// max m, sum l, output acc) per head: each K/V element it loads serves the QH heads (GQA sharing).
// The KS partial (m, l, acc) of each head are then merged in shared memory, rescaled to the
// common max, DC head columns per round. Past p_r a block of KB keys is padded by re-reading key
// p_r with probability 0, so no cache row past p_r is read.
//
// QH = 1, KS = 64 is the decode split of attention_fwd.wgsl (one query's keys over a GPU
// workgroup). On a CPU (lavapipe) loads are per lane and dominate: there all heads of a group in
// one thread (QH = nH / nKV) load each key once instead of QH times.

// Per-thread arrays must have const (not override) sizes in WGSL, hence consts, not overrides.
// q and acc of the thread's QH heads, QH·hd floats each.
const MAX_QD: u32 = 128u;
const KB: u32 = 8u;
// Scores of a key block for up to MAX_QH heads.
const MAX_QH: u32 = 16u;
// Finite "minus infinity": exp(NEG_BIG - m) underflows to 0 and NEG_BIG - NEG_BIG stays 0 (no NaN).
const NEG_BIG: f32 = -1.0e30;

//#include "row_places.wgsl"

// Threads per workgroup, each over every KS-th key.
override KS: u32 = 64u;
// Query heads per thread (and workgroup), all of one kv group: (nH / nKV) % QH == 0, QH·hd <= 128, QH <= 16.
override QH: u32 = 1u;
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
  let hd = p.hd;
  let nq = min(QH, MAX_QH);
  let r = wg.x;
  let h0 = wg.y * QH;
  let place = places[r];
  let last = place.pos;
  let g = h0 / (p.nH / p.nKV);
  let q_stride = p.nH * hd;
  let kv_stride = p.nKV * hd;
  let kv_off = place.slot * p.Tmax * kv_stride + g * hd;
  // The QH heads' q (and outputs) are consecutive: head h0 + i at q_off + i·hd.
  let q_off = r * q_stride + h0 * hd;
  let qd_n = min(nq * hd, MAX_QD);

  var qv: array<f32, MAX_QD>;
  var acc: array<f32, MAX_QD>;
  var m: array<f32, MAX_QH>;
  var l: array<f32, MAX_QH>;
  // The scale is folded into q once instead of into every score.
  for (var i = 0u; i < qd_n; i++) {
    qv[i] = q[q_off + i] * p.scale;
  }
  for (var i = 0u; i < nq; i++) {
    m[i] = NEG_BIG;
  }

  for (var s0 = ks; s0 <= last; s0 += KB * KS) {
    var row: array<u32, KB>;
    for (var j = 0u; j < KB; j++) {
      row[j] = kv_off + min(s0 + j * KS, last) * kv_stride;
    }
    // Explicit zero (as in attention_fwd.wgsl: Dawn on lavapipe does not re-zero a `var` declared
    // without an initializer on each loop iteration). sc[i·KB + j]: head i, key j of the block.
    var sc = array<f32, MAX_QH * KB>();
    for (var d = 0u; d < hd; d++) {
      var kd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        kd[j] = k[row[j] + d];
      }
      for (var i = 0u; i < nq; i++) {
        let qd = qv[i * hd + d];
        for (var j = 0u; j < KB; j++) {
          sc[i * KB + j] += qd * kd[j];
        }
      }
    }
    var alpha: array<f32, MAX_QH>;
    for (var i = 0u; i < nq; i++) {
      var m_new = m[i];
      for (var j = 0u; j < KB; j++) {
        if (s0 + j * KS <= last) {
          m_new = max(m_new, sc[i * KB + j]);
        }
      }
      alpha[i] = exp(m[i] - m_new);
      var psum = 0.0;
      for (var j = 0u; j < KB; j++) {
        let pj = select(0.0, exp(sc[i * KB + j] - m_new), s0 + j * KS <= last);
        sc[i * KB + j] = pj;
        psum += pj;
      }
      l[i] = l[i] * alpha[i] + psum;
      m[i] = m_new;
    }
    // sc now holds the probabilities.
    for (var d = 0u; d < hd; d++) {
      var vd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        vd[j] = v[row[j] + d];
      }
      for (var i = 0u; i < nq; i++) {
        var a = acc[i * hd + d] * alpha[i];
        for (var j = 0u; j < KB; j++) {
          a += sc[i * KB + j] * vd[j];
        }
        acc[i * hd + d] = a;
      }
    }
  }

  // Merge the KS partials of each head. Threads that saw no key have m = NEG_BIG, l = 0: their
  // factor exp(NEG_BIG - m_all) is 0. l_all > 0 since key 0 is visible to every row.
  for (var i = 0u; i < nq; i++) {
    sm_m[ks] = m[i];
    sm_l[ks] = l[i];
    workgroupBarrier();
    var m_all = NEG_BIG;
    for (var t = 0u; t < KS; t++) {
      m_all = max(m_all, sm_m[t]);
    }
    var l_all = 0.0;
    for (var t = 0u; t < KS; t++) {
      l_all += sm_l[t] * exp(sm_m[t] - m_all);
    }
    let f = exp(m[i] - m_all) / l_all;
    for (var c0 = 0u; c0 < hd; c0 += DC) {
      let nc = min(DC, hd - c0);
      for (var c = 0u; c < nc; c++) {
        sm_acc[ks * DC + c] = acc[i * hd + c0 + c] * f;
      }
      workgroupBarrier();
      for (var c = ks; c < nc; c += KS) {
        var sum = 0.0;
        for (var t = 0u; t < KS; t++) {
          sum += sm_acc[t * DC + c];
        }
        o[q_off + i * hd + c0 + c] = sum;
      }
      workgroupBarrier();
    }
  }
}
