// Causal flash-attention forward with grouped-query heads (HF repeat_kv), f32, for training,
// prefill (pos0 = 0 or the cache length so far, for chunked prefill) and KV-cache decode (T = 1).
// Online softmax over key blocks (running max m, running sum l, running output acc): no T×T
// score matrix is ever stored.
//
// Query t of sequence b sits at absolute position pos0 + t and attends to key positions
// 0 ..= pos0 + t; query head h reads kv head h / (nH / nKV).
//   O[b*T+t, h] = Σ_j softmax_j(scale · q·k_j) v_j,   LSE[(b*T+t)*nH + h] = log Σ_j exp(scale · q·k_j)
//
// Bindings:
//   @binding(0) params: { B, T, Tmax, pos0, nH, nKV, hd, scale }   (layout 'uuuuuuuf')
//   @binding(1) q:   array<f32> [B*T, nH*hd]       queries, RoPE applied
//   @binding(2) k:   array<f32> [B, Tmax, nKV*hd]  key cache (rows >= pos0 + T are never read)
//   @binding(3) v:   array<f32> [B, Tmax, nKV*hd]  value cache (idem)
//   @binding(4) o:   array<f32> [B*T, nH*hd]       output (=)
//   @binding(5) lse: array<f32> [B*T*nH]           log-sum-exp of the scaled scores, natural log,
//                                                  at (b*T + t)*nH + h, saved for the backward (=)
// Requires hd <= MAX_HD (128), nH % nKV == 0, pos0 + T <= Tmax, QR <= QR_MAX (4).
// Dispatch: (ceil(T / (QB*QR)), nH, B) workgroups of QB*KS threads.
//
// Work split. A workgroup takes QB*QR consecutive queries of one (b, h). Thread (qi, ks), with
// local index qi*KS + ks, owns the QR queries wg.x*QB*QR + r*QB + qi (r < QR) and the key
// positions ks, ks + KS, ks + 2·KS, ..., keeping one (m, l, acc) per query:
// - QR > 1 (register blocking) lets each loaded key/value element serve QR queries. On lavapipe
//   every per-thread load is a gather and loads, not FMAs, bound the kernel, so training/prefill
//   there wants QB = 8, QR = 4, KS = 1.
// - KS > 1 spreads the keys of a query over KS threads, whose partial (m, l, acc) are then merged
//   in shared memory (rescaled to the common max), DC head columns per round. Decode (T = 1, a
//   long cache) wants QB = 1, QR = 1, KS = 64 so that one query still fills a workgroup.
// - On a GPU, training/prefill: QB = 64, QR = 1, KS = 1 (one thread per query; the threads of a
//   workgroup read the same key rows, which the cache broadcasts).
// All threads of a workgroup run the same key loop, up to the last key that any of its queries
// sees, and mask the keys past each query's own last one (at most QB*QR - 1 of them): the loop
// stays uniform and the key rows read are the same for the whole workgroup (when KS = 1).
// Each thread scores KB keys per online-softmax step (one rescale of acc per KB keys); past the
// workgroup's last key a block is padded by re-reading that key with probability 0, so no row
// beyond pos0 + T - 1 is read and the inner loops stay branch-free.

// Per-thread arrays must have const (not override) sizes in WGSL, hence consts, not overrides.
const MAX_HD: u32 = 128u;
const QR_MAX: u32 = 4u;
const KB: u32 = 8u;
// Finite "minus infinity": exp(NEG_BIG - m) underflows to 0 and NEG_BIG - NEG_BIG stays 0 (no NaN).
const NEG_BIG: f32 = -1.0e30;

override QB: u32 = 64u;
override QR: u32 = 1u;
override KS: u32 = 1u;
override DC: u32 = 32u;

struct Params {
  B: u32,
  T: u32,
  Tmax: u32,
  pos0: u32,
  nH: u32,
  nKV: u32,
  hd: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

// Merge buffers, only needed (and only sized) when KS > 1.
var<workgroup> sm_m: array<f32, select(1u, QB * KS, KS > 1u)>;
var<workgroup> sm_l: array<f32, select(1u, QB * KS, KS > 1u)>;
var<workgroup> sm_acc: array<f32, select(1u, QB * KS * DC, KS > 1u)>;

@compute @workgroup_size(QB * KS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hd = min(p.hd, MAX_HD);
  let qi = lid / KS;
  let ks = lid % KS;
  let h = wg.y;
  let b = wg.z;
  let g = h / (p.nH / p.nKV);
  let q_stride = p.nH * p.hd;
  let kv_stride = p.nKV * p.hd;
  let kv_off = b * p.Tmax * kv_stride + g * p.hd;
  let t_wg = wg.x * QB * QR;
  let last_wg = p.pos0 + min(p.T - 1u, t_wg + QB * QR - 1u);

  var qv: array<f32, QR_MAX * MAX_HD>;
  var acc: array<f32, QR_MAX * MAX_HD>;
  var m: array<f32, QR_MAX>;
  var l: array<f32, QR_MAX>;
  var last: array<u32, QR_MAX>;
  for (var r = 0u; r < QR; r++) {
    // Queries past T compute on a clamped copy of query T - 1 and never write (no early return:
    // with KS > 1 every thread must reach the merge barriers).
    let t = min(t_wg + r * QB + qi, p.T - 1u);
    last[r] = p.pos0 + t;
    m[r] = NEG_BIG;
    l[r] = 0.0;
    let q_off = (b * p.T + t) * q_stride + h * p.hd;
    // The scale is folded into q once instead of into every score.
    for (var d = 0u; d < hd; d++) {
      qv[r * MAX_HD + d] = q[q_off + d] * p.scale;
    }
  }

  for (var s0 = ks; s0 <= last_wg; s0 += KB * KS) {
    var row: array<u32, KB>;
    for (var j = 0u; j < KB; j++) {
      row[j] = kv_off + min(s0 + j * KS, last_wg) * kv_stride;
    }
    // Explicit zero: Dawn (webgpu 0.6.2) on lavapipe does not re-zero a `var` declared without
    // an initializer on each loop iteration, as WGSL requires.
    var sc = array<f32, QR_MAX * KB>();
    for (var d = 0u; d < hd; d++) {
      var kd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        kd[j] = k[row[j] + d];
      }
      for (var r = 0u; r < QR; r++) {
        let qd = qv[r * MAX_HD + d];
        for (var j = 0u; j < KB; j++) {
          sc[r * KB + j] += qd * kd[j];
        }
      }
    }
    var pr: array<f32, QR_MAX * KB>;
    var alpha: array<f32, QR_MAX>;
    for (var r = 0u; r < QR; r++) {
      var m_new = m[r];
      for (var j = 0u; j < KB; j++) {
        if (s0 + j * KS <= last[r]) {
          m_new = max(m_new, sc[r * KB + j]);
        }
      }
      alpha[r] = exp(m[r] - m_new);
      var psum = 0.0;
      for (var j = 0u; j < KB; j++) {
        pr[r * KB + j] = select(0.0, exp(sc[r * KB + j] - m_new), s0 + j * KS <= last[r]);
        psum += pr[r * KB + j];
      }
      l[r] = l[r] * alpha[r] + psum;
      m[r] = m_new;
    }
    for (var d = 0u; d < hd; d++) {
      var vd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        vd[j] = v[row[j] + d];
      }
      for (var r = 0u; r < QR; r++) {
        var a = acc[r * MAX_HD + d] * alpha[r];
        for (var j = 0u; j < KB; j++) {
          a += pr[r * KB + j] * vd[j];
        }
        acc[r * MAX_HD + d] = a;
      }
    }
  }

  if (KS == 1u) {
    for (var r = 0u; r < QR; r++) {
      let t = t_wg + r * QB + qi;
      if (t < p.T) {
        let q_off = (b * p.T + t) * q_stride + h * p.hd;
        let inv_l = 1.0 / l[r];
        for (var d = 0u; d < hd; d++) {
          o[q_off + d] = acc[r * MAX_HD + d] * inv_l;
        }
        lse[(b * p.T + t) * p.nH + h] = m[r] + log(l[r]);
      }
    }
  } else {
    let first = qi * KS;
    for (var r = 0u; r < QR; r++) {
      sm_m[lid] = m[r];
      sm_l[lid] = l[r];
      workgroupBarrier();
      var m_all = NEG_BIG;
      for (var i = 0u; i < KS; i++) {
        m_all = max(m_all, sm_m[first + i]);
      }
      var l_all = 0.0;
      for (var i = 0u; i < KS; i++) {
        l_all += sm_l[first + i] * exp(sm_m[first + i] - m_all);
      }
      // This thread's share of the output, normalised; threads that saw no key have
      // exp(NEG_BIG - m_all) = 0. l_all > 0 since key 0 is visible to every query.
      let f = exp(m[r] - m_all) / l_all;
      let t = t_wg + r * QB + qi;
      if (t < p.T && ks == 0u) {
        lse[(b * p.T + t) * p.nH + h] = m_all + log(l_all);
      }
      for (var c0 = 0u; c0 < hd; c0 += DC) {
        let nc = min(DC, hd - c0);
        for (var c = 0u; c < nc; c++) {
          sm_acc[lid * DC + c] = acc[r * MAX_HD + c0 + c] * f;
        }
        workgroupBarrier();
        // QB*DC (query, column) sums of KS partials, spread over the workgroup's QB*KS threads.
        for (var pair = lid; pair < QB * DC; pair += QB * KS) {
          let pq = pair / DC;
          let c = pair % DC;
          let tq = t_wg + r * QB + pq;
          if (c < nc && tq < p.T) {
            var sum = 0.0;
            for (var i = 0u; i < KS; i++) {
              sum += sm_acc[(pq * KS + i) * DC + c];
            }
            o[(b * p.T + tq) * q_stride + h * p.hd + c0 + c] = sum;
          }
        }
        workgroupBarrier();
      }
    }
  }
}
